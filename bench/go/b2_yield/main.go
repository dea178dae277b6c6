// B2 yield, Go peer of bench/b2_yield.c: two goroutines alternately call runtime.Gosched,
// 10,000,000 switches in all (defined for GOMAXPROCS=1). Metric: ns per switch.
package main

import (
	"runtime"
	"sync"
	"time"

	bu "ringobench/benchutil"
)

func main() {
	n := bu.Scaled(10000000, 1000) / 2 * 2
	var done [2]int64
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(2)
	for k := 0; k < 2; k++ {
		go func(k int) {
			for i := int64(0); i < n/2; i++ {
				runtime.Gosched()
				done[k]++
			}
			wg.Done()
		}(k)
	}
	wg.Wait()
	el := time.Since(t0)
	if done[0]+done[1] != n {
		bu.Fail("yield: %d + %d yields, want %d", done[0], done[1], n)
	}
	bu.Result("yield", float64(el.Nanoseconds())/float64(n), "ns/switch")
}
