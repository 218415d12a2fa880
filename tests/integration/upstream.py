#!/usr/bin/env python3
"""A small, fast HTTP/1.1 test upstream for ficus integration tests (standard library only).

It records every connection and request head it receives, so a test can assert exactly what
reached the upstream (e.g. "nothing" for a request ficus must reject). Use it in-process
(Upstream(...).start(); up.connections()) or as a script:

    python3 tests/integration/upstream.py --port 8081 --name a

which prints "READY <port>" on stdout once it listens. Endpoints:

    /echo            method, target, headers and body length + crc32 as JSON
    /upload          reads the body (Content-Length or chunked), returns {"length", "crc32"}
    /bytes?n=N       N deterministic bytes (pattern_bytes); &chunked=1 for chunked framing
    /status/CODE     that status with a short body
    /delay?ms=N      waits N ms, then answers like /echo
    /ws              a valid websocket Upgrade gets 101, then bytes are echoed raw
                     (&close_after=N: close after echoing N bytes)
    /drop            closes the connection without answering
    /garbage         answers bytes that are not HTTP, then closes
    /partial         announces Content-Length: 1000, sends 10 bytes, closes
    /__log, /__reset the recording (control requests are not recorded)

Common query options: close=1 (answer with Connection: close and close), hdr=Name:Value
(repeatable; extra response header), stall_ms=N (wait before reading the request body),
chunked=1 (chunked response framing for /echo, /upload, /bytes), eof=1 (no Content-Length:
the body ends when the upstream closes), linger_close_ms=N (answer keep-alive, then close the
idle connection silently after N ms), body_delay_ms=N (send the head, wait N ms, then the body).

Every response carries "X-Upstream: <name>".
"""

import argparse
import base64
import hashlib
import json
import socket
import sys
import threading
import time
import urllib.parse
import zlib

# --- deterministic payload -----------------------------------------------------------------

PATTERN_PERIOD = 65521  # prime, so slices never line up with power-of-two write sizes
IO_CHUNK = 256 * 1024
_PATTERN = bytes(((i * 131 + 7) ^ (i >> 8)) & 0xFF for i in range(PATTERN_PERIOD))
# Enough repetitions that any slice of IO_CHUNK bytes starting in the first period fits.
_PATTERN_EXT = _PATTERN * (IO_CHUNK // PATTERN_PERIOD + 2)
_PATTERN_MV = memoryview(_PATTERN_EXT)


def pattern_slice(offset, length):
    """Bytes [offset, offset+length) of the infinite pattern; REQUIRES length <= IO_CHUNK."""
    start = offset % PATTERN_PERIOD
    return _PATTERN_MV[start:start + length]


def pattern_chunks(n, chunk=IO_CHUNK):
    """Yields memoryviews covering the first n pattern bytes."""
    off = 0
    while off < n:
        k = min(chunk, n - off)
        yield pattern_slice(off, k)
        off += k


def pattern_bytes(n):
    return b"".join(bytes(c) for c in pattern_chunks(n))


_crc_cache = {}


def pattern_crc(n):
    """zlib.crc32 of the first n pattern bytes (cached)."""
    if n not in _crc_cache:
        crc = 0
        for c in pattern_chunks(n):
            crc = zlib.crc32(c, crc)
        _crc_cache[n] = crc
    return _crc_cache[n]


# --- buffered socket with streaming body readers ---------------------------------------------

class ProtocolError(Exception):
    pass


class PeerClosed(Exception):
    pass


class BodySink:
    """Counts and checksums a body; keeps the first `keep` bytes."""

    def __init__(self, keep=64 * 1024):
        self.length = 0
        self.crc = 0
        self.keep = keep
        self.head = bytearray()

    def __call__(self, data):
        self.length += len(data)
        self.crc = zlib.crc32(data, self.crc)
        if len(self.head) < self.keep:
            self.head += data[:self.keep - len(self.head)]


class BufferedSocket:
    """Reads HTTP/1.1 messages from a socket: heads into a small buffer, bodies streamed to a
    sink in large pieces (recv_into a reusable buffer; no per-byte Python work)."""

    def __init__(self, sock, bufsize=1 << 20):
        self.sock = sock
        self.buf = bytearray()
        self._big = bytearray(bufsize)
        self._bigmv = memoryview(self._big)

    def fill(self):
        data = self.sock.recv(IO_CHUNK)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self, limit=1 << 20):
        """Bytes through the blank line, or None if the peer closed before sending anything."""
        start = 0
        while True:
            i = self.buf.find(b"\r\n\r\n", start)
            if i >= 0:
                head = bytes(self.buf[:i + 4])
                del self.buf[:i + 4]
                return head
            if len(self.buf) > limit:
                raise ProtocolError("head too large")
            start = max(0, len(self.buf) - 3)
            if not self.fill():
                if self.buf:
                    raise PeerClosed("closed inside a head")
                return None

    def read_line(self, limit=64 * 1024):
        start = 0
        while True:
            i = self.buf.find(b"\r\n", start)
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("line too long")
            start = max(0, len(self.buf) - 1)
            if not self.fill():
                raise PeerClosed("closed inside a line")

    def read_exact_to(self, n, sink):
        """Streams exactly n bytes to sink."""
        if self.buf:
            take = min(n, len(self.buf))
            sink(bytes(self.buf[:take]))
            del self.buf[:take]
            n -= take
        while n > 0:
            r = self.sock.recv_into(self._big, min(n, len(self._big)))
            if r == 0:
                raise PeerClosed("closed inside a body")
            sink(self._bigmv[:r])
            n -= r

    def read_until_close_to(self, sink):
        if self.buf:
            sink(bytes(self.buf))
            self.buf.clear()
        while True:
            r = self.sock.recv_into(self._big)
            if r == 0:
                return
            sink(self._bigmv[:r])

    def read_chunked_to(self, sink, trailers=None):
        """Decodes a chunked body to sink; strict enough to notice garbage."""
        while True:
            line = self.read_line()
            size_text = line.split(b";", 1)[0]
            if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text) \
                    or len(size_text) > 16:
                raise ProtocolError("bad chunk size %r" % line[:40])
            size = int(size_text, 16)
            if size == 0:
                while True:
                    t = self.read_line()
                    if not t:
                        return
                    if trailers is not None:
                        trailers.append(t)
            self.read_exact_to(size, sink)
            crlf = bytearray()
            self.read_exact_to(2, crlf.extend)
            if crlf != b"\r\n":
                raise ProtocolError("chunk data not followed by CRLF")

    def read_raw(self):
        """Whatever is available (buffered first); b'' on close."""
        if self.buf:
            data = bytes(self.buf)
            self.buf.clear()
            return data
        return self.sock.recv(IO_CHUNK)


