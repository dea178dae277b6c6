// B5 select, Go peer of bench/b5_select.c: one consumer selects over 4 channels (cap 128),
// each fed by its own producer, 4,000,000 messages. A closed channel is set to nil.
// Metric: ns per message.
package main

import (
	"sync"
	"time"

	bu "ringobench/benchutil"
)

func main() {
	const nchan = 4
	per := bu.Scaled(4000000, 1000) / nchan
	n := per * nchan
	var chans [nchan]chan int64
	for i := range chans {
		chans[i] = make(chan int64, 128)
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(nchan)
	for i := 0; i < nchan; i++ {
		go func(c chan int64, first int64) {
			for v := first; v < first+per; v++ {
				c <- v
			}
			close(c)
			wg.Done()
		}(chans[i], per*int64(i))
	}
	c0, c1, c2, c3 := chans[0], chans[1], chans[2], chans[3]
	var sum, count int64
	for open := nchan; open > 0; {
		select {
		case v, ok := <-c0:
			if ok {
				sum += v
				count++
			} else {
				c0 = nil
				open--
			}
		case v, ok := <-c1:
			if ok {
				sum += v
				count++
			} else {
				c1 = nil
				open--
			}
		case v, ok := <-c2:
			if ok {
				sum += v
				count++
			} else {
				c2 = nil
				open--
			}
		case v, ok := <-c3:
			if ok {
				sum += v
				count++
			} else {
				c3 = nil
				open--
			}
		}
	}
	el := time.Since(t0)
	wg.Wait()
	if count != n || sum != n*(n-1)/2 {
		bu.Fail("select: got %d msgs sum %d, want %d sum %d", count, sum, n, n*(n-1)/2)
	}
	bu.Result("select", float64(el.Nanoseconds())/float64(n), "ns/msg")
}
