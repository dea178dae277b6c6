// B7 memory, Go peer of bench/b7_memory.c: 100,000 goroutines parked on a receive from one
// unbuffered channel. Metric: (RSS parked - RSS before) / n bytes, from /proc/self/statm.
// Then every goroutine must get exactly one value and every value go to one goroutine.
package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bu "ringobench/benchutil"
)

func main() {
	n := bu.Scaled(100000, 100)
	c := make(chan int64)
	got := make([]int64, n)
	seen := make([]byte, n)
	for i := range got { // touch now so it is in the "before" RSS
		got[i] = -1
	}
	var started atomic.Int64
	var wg sync.WaitGroup
	runtime.GC()
	rss0 := bu.RSSBytes()
	wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func(i int64) {
			started.Add(1)
			v, ok := <-c
			if !ok {
				bu.Fail("memory: channel closed")
			}
			got[i] = v
			wg.Done()
		}(i)
	}
	end := time.Now().Add(60 * time.Second)
	for started.Load() < n {
		if time.Now().After(end) {
			bu.Fail("memory: only %d of %d goroutines started in 60 s", started.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	rss1 := bu.RSSBytes()
	for i := int64(0); i < n; i++ {
		c <- i
	}
	wg.Wait()
	for i, v := range got {
		if v < 0 || v >= n || seen[v] != 0 {
			bu.Fail("memory: goroutine %d got %d (duplicate or out of range)", i, v)
		}
		seen[v] = 1
	}
	bu.Result("memory", float64(rss1-rss0)/float64(n), "bytes/goroutine")
}
