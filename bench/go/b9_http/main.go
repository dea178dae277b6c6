// B9 http, Go peer of bench/b9_http.c: HTTP/1.1 keep-alive "Hello, World!" server on 127.0.0.1,
// one goroutine per connection, the same minimal request scanner as the C programs (so the
// runtimes, not the HTTP stacks, are compared).
// Usage: b9_http [-nethttp] PORT [SECONDS]. -nethttp serves with net/http instead (what most
// Go programs would use); the runner does not use it.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	bu "ringobench/benchutil"
)

const batch = 32

var responses = []byte(strings.Repeat(bu.HTTPResponse, batch))

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	state := 0
	for {
		n, err := c.Read(buf)
		if n > 0 {
			for heads := bu.HTTPHeads(buf[:n], &state); heads > 0; {
				k := heads
				if k > batch {
					k = batch
				}
				if _, werr := c.Write(responses[:k*len(bu.HTTPResponse)]); werr != nil {
					return
				}
				heads -= k
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	nethttp := len(os.Args) > 1 && os.Args[1] == "-nethttp"
	if nethttp {
		os.Args = append(os.Args[:1], os.Args[2:]...)
	}
	port := bu.ServerArgs()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		bu.Fail("http: listen: %v", err)
	}
	fmt.Printf("LISTENING 127.0.0.1:%d go nethttp=%v\n", port, nethttp)
	if nethttp {
		hello := []byte("Hello, World!")
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write(hello)
		})
		bu.Fail("http: %v", http.Serve(ln, h))
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}
