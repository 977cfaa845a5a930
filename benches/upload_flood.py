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
