#!/usr/bin/env python3
# gevent_hello: the gevent peer for the suite's HTTP benchmark
# (tests/bench/suite.py). The same keep-alive "hello" as epoll_hello.cpp: a
# gevent StreamServer, one greenlet per connection doing blocking-style
# recv/sendall on gevent's cooperative sockets, each request head (counted by
# its blank line, as epoll_hello counts them) answered with the same bytes.
#
#   gevent_hello.py [PORT]   (0 or absent: a free port; prints "port N")
#
# Needs gevent (Debian: python3-gevent).
import socket
import sys

try:
    from gevent.server import StreamServer
except ImportError:
    sys.exit("gevent_hello: gevent is not installed (Debian: python3-gevent)")

RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: hello_bench\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 6\r\n\r\nhello\n")


def serve(sock, _address):
    partial = b""  # an unfinished request head carried to the next read
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return
            if partial:
                data = partial + data
            heads = data.count(b"\r\n\r\n")
            partial = data[data.rfind(b"\r\n\r\n") + 4:] if heads else data
            if heads:
                sock.sendall(RESPONSE * heads)
    except OSError:
        pass
    finally:
        sock.close()


def main():
    try:
        port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        sys.exit(f"gevent_hello: the port must be a number 0..65535, not {sys.argv[1]!r}")
    server = StreamServer(("127.0.0.1", port), serve, backlog=4096)
    server.init_socket()
    # Linux's accepted sockets inherit TCP_NODELAY from the listener.
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(f"port {server.address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
