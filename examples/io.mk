# examples/io.mk: servers
