#!/usr/bin/env python3
"""Reference for bench/suite.py: the tutorial's server.py (recv 1024, send the bytes upper-cased)
with a thread per connection, so it serves many clients at once, on 127.0.0.1:PORT.

Usage: threaded_server.py [PORT=0]   (prints "listening on tcp://127.0.0.1:PORT")
"""
import socket
import sys
import threading


def serve(conn):
    with conn:
        while True:
            try:
                data = conn.recv(1024)
            except OSError:
                return
            if not data:
                return
            try:
                conn.sendall(data.upper())
            except OSError:
                return


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    print(f"listening on tcp://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
