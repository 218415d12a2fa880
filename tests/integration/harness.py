"""Shared harness for ficus integration tests (standard library only).

- free_port(), to_yaml(), make_config(): pick loopback ports and write configs.
- Ficus: one `ficus run` process (config in a temp dir, output to a log file, /ready wait,
  stop by PID: SIGTERM, wait, SIGKILL).
- UpstreamProcess: upstream.py as a subprocess (for heavy transfers, away from our GIL);
  upstream.Upstream runs in-process when a test wants to read its recording directly.
- RawConn / request(): exact bytes on a socket, and a response reader (status line, headers,
  body by Content-Length / chunked / close, 1xx interim responses collected).
- FicusTestCase: registers a cleanup for every process it starts (also at class level), and
  prints the ficus log of a failed test.

Environment: FICUS_BIN (default: build/release/apps/ficus), FICUS_SANITIZED=1 for the ASan
build (timeouts are multiplied by TIME_FACTOR).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import upstream  # noqa: E402
from upstream import BufferedSocket, BodySink, parse_head, header_values  # noqa: E402,F401

ROOT = os.path.dirname(os.path.dirname(HERE))
FICUS_BIN = os.environ.get("FICUS_BIN") or os.path.join(ROOT, "build", "release", "apps", "ficus")
SANITIZED = os.environ.get("FICUS_SANITIZED", "0") in ("1", "ON", "on", "true", "TRUE")
TIME_FACTOR = 4 if SANITIZED else 1


def _die_with_parent():
    """preexec_fn: the child gets SIGTERM if the test process dies (e.g. a ctest timeout
    kill), so no ficus or upstream outlives its test. Linux only; best effort."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def free_port():
    """A loopback TCP port that was free a moment ago (bind to 0 and release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            return v
        time.sleep(interval)


# --- YAML ------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z0-9_./*\-][A-Za-z0-9_./:*\-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _YAML_WORDS and not s.endswith(":"):
        return s
    return json.dumps(s)


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts/lists of scalars, dicts and lists (what configs need)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 1))
            elif isinstance(v, list) and v and any(isinstance(x, (dict, list)) for x in v):
                out.append("%s%s:" % (pad, k))
                out.append(to_yaml(v, indent + 1))
            else:
                out.append("%s%s: %s" % (pad, k, _flow(v)))
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, dict) and item:
                body = to_yaml(item, indent + 1).split("\n")
                out.append("%s- %s" % (pad, body[0].lstrip()))
                out.extend(body[1:])
            else:
                out.append("%s- %s" % (pad, _flow(item)))
    else:
        out.append(pad + _flow(obj))
    return "\n".join(out)


def _flow(v):
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (k, _flow(x)) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def endpoint(port, weight=None):
    addr = "127.0.0.1:%d" % port
    return addr if weight is None else {"address": addr, "weight": weight}


def make_config(clusters, routes, listen_port=None, admin_port=None, workers=1, timeouts=None,
                limits=None, admin=None, **extra):
    """A config dict. clusters: {name: [endpoint, ...]} or a list of cluster dicts."""
    if isinstance(clusters, dict):
        clusters = [{"name": n, "endpoints": eps, "connect_timeout": "1s"}
                    for n, eps in clusters.items()]
    cfg = {
        "workers": workers,
        "admin": dict({"listen": "127.0.0.1:%d" % (admin_port or free_port())}, **(admin or {})),
        "listeners": [{"name": "public", "listen": "127.0.0.1:%d" % (listen_port or free_port())}],
        "clusters": clusters,
        "routes": routes,
    }
    if timeouts:
        cfg["timeouts"] = timeouts
    if limits:
        cfg["limits"] = limits
    cfg.update(extra)
    return cfg


# --- HTTP over raw sockets -------------------------------------------------------------------

class Response:
    def __init__(self, version, status, reason, headers, body=b"", interim=None):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)] as received
        self.body = body                # bytes (b"" when streamed to a sink)
        self.interim = interim or []    # 1xx responses before the final one
        self.body_length = len(body)
        self.body_crc32 = zlib.crc32(body)
        self.chunked = False
        self.trailers = []

    def header(self, name, default=None):
        v = header_values(self.headers, name)
        return v[0] if v else default

    def header_all(self, name):
        return header_values(self.headers, name)

    def has_header(self, name):
        return bool(header_values(self.headers, name))

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        body = self.body[:300]
        return "<Response %s %d %s headers=%r body=%r%s>" % (
            self.version, self.status, self.reason, self.headers, body,
            "..." if len(self.body) > 300 else "")


class ConnectionClosed(Exception):
    pass


class RawConn:
    """One client connection sending exact bytes."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout * TIME_FACTOR)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bs = BufferedSocket(self.sock)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def request(self, method, path, headers=None, body=None, version="HTTP/1.1",
                host="localhost"):
        """Sends one request; headers is a list of (name, value) or a dict."""
        self.send(build_request(method, path, headers, body, version, host))

    def read_response(self, method="GET", sink=None, keep_body=True):
        """Reads one final response (collecting 1xx interim ones). Raises ConnectionClosed
        when the peer closed before a status line. A sink gets the body bytes streamed."""
        interim = []
        while True:
            try:
                head = self.bs.read_head()
            except upstream.PeerClosed:
                raise ConnectionClosed("closed inside a response head: %r" % bytes(self.bs.buf))
            if head is None:
                raise ConnectionClosed("connection closed before a response")
            first, headers = parse_head(head)
            parts = first.split(" ", 2)
            version, status = parts[0], int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            if 100 <= status < 200 and status != 101:
                interim.append(Response(version, status, reason, headers))
                continue
            break
        resp = Response(version, status, reason, headers, interim=interim)
        collected = BodySink(keep=(1 << 62) if keep_body else 0)

        def both(data):
            collected(data)
            if sink is not None:
                sink(data)

        te = [t.strip().lower() for v in header_values(headers, "transfer-encoding")
              for t in v.split(",")]
        cl = header_values(headers, "content-length")
        if method == "HEAD" or status in (101, 204, 304):
            pass
        elif te and te[-1] == "chunked":
            resp.chunked = True
            self.bs.read_chunked_to(both, resp.trailers)
        elif cl:
            self.bs.read_exact_to(int(cl[0]), both)
        else:
            self.bs.read_until_close_to(both)
        resp.body = bytes(collected.head)
        resp.body_length = collected.length
        resp.body_crc32 = collected.crc
        return resp

    def read_some(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        return self.bs.read_raw()

    def is_closed(self, timeout=2.0):
        """True if the peer closes (EOF or reset) within timeout with no further bytes."""
        self.sock.settimeout(timeout * TIME_FACTOR)
        try:
            data = self.bs.read_raw()
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        return data == b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_request(method, path, headers=None, body=None, version="HTTP/1.1", host="localhost"):
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    if host is not None and not any(n.lower() == "host" for n, _ in headers):
        headers.insert(0, ("Host", host))
    if body is not None:
        if isinstance(body, str):
            body = body.encode()
        if not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers):
            headers.append(("Content-Length", str(len(body))))
    out = ("%s %s %s\r\n" % (method, path, version)).encode("latin-1")
    out += b"".join(("%s: %s\r\n" % (n, v)).encode("latin-1") for n, v in headers) + b"\r\n"
    if body is not None:
        out += body
    return out


