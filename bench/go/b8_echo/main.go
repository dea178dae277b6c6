// B8 echo, Go peer of bench/b8_echo.c: TCP echo server on 127.0.0.1, one goroutine per
// connection. Usage: b8_echo PORT [SECONDS]. The load comes from bench/baseline/echo_load.
package main

import (
	"fmt"
	"net"
	"time"

	bu "ringobench/benchutil"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	port := bu.ServerArgs()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		bu.Fail("echo: listen: %v", err)
	}
	fmt.Printf("LISTENING 127.0.0.1:%d go\n", port)
	for {
		c, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of descriptors: back off
			continue
		}
		go serve(c) // TCP_NODELAY is Go's default
	}
}
