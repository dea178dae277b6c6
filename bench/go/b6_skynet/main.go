// B6 skynet, Go peer of bench/b6_skynet.c: 10-ary tree of goroutines, depth 6 (1,000,000
// leaves), leaves send their ordinal up unbuffered channels. Metric: ms.
package main

import (
	"time"

	bu "ringobench/benchutil"
)

const div = 10

func skynet(out chan int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan int64)
	for i := int64(0); i < div; i++ {
		go skynet(rc, num+i*(size/div), size/div)
	}
	var sum int64
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	out <- sum
}

func main() {
	target := bu.Scaled(1000000, 10)
	leaves := int64(10)
	for leaves*10*10 <= target*32 && leaves < 1000000 { // nearest power of ten, as in C
		leaves *= 10
	}
	out := make(chan int64)
	t0 := time.Now()
	go skynet(out, 0, leaves)
	sum := <-out
	el := time.Since(t0)
	if sum != leaves*(leaves-1)/2 {
		bu.Fail("skynet: sum %d, want %d", sum, leaves*(leaves-1)/2)
	}
	bu.Result("skynet", float64(el.Nanoseconds())/1e6, "ms")
}
