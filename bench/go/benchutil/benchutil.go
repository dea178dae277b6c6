// Package benchutil mirrors bench/bench_util.h for the Go peers: the scale knob
// (RINGO_BENCH_SCALE), the RESULT line, failure exits, RSS and CPU probes, the HTTP request
// scanner and the splitmix64 PRNG. Keep the two in step; the runner parses both the same way.
package benchutil

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Fail prints "ERROR <msg>" on stderr and exits 1: a wrong answer is a failure, never a
// number.
func Fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "ERROR "+format+"\n", args...)
	os.Exit(1)
}

// Result prints the one machine-readable line of a variant, formatted as bench_result does:
// %.6g, or %.1f from 1000 up.
func Result(name string, metric float64, unit string) {
	if metric >= 1000 || metric <= -1000 {
		fmt.Printf("RESULT name=%s metric=%.1f unit=%s\n", name, metric, unit)
	} else {
		fmt.Printf("RESULT name=%s metric=%.6g unit=%s\n", name, metric, unit)
	}
}

// Scale is RINGO_BENCH_SCALE (default 1), a factor applied to every work count.
func Scale() float64 {
	s := os.Getenv("RINGO_BENCH_SCALE")
	if s == "" {
		return 1
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || v > 100 {
		Fail("RINGO_BENCH_SCALE=%s: want a number in (0, 100]", s)
	}
	return v
}

// Scaled is n times the scale, rounded, at least min (same arithmetic as bench_scaled).
func Scaled(n, min int64) int64 {
	r := int64(float64(n)*Scale() + 0.5)
	if r < min {
		return min
	}
	return r
}

// RSSBytes is the resident set size from /proc/self/statm, as bench_rss_bytes reads it.
func RSSBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		Fail("read /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		Fail("parse /proc/self/statm")
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		Fail("parse /proc/self/statm: %v", err)
	}
	return pages * int64(os.Getpagesize())
}

// CPUSeconds is user + system CPU time of the whole process (getrusage RUSAGE_SELF).
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		Fail("getrusage: %v", err)
	}
	return float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6 +
		float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
}

// SplitMix64 is bench_splitmix64: the same durations in B10 for ringo and Go.
func SplitMix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// ServerArgs parses "PORT [SECONDS]" and arranges for the process to exit after SECONDS
// (default 600). SIGTERM's default action already ends a Go program.
func ServerArgs() int {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintf(os.Stderr, "usage: %s PORT [SECONDS]   (binds 127.0.0.1:PORT, exits after SECONDS)\n", os.Args[0])
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[1])
	secs := 600
	if err == nil && len(os.Args) == 3 {
		secs, err = strconv.Atoi(os.Args[2])
	}
	if err != nil || port <= 0 || port > 65535 || secs <= 0 || secs > 86400 {
		fmt.Fprintf(os.Stderr, "%s: bad PORT or SECONDS\n", os.Args[0])
		os.Exit(2)
	}
	time.AfterFunc(time.Duration(secs)*time.Second, func() { os.Exit(0) })
	return port
}

// HTTPResponse is BENCH_HTTP_RESPONSE.
const HTTPResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"

// HTTPResponseKA10 is BENCH_HTTP_RESPONSE_KA10: the answer to HTTP/1.0 with keep-alive (ab -k).
const HTTPResponseKA10 = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!"

// Head kinds, as bench_http_kind.
const (
	HTTPKeep   = 0
	HTTPKeep10 = 1
	HTTPClose  = 2
)

const httpKeepBytes = 256

// HTTPState is struct bench_http_state.
type HTTPState struct {
	m    int
	head []byte
}

func httpKind(h []byte) int {
	s := strings.ToLower(string(h))
	eol := strings.IndexByte(s, '\r')
	if eol < 0 {
		eol = len(s)
	}
	http10 := strings.HasSuffix(s[:eol], "http/1.0")
	ka, cl := false, false
	for _, line := range strings.Split(s[eol:], "\n") {
		if strings.HasPrefix(line, "connection:") {
			ka = ka || strings.Contains(line, "keep-alive")
			cl = cl || strings.Contains(line, "close")
		}
	}
	if cl || (http10 && !ka) {
		return HTTPClose
	}
	if http10 {
		return HTTPKeep10
	}
	return HTTPKeep
}

// HTTPFeed is bench_http_feed: the kinds of the heads p completes go to kinds (at most
// len(kinds)); it stops after a close head. Returns how many heads and the bytes consumed.
func HTTPFeed(p []byte, st *HTTPState, kinds []byte) (int, int) {
	k, i := 0, 0
	for i < len(p) && k < len(kinds) {
		c := p[i]
		i++
		if len(st.head) < httpKeepBytes {
			st.head = append(st.head, c)
		}
		if c == "\r\n\r\n"[st.m] {
			st.m++
		} else if c == '\r' {
			st.m = 1
		} else {
			st.m = 0
		}
		if st.m == 4 {
			kinds[k] = byte(httpKind(st.head))
			st.m = 0
			st.head = st.head[:0]
			k++
			if kinds[k-1] == HTTPClose {
				break
			}
		}
	}
	return k, i
}
