module ringobench

go 1.19