def request(port, method, path, headers=None, body=None, timeout=5.0, host="localhost",
            version="HTTP/1.1"):
    """One request on a fresh connection; returns the Response."""
    with RawConn(port, timeout=timeout) as c:
        c.request(method, path, headers, body, version=version, host=host)
        return c.read_response(method)


def send_raw(port, data, timeout=5.0, method="GET", check_closed=True):
    """Sends exact bytes on a fresh connection; returns (response or None, closed_after).
    closed_after waits up to 2 s for the peer to close (None when check_closed is False)."""
    with RawConn(port, timeout=timeout) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            resp = c.read_response(method)
        except (ConnectionClosed, ConnectionResetError):
            return None, True
        return resp, (c.is_closed(2.0) if check_closed else None)


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels.items())): float}."""
    out = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            continue
        labels = frozenset(label_re.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class Metrics:
    def __init__(self, text):
        self.text = text
        self.samples = parse_metrics(text)

    def get(self, name, default=0.0, **labels):
        """The sample with exactly these labels (default when absent)."""
        return self.samples.get((name, frozenset(labels.items())), default)

    def sum(self, name, **labels):
        """Sum over every sample of name whose labels include the given ones."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= set(ls))

    def names(self):
        return {n for n, _ in self.samples}


# --- processes -----------------------------------------------------------------------------

