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
	var st bu.HTTPState
	kinds := make([]byte, batch)
	for {
		n, err := c.Read(buf)
		for off := 0; off < n; {
			k, used := bu.HTTPFeed(buf[off:n], &st, kinds)
			off += used
			for i := 0; i < k; {
				j := i
				for j < k && (kinds[j] == bu.HTTPKeep10) == (kinds[i] == bu.HTTPKeep10) {
					j++
				}
				var werr error
				if kinds[i] == bu.HTTPKeep10 {
					for q := i; q < j && werr == nil; q++ {
						_, werr = c.Write([]byte(bu.HTTPResponseKA10))
					}
				} else {
					_, werr = c.Write(responses[:(j-i)*len(bu.HTTPResponse)])
				}
				if werr != nil {
					return
				}
				i = j
			}
			if k > 0 && kinds[k-1] == bu.HTTPClose {
				return // HTTP/1.0 without keep-alive, or Connection: close
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
