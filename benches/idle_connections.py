#!/usr/bin/env python3
"""Holds idle connections open to a loopback HTTP server, for benches/idle-connections.sh.

Opens COUNT connections to 127.0.0.1:PORT. In mode `after-request` each sends one GET of PATH
and reads its whole answer first (a keep-alive connection between two requests, what a load
balancer keeps); in mode `silent` it sends nothing (a connection before its first request).
Writes "open N" to the ready file once all are open, then holds them until SIGTERM, and at
exit prints how many the server had closed meanwhile. Loopback only.
"""

import argparse
import signal
import socket
import sys


def read_answer(sock):
    """Reads one HTTP/1.1 response (Content-Length or chunked); returns its status code."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += recv(sock)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    if b"content-length" in fields:
        length = int(fields[b"content-length"])
        while len(body) < length:
            body += recv(sock)
    elif fields.get(b"transfer-encoding") == b"chunked":
        # Enough of chunked decoding for a benchmark: read until the last chunk and the end.
        while not body.endswith(b"0\r\n\r\n"):
            body += recv(sock)
    else:
        raise ValueError("a response without a length: " + head.decode())
    return status


def recv(sock):
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection mid-response")
    return chunk


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--path", default="/function/hello/")
    parser.add_argument("--mode", choices=["after-request", "silent"], default="after-request")
    parser.add_argument("--ready-file", required=True)
    args = parser.parse_args()

    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n\r\n".encode()
    )
    held = []
    for i in range(args.count):
        sock = socket.create_connection(("127.0.0.1", args.port), timeout=30)
        if args.mode == "after-request":
            sock.sendall(request)
            status = read_answer(sock)
            if status != 200:
                sys.exit(f"connection {i}: status {status}")
        held.append(sock)
    with open(args.ready_file, "w") as ready:
        ready.write(f"open {len(held)}\n")

    def done(*_):
        closed = 0
        for sock in held:
            sock.setblocking(False)
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        print(f"held {len(held)}, closed by the server meanwhile {closed}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