class Ficus:
    """One `ficus run` process with its config file and log in a temp dir."""

    def __init__(self, config, workdir=None, name="ficus"):
        self.config = config
        self.workdir = workdir or tempfile.mkdtemp(prefix="ficus-it-")
        self.name = name
        self.config_path = os.path.join(self.workdir, "ficus.yaml")
        self.log_path = os.path.join(self.workdir, "ficus.log")
        self.proc = None
        self._logf = None
        self.stopped_by_harness = False

    @property
    def port(self):
        return int(self.config["listeners"][0]["listen"].rsplit(":", 1)[1])

    @property
    def admin_port(self):
        return int(self.config["admin"]["listen"].rsplit(":", 1)[1])

    @property
    def pid(self):
        return self.proc.pid

    def write_config(self, config=None, text=None):
        if config is not None:
            self.config = config
        with open(self.config_path, "w") as f:
            f.write(text if text is not None else to_yaml(self.config) + "\n")

    def start(self, ready_timeout=10.0, wait=True):
        if not os.path.exists(FICUS_BIN):
            raise unittest.SkipTest("ficus binary not found at %s (set FICUS_BIN)" % FICUS_BIN)
        self.write_config()
        self._logf = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        self.proc = subprocess.Popen([FICUS_BIN, "run", "-c", self.config_path],
                                     stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir, env=env,
                                     preexec_fn=_die_with_parent)
        if wait:
            self.wait_ready(ready_timeout * TIME_FACTOR)
        return self

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("ficus exited with %s before /ready\n%s" % (
                    self.proc.returncode, self.log_tail()))
            try:
                r = request(self.admin_port, "GET", "/ready", timeout=1.0)
                if r.status == 200:
                    return
                last = "status %d" % r.status
            except (OSError, ConnectionClosed) as e:
                last = repr(e)
            time.sleep(0.02)
        raise AssertionError("ficus not ready within %.1fs (last: %s)\n%s" % (
            timeout, last, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, config=None, text=None):
        self.write_config(config, text)
        self.signal(signal.SIGHUP)

    def stop(self, timeout=None):
        """SIGTERM, wait, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        self.stopped_by_harness = self.proc.poll() is None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout or 20 * TIME_FACTOR)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.proc.returncode

    def sanitizer_report(self):
        """The ASan/LSan/UBSan report in the log, if any."""
        text = self.log_text()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer"):
            i = text.find(marker)
            if i >= 0:
                return text[max(0, i - 200):i + 6000]
        return None

    def stop_and_check(self):
        """Cleanup: stop, then fail on a sanitizer report or an unclean SIGTERM exit."""
        code = self.stop()
        report = self.sanitizer_report()
        if report:
            raise AssertionError("%s: sanitizer report in the log:\n%s" % (self.name, report))
        if getattr(self, "stopped_by_harness", False) and code != 0:
            raise AssertionError("%s exited with %s on SIGTERM\n%s" % (
                self.name, code, self.log_tail()))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, max_chars=20000):
        t = self.log_text()
        if len(t) > max_chars:
            t = "...\n" + t[-max_chars:]
        return "----- %s log (%s) -----\n%s\n----- end of log -----" % (
            self.name, self.log_path, t)

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def metrics(self):
        r = request(self.admin_port, "GET", "/metrics")
        if r.status != 200:
            raise AssertionError("GET /metrics -> %r" % r)
        return Metrics(r.body.decode())

    def settled_metrics(self, timeout=5.0):
        """Metrics once no request is in flight on any route. A worker records a response just
        after its last byte went out, so a client that reads the stats right after its last
        response can otherwise see that response's request without its status and timings."""
        def metrics_if_settled():
            m = self.metrics()
            return m if m.sum("ficus_route_requests_in_flight") == 0 else None

        m = wait_until(metrics_if_settled, timeout * TIME_FACTOR)
        if m is None:
            raise AssertionError("requests still in flight after %.1fs" % timeout)
        return m


class UpstreamProcess:
    """upstream.py as a subprocess; recording via GET /__log."""

    def __init__(self, name="upstream", port=0):
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "upstream.py"), "--port", str(port), "--name",
             name],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.stop()
            raise AssertionError("upstream.py did not start: %r" % line)
        self.port = int(line.split()[1])

    def log(self):
        return request(self.port, "GET", "/__log").json()

    def connections(self):
        return self.log()["connections"]

    def requests(self):
        return [r for c in self.connections() for r in c["requests"]]

    def complete_requests(self):
        return [r for r in self.requests() if r["complete"]]

    def reset(self):
        request(self.port, "GET", "/__reset")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class RssSampler:
    """Samples a process's VmRSS every interval seconds in a thread; .max_kib, .samples."""

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _read(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None

    def _run(self):
        while not self._stop.is_set():
            v = self._read()
            if v is not None:
                self.samples.append(v)
            self._stop.wait(self.interval)

    @property
    def max_kib(self):
        return max(self.samples) if self.samples else 0

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


# --- test case base ------------------------------------------------------------------------

class FicusTestCase(unittest.TestCase):
    """Starts processes with cleanups registered; prints ficus logs when a test fails."""

    _class_ficus = ()

    @classmethod
    def start_ficus_for_class(cls, config, **kw):
        f = Ficus(config, name="ficus(%s)" % cls.__name__)
        cls.addClassCleanup(cls._remove_workdir_unless_failed, f)  # runs after the stop
        cls.addClassCleanup(f.stop_and_check)
        f.start(**kw)
        cls._class_ficus = tuple(cls._class_ficus) + (f,)
        return f

    @classmethod
    def start_upstream_for_class(cls, name="upstream"):
        up = upstream.Upstream(name=name).start()
        cls.addClassCleanup(up.stop)
        return up

    def setUp(self):
        self._ficus = []
        self._fail_count0 = self._failure_count()
        self.addCleanup(self._dump_logs_if_failed)

    def _failure_count(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return 0
        return len(getattr(result, "failures", [])) + len(getattr(result, "errors", []))

    _class_failed = False

    @classmethod
    def _remove_workdir_unless_failed(cls, f):
        if not cls._class_failed and f.sanitizer_report() is None:
            shutil.rmtree(f.workdir, ignore_errors=True)

    def _dump_logs_if_failed(self):
        if self._failure_count() > self._fail_count0:
            type(self)._class_failed = True
            for f in list(self._ficus) + list(self._class_ficus):
                sys.stderr.write("\n" + f.log_tail() + "\n")
        else:
            for f in self._ficus:  # a passing test leaves nothing behind
                shutil.rmtree(f.workdir, ignore_errors=True)

    def start_ficus(self, config, **kw):
        f = Ficus(config, name="ficus(%s)" % self.id())
        self._ficus.append(f)
        self.addCleanup(f.stop_and_check)
        f.start(**kw)
        return f

    def start_upstream(self, name="upstream"):
        up = upstream.Upstream(name=name).start()
        self.addCleanup(up.stop)
        return up

    def start_upstream_process(self, name="upstream"):
        up = UpstreamProcess(name)
        self.addCleanup(up.stop)
        return up

    def assertErrorResponse(self, resp, status, kind=None):
        """Status, JSON body {"error","message","request_id"} and Content-Type."""
        self.assertIsNotNone(resp, "no response (connection closed without an answer)")
        self.assertEqual(resp.status, status, resp)
        ctype = resp.header("content-type", "")
        self.assertTrue(ctype.startswith("application/json"), resp)
        body = resp.json()
        if kind is not None:
            self.assertEqual(body.get("error"), kind, resp)
        self.assertIn("message", body, resp)
        self.assertIn("request_id", body, resp)
        if resp.has_header("x-request-id"):
            self.assertEqual(body["request_id"], resp.header("x-request-id"), resp)
        return body
