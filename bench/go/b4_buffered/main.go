// B4 buffered, Go peer of bench/b4_buffered.c: one chan int of cap 1024, 10,000,000 messages,
// 1 producer/1 consumer and 4/4. Metric: million messages per second.
// Usage: b4_buffered [1p1c|4p4c]...  (no argument: both)
package main

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bu "ringobench/benchutil"
)

func run(k int64) {
	per := bu.Scaled(10000000, 1000) / k
	n := per * k
	c := make(chan int64, 1024)
	var sum, count atomic.Int64
	var prod, cons sync.WaitGroup
	t0 := time.Now()
	cons.Add(int(k))
	for i := int64(0); i < k; i++ {
		go func() {
			var s, m int64
			for v := range c {
				s += v
				m++
			}
			sum.Add(s)
			count.Add(m)
			cons.Done()
		}()
	}
	prod.Add(int(k))
	for i := int64(0); i < k; i++ {
		go func(first int64) {
			for v := first; v < first+per; v++ {
				c <- v
			}
			prod.Done()
		}(per * i)
	}
	prod.Wait()
	close(c)
	cons.Wait()
	el := time.Since(t0)
	if count.Load() != n || sum.Load() != n*(n-1)/2 {
		bu.Fail("buffered/%dp%dc: got %d msgs sum %d, want %d sum %d", k, k, count.Load(), sum.Load(), n, n*(n-1)/2)
	}
	bu.Result(fmt.Sprintf("buffered/%dp%dc", k, k), float64(n)/el.Seconds()/1e6, "Mmsg/s")
}

func main() {
	var variants []int64
	for _, a := range os.Args[1:] {
		switch a {
		case "1p1c", "1":
			variants = append(variants, 1)
		case "4p4c", "4":
			variants = append(variants, 4)
		default:
			fmt.Fprintf(os.Stderr, "usage: %s [1p1c|4p4c]...\n", os.Args[0])
			os.Exit(2)
		}
	}
	if len(variants) == 0 {
		variants = []int64{1, 4}
	}
	for _, k := range variants {
		run(k)
	}
}
