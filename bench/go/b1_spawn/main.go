// B1 spawn, Go peer of bench/b1_spawn.c: start 1,000,000 goroutines that each bump an atomic
// counter; wait on a WaitGroup. Metric: ns per goroutine.
package main

import (
	"sync"
	"sync/atomic"
	"time"

	bu "ringobench/benchutil"
)

func main() {
	n := bu.Scaled(1000000, 1000)
	var counter atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		wg.Add(1)
		go func() {
			counter.Add(1)
			wg.Done()
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if counter.Load() != n {
		bu.Fail("spawn: counter %d, want %d", counter.Load(), n)
	}
	bu.Result("spawn", float64(el.Nanoseconds())/float64(n), "ns/goroutine")
}
