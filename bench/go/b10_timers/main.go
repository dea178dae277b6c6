// B10 timers, Go peer of bench/b10_timers.c: 100,000 goroutines each sleep a random 0..10 ms
// (splitmix64 seeded by index: the same durations as the C program), 10 rounds. Metrics:
// overshoot p50 and p99 (ms) and process CPU seconds (getrusage).
package main

import (
	"sort"
	"sync"
	"time"

	bu "ringobench/benchutil"
)

const rounds = 10
const maxNs = 10000000

func main() {
	n := bu.Scaled(100000, 100)
	total := n * rounds
	over := make([]int64, total)
	const never = -1 << 63
	for i := range over {
		over[i] = never
	}
	var wg sync.WaitGroup
	cpu0 := bu.CPUSeconds()
	wg.Add(int(n))
	for i := int64(0); i < n; i++ {
		go func(idx int64) {
			rng := uint64(idx)
			for r := int64(0); r < rounds; r++ {
				d := time.Duration(bu.SplitMix64(&rng) % (maxNs + 1))
				t0 := time.Now()
				time.Sleep(d)
				over[idx*rounds+r] = int64(time.Since(t0) - d)
			}
			wg.Done()
		}(i)
	}
	wg.Wait()
	cpu1 := bu.CPUSeconds()
	for i, v := range over {
		if v == never {
			bu.Fail("timers: sleep %d never finished", i)
		}
		if v < 0 {
			bu.Fail("timers: sleep %d returned %d ns early", i, -v)
		}
	}
	sort.Slice(over, func(a, b int) bool { return over[a] < over[b] })
	bu.Result("timers/p50", float64(over[(total-1)*50/100])/1e6, "ms")
	bu.Result("timers/p99", float64(over[(total-1)*99/100])/1e6, "ms")
	bu.Result("timers/cpu", cpu1-cpu0, "s")
}
