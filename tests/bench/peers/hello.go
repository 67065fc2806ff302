// hello.go: the Go peer for the suite's HTTP benchmark (tests/bench/suite.py).
// The same keep-alive "hello" as epoll_hello.cpp, written the way Go servers
// are written without net/http: one goroutine per connection on package net,
// blocking Read and Write, each request head (counted by its blank line, as
// epoll_hello counts them) answered with the same bytes. net/http would parse
// the request, which none of the other hello servers do.
//
//	hello [PORT]   (0 or absent: a free port; prints "port N")
//
// The suite runs it with GOMAXPROCS=1 for the one-core comparison.
package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
)

var response = []byte("HTTP/1.1 200 OK\r\nServer: hello_bench\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Content-Length: 6\r\n\r\nhello\n")

var blank = []byte("\r\n\r\n")

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	var partial []byte // an unfinished request head carried to the next read
	out := make([]byte, 0, 16*len(response))
	for {
		n, err := c.Read(buf)
		if n <= 0 || err != nil {
			return
		}
		data := buf[:n]
		if len(partial) > 0 {
			partial = append(partial, data...)
			data = partial
		}
		out = out[:0]
		for {
			i := bytes.Index(data, blank)
			if i < 0 {
				break
			}
			out = append(out, response...)
			data = data[i+len(blank):]
		}
		partial = append(partial[:0], data...)
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
}

func main() {
	port := 0
	if len(os.Args) > 1 {
		p, err := strconv.Atoi(os.Args[1])
		if err != nil || p < 0 || p > 65535 {
			fmt.Fprintf(os.Stderr, "hello: the port must be a number 0..65535, not %q\n", os.Args[1])
			os.Exit(2)
		}
		port = p
	}
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "hello: cannot listen on port %d: %v\n", port, err)
		os.Exit(1)
	}
	fmt.Printf("port %d\n", l.Addr().(*net.TCPAddr).Port)
	for {
		c, err := l.Accept()
		if err != nil {
			continue // EMFILE and the like: the next Accept may succeed
		}
		go serve(c)
	}
}