def parse_head(head):
    """-> (start_line_parts, [(name, value)]) for a request or response head (lenient)."""
    lines = head[:-4].split(b"\r\n")
    first = lines[0].decode("latin-1")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return first, headers


def header_values(headers, name):
    name = name.lower()
    return [v for n, v in headers if n.lower() == name]


def header_tokens(headers, name):
    out = []
    for v in header_values(headers, name):
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def send_chunked(sock, chunks):
    for c in chunks:
        if len(c):
            sock.sendall(b"%x\r\n" % len(c))
            sock.sendall(c)
            sock.sendall(b"\r\n")
    sock.sendall(b"0\r\n\r\n")


# --- the server --------------------------------------------------------------------------------

ENDPOINTS = {"echo", "upload", "bytes", "status", "delay", "ws", "drop", "garbage", "partial"}
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

REASONS = {100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created",
           202: "Accepted", 204: "No Content", 301: "Moved Permanently", 302: "Found",
           304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           413: "Content Too Large", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class Upstream:
    """Threaded HTTP/1.1 test server. Thread-safe accessors return snapshots (plain dicts)."""

    def __init__(self, name="upstream", host="127.0.0.1", port=0, verbose=False):
        self.name = name
        self.host = host
        self._want_port = port
        self.verbose = verbose
        self._lock = threading.Lock()
        self._conns = []       # connection records (dicts), including control ones
        self._next_id = 1
        self._socks = set()
        self._lsock = None
        self._stopping = False
        self.port = None

    # -- lifecycle
    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self._want_port))
        s.listen(1024)
        self._lsock = s
        self.port = s.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, name="upstream-accept-%s" % self.name,
                             daemon=True)
        t.start()
        return self

    def stop(self):
        self._stopping = True
        if self._lsock is not None:
            try:
                self._lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._lsock.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- recording
    def connections(self):
        """Snapshot of the non-control connections: [{id, peer, opened, closed, requests}].
        After reset(), a connection still open from before counts only once it carries a new
        request."""
        with self._lock:
            return [json.loads(json.dumps(c)) for c in self._conns
                    if not c["control"] and not (c.get("pre_reset") and not c["requests"])]

    def requests(self):
        return [r for c in self.connections() for r in c["requests"]]

    def complete_requests(self):
        return [r for r in self.requests() if r["complete"]]

    def reset(self):
        """Forgets everything recorded so far (connections still open stay known, quietly)."""
        with self._lock:
            self._conns = [c for c in self._conns if c["closed"] is None]
            for c in self._conns:
                c["requests"] = []
                c["pre_reset"] = True

    def log(self):
        return {"name": self.name, "connections": self.connections()}

    def wait_for(self, predicate, timeout=5.0, interval=0.01):
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)

    # -- serving
    def _accept_loop(self):
        while not self._stopping:
            try:
                sock, addr = self._lsock.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                rec = {"id": self._next_id, "peer": "%s:%d" % addr, "opened": time.time(),
                       "closed": None, "control": False, "requests": []}
                self._next_id += 1
                self._conns.append(rec)
                self._socks.add(sock)
            threading.Thread(target=self._serve, args=(sock, rec), daemon=True).start()

    def _serve(self, sock, rec):
        bs = BufferedSocket(sock)
        try:
            while True:
                head = bs.read_head()
                if head is None:
                    break
                if not self._handle(bs, rec, head):
                    break
        except (PeerClosed, ProtocolError, OSError) as e:
            with self._lock:
                if rec["requests"] and not rec["requests"][-1]["complete"]:
                    rec["requests"][-1]["error"] = "%s: %s" % (type(e).__name__, e)
                else:
                    rec["error"] = "%s: %s" % (type(e).__name__, e)
        finally:
            with self._lock:
                rec["closed"] = time.time()
                self._socks.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def _handle(self, bs, rec, head):
        """Serves one request; returns False when the connection must close."""
        sock = bs.sock
        first, headers = parse_head(head)
        parts = first.split(" ")
        if len(parts) != 3:
            raise ProtocolError("bad request line %r" % first[:80])
        method, target, version = parts
        url = urllib.parse.urlsplit(target)
        path = url.path
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        control = path.startswith("/__")
        req = {"conn_id": rec["id"], "method": method, "target": target, "path": path,
               "query": url.query,
               "version": version, "headers": headers, "head_bytes": len(head),
               "body_length": 0, "body_crc32": 0, "complete": False, "error": None,
               "time": time.time()}
        with self._lock:
            if control and not rec["requests"]:
                rec["control"] = True
            if not control:
                rec["requests"].append(req)

        def q(name, default=None):
            v = query.get(name)
            return v[0] if v else default

        # Body framing (lenient: this is a test server, ficus is the strict one).
        te = header_tokens(headers, "transfer-encoding")
        cl = header_values(headers, "content-length")
        if q("stall_ms"):
            time.sleep(int(q("stall_ms")) / 1000.0)
        if "100-continue" in header_tokens(headers, "expect") and (te or cl):
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        sink = BodySink()
        req_trailers = []
        if path == "/ws" or path.endswith("/ws"):
            pass  # the body (if any) is tunnel data
        elif te and te[-1] == "chunked":
            bs.read_chunked_to(sink, req_trailers)
        elif cl:
            bs.read_exact_to(int(cl[0]), sink)
        with self._lock:
            req["body_length"] = sink.length
            req["body_crc32"] = sink.crc
            req["trailers"] = [t.decode("latin-1") for t in req_trailers]
            req["complete"] = True

        conn_tokens = header_tokens(headers, "connection")
        keep_alive = version == "HTTP/1.1" and "close" not in conn_tokens
        if version == "HTTP/1.0" and "keep-alive" in conn_tokens:
            keep_alive = True
        if q("close") == "1":
            keep_alive = False
        extra = []
        for h in query.get("hdr", []):
            n, _, v = h.partition(":")
            extra.append((n, v))
        chunked = q("chunked") == "1"
        eof_framed = q("eof") == "1"
        if eof_framed:
            keep_alive = False
        is_head = method == "HEAD"

        def respond(status, body=b"", ctype="application/json", length=None, chunks=None):
            hs = [("X-Upstream", self.name)]
            if status not in (204, 304) and status >= 200:
                hs.append(("Content-Type", ctype))
            if chunks is None:
                chunks = [body] if body else []
                length = len(body)
            if status in (204, 304):
                pass
            elif eof_framed:
                pass  # no Content-Length, no chunked: the body ends when we close
            elif chunked:
                hs.append(("Transfer-Encoding", "chunked"))
            else:
                hs.append(("Content-Length", str(length)))
            if not any(n.lower() == "connection" for n, _ in extra):
                hs.append(("Connection", "keep-alive" if keep_alive else "close"))
            hs += extra
            out = "HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Status"))
            out += "".join("%s: %s\r\n" % (n, v) for n, v in hs) + "\r\n"
            sock.sendall(out.encode("latin-1"))
            if is_head or status in (204, 304):
                return
            if q("body_delay_ms"):
                time.sleep(int(q("body_delay_ms")) / 1000.0)
            if chunked:
                send_chunked(sock, chunks)
            else:
                for c in chunks:
                    sock.sendall(c)

        def echo_body():
            return json.dumps({
                "server": self.name, "method": method, "target": target, "path": url.path,
                "query": url.query, "version": version, "headers": headers,
                "body_length": sink.length, "body_crc32": sink.crc,
                "body": sink.head.decode("latin-1"), "trailers": req["trailers"],
                "connection_id": rec["id"], "request_index": len(rec["requests"]) - 1,
            }).encode()

        # Routing tests put prefixes in front (/api/status/404): dispatch on the first
        # known endpoint segment.
        segs = path.split("/")
        for i in range(1, len(segs)):
            if segs[i] in ENDPOINTS:
                path = "/" + "/".join(segs[i:])
                break
        if control:
            if path == "/__log":
                respond(200, json.dumps(self.log()).encode())
            elif path == "/__reset":
                self.reset()
                respond(200, b'{"ok":true}')
            else:
                respond(404, b'{"error":"unknown control path"}')
        elif path == "/echo" or path == "/" or path.startswith("/echo/"):
            respond(200, echo_body())
        elif path == "/upload":
            respond(200, json.dumps({"server": self.name, "length": sink.length,
                                     "crc32": sink.crc}).encode())
        elif path == "/bytes":
            n = int(q("n", "0"))
            respond(200, ctype="application/octet-stream", length=n, chunks=pattern_chunks(n))
        elif path.startswith("/status/"):
            code = int(path[len("/status/"):])
            respond(code, b"status %d\n" % code, ctype="text/plain")
        elif path == "/delay":
            time.sleep(int(q("ms", "0")) / 1000.0)
            respond(200, echo_body())
        elif path == "/ws":
            return self._websocket(bs, headers, q)
        elif path == "/drop":
            return False
        elif path == "/garbage":
            sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            return False
        elif path == "/partial":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Upstream: %s\r\n\r\n"
                         b"0123456789" % self.name.encode())
            return False
        else:
            # Anything else echoes too, so routing tests can use arbitrary paths.
            respond(200, echo_body())
        if keep_alive and q("linger_close_ms"):
            # Answer as keep-alive, then close the idle connection without a word (what an
            # upstream with a short keep-alive timeout does).
            time.sleep(int(q("linger_close_ms")) / 1000.0)
            return False
        return keep_alive

    def _websocket(self, bs, headers, q):
        sock = bs.sock
        key = (header_values(headers, "sec-websocket-key") or [""])[0]
        if "websocket" not in header_tokens(headers, "upgrade") or \
                "upgrade" not in header_tokens(headers, "connection") or not key:
            body = b'{"error":"not an upgrade"}'
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(body), body))
            return False
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        # hello=TEXT: server-first data, in the same write as the 101 head.
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-Upstream: %s\r\n\r\n"
                      % (accept, self.name)).encode() + q("hello", "").encode())
        limit = int(q("close_after", "0")) or None
        echoed = 0
        while True:
            data = bs.read_raw()
            if not data:
                return False
            if limit is not None and echoed + len(data) >= limit:
                sock.sendall(data[:limit - echoed])
                return False
            sock.sendall(data)
            echoed += len(data)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--name", default="upstream")
    args = ap.parse_args(argv)
    up = Upstream(name=args.name, host=args.host, port=args.port).start()
    print("READY %d" % up.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        up.stop()


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
