"""An upstream that misbehaves on purpose, one way per request path, to test that a proxy never
hands one request's response to another client (standard library only, runs in a thread).

Every well-behaved answer names the request it answers ("own:<path>"), so a client can tell
its own response from one another request caused. Paths:

  /late       200, then 300 ms later an unsolicited second response on the same connection
  /nocontent  204, then stray bytes (a whole response) in a separate write
  /notmod     304, then stray bytes in a separate write
  HEAD any    headers with Content-Length: 5, then 5 body bytes a HEAD response must not have
  POST /early answered at once, before its body is read; the body is then read as the next
              request on the connection (what a lax server does with an early error)
  /once       answered with keep-alive, but the connection's next request is read and the
              connection closed without an answer (the keep-alive race, made certain)
  /interim    103 Early Hints with a Link field, then 200
  /trailers   chunked with trailer fields, some of which must not be trailers
  /nocontent-cl  204 with Content-Length: 0
  /gzip-te    Transfer-Encoding: gzip, chunked
  /upgrade    101 (when asked to upgrade), then echoes bytes back
  anything else: 200 "own:<path>"

`seen` records (method, path, headers, body, trailers) of every request read, in order.
"""

import gzip
import socket
import threading
import time


def _response(status, reason, body=b"", headers=()):
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for n, v in headers:
        head += "%s: %s\r\n" % (n, v)
    if status not in (204, 304) and not any(n.lower() in ("content-length", "transfer-encoding")
                                            for n, _ in headers):
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode("latin-1") + b"\r\n" + body


STRAY = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def head(self):
        start = self.line()
        while start == "":
            start = self.line()
        headers = []
        while True:
            line = self.line()
            if line == "":
                return start, headers
            name, _, value = line.partition(":")
            headers.append((name, value.strip()))

    def chunked(self):
        body = b""
        while True:
            size = int(self.line().split(";")[0], 16)
            if size == 0:
                break
            body += self.exact(size)
            self.exact(2)
        trailers = []
        while True:
            line = self.line()
            if line == "":
                return body, trailers
            name, _, value = line.partition(":")
            trailers.append((name, value.strip()))


def _get(headers, name):
    for n, v in headers:
        if n.lower() == name.lower():
            return v
    return None


class HostileUpstream:
    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.seen = []
        self.connections = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        try:
            self.listener.close()
        except OSError:
            pass

    def count(self, method, path):
        with self.lock:
            return sum(1 for m, p, *_ in self.seen if m == method and p == path)

    def _accept(self):
        while not self.stopping:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        r = _Reader(sock)
        try:
            close_next = False
            while True:
                start, headers = r.head()
                method, path, _ = start.split(" ", 2)
                if close_next:
                    with self.lock:
                        self.seen.append((method, path, headers, b"", []))
                    return
                body, trailers = b"", []
                early = method == "POST" and path == "/early"
                if not early:
                    if (_get(headers, "transfer-encoding") or "").lower() == "chunked":
                        body, trailers = r.chunked()
                    elif _get(headers, "content-length"):
                        body = r.exact(int(_get(headers, "content-length")))
                with self.lock:
                    self.seen.append((method, path, headers, body, trailers))
                close_next = self._answer(sock, method, path, headers, body)
        except (EOFError, OSError, ValueError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _answer(self, sock, method, path, headers, body):
        """Writes the answer; returns True when the connection's next request must go
        unanswered."""
        own = ("own:" + path).encode()
        if method == "HEAD":
            sock.sendall(_response(200, "OK", headers=[("Content-Length", "5")]))
            time.sleep(0.05)
            sock.sendall(b"EVIL!")
        elif path == "/late":
            sock.sendall(_response(200, "OK", own))
            time.sleep(0.3)
            sock.sendall(STRAY)
        elif path == "/nocontent":
            sock.sendall(_response(204, "No Content"))
            time.sleep(0.05)
            sock.sendall(STRAY)
        elif path == "/notmod":
            sock.sendall(_response(304, "Not Modified", headers=[("ETag", '"x"')]))
            time.sleep(0.05)
            sock.sendall(STRAY)
        elif path == "/early":
            sock.sendall(_response(401, "Unauthorized", b"early"))
        elif path == "/once":
            sock.sendall(_response(200, "OK", own))
            return True
        elif path == "/interim":
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
                         b"Connection: keep-alive\r\n\r\n")
            time.sleep(0.02)
            sock.sendall(_response(200, "OK", own))
        elif path == "/trailers":
            sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n"
                         b"\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nContent-Length: 99\r\n"
                         b"Set-Cookie: stolen=1\r\nTransfer-Encoding: chunked\r\n"
                         b"X-Other: 2\r\n\r\n")
        elif path == "/nocontent-cl":
            sock.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n")
        elif path == "/gzip-te":
            data = gzip.compress(own * 1000)
            out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            for i in range(0, len(data), 100):
                piece = data[i:i + 100]
                out += b"%x\r\n" % len(piece) + piece + b"\r\n"
            sock.sendall(out + b"0\r\n\r\n")
        elif path == "/upgrade":
            sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                         b"Upgrade: echo\r\n\r\n")
            while True:
                data = sock.recv(65536)
                if not data:
                    raise EOFError
                sock.sendall(data)
        else:
            sock.sendall(_response(200, "OK", own))
        return False
