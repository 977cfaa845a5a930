#!/usr/bin/env python3
"""The load of benches/upload-flood.sh: waves of concurrent large uploads against one
function, small requests beside them, and the server's resident memory sampled throughout.

Only the standard library; loopback only (the URL is checked). Prints one summary line per
figure (key=value) for the shell script, and a human-readable report on stderr.
"""

import argparse
import asyncio
import collections
import sys
import time
import urllib.parse


def sink_module():
    """A WASI preview1 command module (CGI) that answers `200 ok` without reading its body:
    the uploads then cost what the gateway holds, not a copy in a guest's memory. Assembled
    by hand (no WAT tooling needed): fd_write of a 29-byte CGI response from a data segment."""
    def leb(n):
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            if n:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                return bytes(out)

    def name(text):
        return leb(len(text)) + text.encode()

    def section(ident, payload):
        return bytes([ident]) + leb(len(payload)) + payload

    response = b"Content-Type: text/plain\n\nok\n"
    types = b"\x02" + b"\x60\x04\x7f\x7f\x7f\x7f\x01\x7f" + b"\x60\x00\x00"
    imports = b"\x01" + name("wasi_snapshot_preview1") + name("fd_write") + b"\x00\x00"
    functions = b"\x01\x01"
    memory = b"\x01\x00\x01"
    exports = b"\x02" + name("memory") + b"\x02\x00" + name("_start") + b"\x00\x01"
    code = (
        b"\x00"  # no locals
        b"\x41\xe4\x00\x41\x00\x36\x02\x00"  # iov.base (at 100) = 0
        + b"\x41\xe8\x00\x41" + leb(len(response)) + b"\x36\x02\x00"  # iov.len (at 104)
        + b"\x41\x01\x41\xe4\x00\x41\x01\x41\xc8\x01\x10\x00\x1a"  # fd_write(1, 100, 1, 200)
        + b"\x0b"
    )
    codes = b"\x01" + leb(len(code)) + code
    data = b"\x01\x00\x41\x00\x0b" + leb(len(response)) + response
    return (
        b"\x00asm\x01\x00\x00\x00"
        + section(1, types)
        + section(2, imports)
        + section(3, functions)
        + section(5, memory)
        + section(7, exports)
        + section(10, codes)
        + section(11, data)
    )


def rss_bytes(pid):
    """VmRSS of `pid` in bytes (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def read_status(reader):
    """The status code of a response, its body drained (Content-Length or to EOF)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()
    return status


async def upload(host, port, path, size, chunk):
    """One upload of `size` bytes; its status, or the error that ended it."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        return f"connect:{e.errno}"
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n"
            f"content-type: application/octet-stream\r\ncontent-length: {size}\r\n\r\n".encode()
        )
        block = b"x" * chunk
        sent = 0
        status_task = asyncio.ensure_future(read_status(reader))
        try:
            while sent < size and not status_task.done():
                piece = block[: min(chunk, size - sent)]
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        except OSError:
            pass  # refused early: the server answered and closed; its answer is read below
        return await asyncio.wait_for(status_task, 120)
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
        return f"error:{type(e).__name__}"
    finally:
        writer.close()


async def small_requests(host, port, path, stop, results):
    """Small GETs one after the other until `stop` is set: (status, seconds) each."""
    while not stop.is_set():
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".encode())
            await writer.drain()
            status = await asyncio.wait_for(read_status(reader), 30)
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
            status = f"error:{type(e).__name__}"
        results.append((status, time.monotonic() - started))
        await asyncio.sleep(0.02)


async def sample_rss(pid, stop, samples):
    while not stop.is_set():
        samples.append(rss_bytes(pid))
        await asyncio.sleep(0.02)


def percentile(values, p):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-sink":
        with open(sys.argv[2], "wb") as out:
            out.write(sink_module())
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--upload-path", required=True)
    parser.add_argument("--small-path", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--size", type=int, default=6 << 20)
    parser.add_argument("--chunk", type=int, default=64 << 10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.base)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("upload_flood.py only sends to loopback")
    host, port = url.hostname, url.port

    baseline = rss_bytes(args.pid)
    stop = asyncio.Event()
    samples, small = [], []
    sampler = asyncio.ensure_future(sample_rss(args.pid, stop, samples))
    smaller = asyncio.ensure_future(small_requests(host, port, args.small_path, stop, small))
    outcomes = collections.Counter()
    started = time.monotonic()
    for _ in range(args.rounds):
        results = await asyncio.gather(
            *(upload(host, port, args.upload_path, args.size, args.chunk) for _ in range(args.uploads))
        )
        outcomes.update(str(r) for r in results)
    elapsed = time.monotonic() - started
    stop.set()
    await asyncio.gather(sampler, smaller)

    peak = max(samples, default=0)
    latencies = [t for s, t in small if s == 200]
    small_statuses = collections.Counter(str(s) for s, _ in small)
    print(f"uploads={args.uploads * args.rounds} size={args.size} seconds={elapsed:.1f}")
    print("upload_statuses=" + ",".join(f"{k}:{v}" for k, v in sorted(outcomes.items())))
    print(f"rss_baseline_mib={baseline / 2**20:.1f}")
    print(f"rss_peak_mib={peak / 2**20:.1f}")
    print("small_statuses=" + ",".join(f"{k}:{v}" for k, v in sorted(small_statuses.items())))
    print(f"small_p50_ms={percentile(latencies, 50) * 1000:.1f}")
    print(f"small_p99_ms={percentile(latencies, 99) * 1000:.1f}")
    print(f"small_max_ms={max(latencies, default=0) * 1000:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
