#!/usr/bin/env python3
"""Slowloris driver (a separate process so its socket loop never competes with the test's
latency measurements for the GIL): opens N connections to 127.0.0.1:PORT, sends the start of
a request head on each, then trickles one more header byte per connection every INTERVAL
seconds until DURATION elapses or stdin closes. Prints "OPEN <n>" once all are connected and
"DONE open=<n> closed_by_peer=<n> bytes=<n>" at the end."""

import argparse
import resource
import select
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--duration", type=float, default=30.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.conns + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    deadline = time.monotonic() + args.duration
    socks = []
    for i in range(args.conns):
        if time.monotonic() > deadline:
            break
        s = socket.create_connection(("127.0.0.1", args.port), timeout=5)
        s.setblocking(False)
        s.send(b"GET /echo?slowloris=%d HTTP/1.1\r\nHost: localhost\r\n" % i)
        socks.append(s)
    print("OPEN %d" % len(socks), flush=True)

    trickle = b"X-Slow: " + b"a" * 1000000  # never finishes the head within the test
    pos = 0
    closed = 0
    sent = 0
    live = list(socks)
    while time.monotonic() < deadline and live:
        tick = time.monotonic()
        still = []
        for s in live:
            try:
                n = s.send(trickle[pos:pos + 1])
                sent += n
                still.append(s)
            except BlockingIOError:
                still.append(s)
            except OSError:
                closed += 1
                s.close()
        live = still
        pos += 1
        # Stop early when the parent closes our stdin.
        r, _, _ = select.select([sys.stdin], [], [], max(0.0, args.interval -
                                                        (time.monotonic() - tick)))
        if r and not sys.stdin.buffer.read1(1):
            break
    print("DONE open=%d closed_by_peer=%d bytes=%d" % (len(live), closed, sent), flush=True)
    for s in live:
        s.close()


if __name__ == "__main__":
    main()
