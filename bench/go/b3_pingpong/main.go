// B3 pingpong, Go peer of bench/b3_pingpong.c: bounce an int over two unbuffered channels,
// 1,000,000 round trips. Metric: ns per round trip.
package main

import (
	"time"

	bu "ringobench/benchutil"
)

func main() {
	n := bu.Scaled(1000000, 1000)
	ping, pong := make(chan int64), make(chan int64)
	done := make(chan struct{})
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(done)
	}()
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		ping <- i
		if v := <-pong; v != i+1 {
			bu.Fail("pingpong: round trip %d got %d, want %d", i, v, i+1)
		}
	}
	el := time.Since(t0)
	close(ping)
	<-done
	bu.Result("pingpong", float64(el.Nanoseconds())/float64(n), "ns/rt")
}
