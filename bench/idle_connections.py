#!/usr/bin/env python3
"""Opens N idle connections to a duplex server, each after one round trip, and holds them.

Prints 'ready N' on stdout when all are open and answered, then waits for stdin to close.
A load tool for bench/idle_rss.sh; bounded by N and by the caller's lifetime.
"""
import socket
import sys

url, n = sys.argv[1], int(sys.argv[2])
socks = []
if url.startswith("unix://"):
    fam, addr = socket.AF_UNIX, url[len("unix://"):]
else:
    host, port = url.removeprefix("tcp://").rsplit(":", 1)
    fam, addr = socket.AF_INET, (host, int(port))
for i in range(n):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.connect(addr)
    s.sendall(b"x")
    if s.recv(1) != b"X":
        sys.exit(f"connection {i}: bad reply")
    socks.append(s)
print(f"ready {len(socks)}", flush=True)
sys.stdin.read()
