"""A throwaway PostgreSQL 15 cluster for the pg proxy's tests (standard library only).

initdb in a temp dir, `postgres` on a loopback port the test picks (Unix socket in the same
dir), stopped by PID (SIGINT: fast shutdown, then SIGKILL). As root (CI), initdb refuses to
run: the cluster then belongs to the `postgres` system user and its processes drop to it
(setuid in the child, so the PID we hold is the server's own).

Roles: `postgres` (superuser, SCRAM), `app` (SCRAM), `legacy` (md5, authenticated with md5 by
pg_hba). Database `shop` with a table `items`.
"""

import os
import pwd
import shutil
import signal
import socket
import struct
import hashlib
import hmac
import base64
import subprocess
import tempfile
import time
import unittest

PG_BIN = "/usr/lib/postgresql/15/bin"
SUPER_PASSWORD = "super-secret"
APP_PASSWORD = "app-secret"
LEGACY_PASSWORD = "legacy-secret"


def available():
    return os.path.exists(os.path.join(PG_BIN, "postgres"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """ssl=True: `ssl=on` with a certificate of tls_certs.Certs (self.certs) and a pg_hba.conf
    of `hostssl` lines only, so a client in plain text is refused."""

    def __init__(self, ssl=False):
        self.ssl = ssl
        self.certs = None
        if not available():
            raise unittest.SkipTest("PostgreSQL 15 is not installed (scripts/install-deps.sh)")
        self.dir = tempfile.mkdtemp(prefix="ficus-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.proc = None
        self.uid = self.gid = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            os.chown(self.dir, self.uid, self.gid)

    def _demote(self):
        if self.uid is not None:
            os.setgid(self.gid)
            os.setgroups([])
            os.setuid(self.uid)
        try:
            import ctypes
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # die with the test
        except Exception:
            pass

    def _run(self, args, **kw):
        return subprocess.run(args, preexec_fn=self._demote, cwd=self.dir, check=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)

    def start(self):
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(SUPER_PASSWORD + "\n")
        if self.uid is not None:
            os.chown(pwfile, self.uid, self.gid)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres",
                   "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
                   "-E", "UTF8", "--locale=C"])
        host = "hostssl" if self.ssl else "host"
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write("local all all trust\n"
                    "local replication all trust\n"  # pg_basebackup and standbys (replicas)
                    "%s all legacy 127.0.0.1/32 md5\n"
                    "%s all all 127.0.0.1/32 scram-sha-256\n" % (host, host))
        extra = []
        if self.ssl:
            from tls_certs import Certs
            self.certs = Certs(os.path.join(self.dir, "certs"))
            if self.uid is not None:  # the server reads its key as the postgres user
                for name in os.listdir(self.certs.dir):
                    os.chown(os.path.join(self.certs.dir, name), self.uid, self.gid)
                os.chown(self.certs.dir, self.uid, self.gid)
            extra = ["-c", "ssl=on", "-c", "ssl_cert_file=" + self.certs.cert,
                     "-c", "ssl_key_file=" + self.certs.key]
        self._start_server(extra)
        self.psql("postgres", "CREATE ROLE app LOGIN PASSWORD '%s'; "
                  "SET password_encryption = 'md5'; "
                  "CREATE ROLE legacy LOGIN PASSWORD '%s';" % (APP_PASSWORD, LEGACY_PASSWORD))
        self.psql("postgres", "CREATE DATABASE shop OWNER app")
        self.psql("shop", "CREATE TABLE items (id int PRIMARY KEY, name text); "
                  "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 100) g; "
                  "ALTER TABLE items OWNER TO app; GRANT SELECT ON items TO legacy;")
        return self

    def _start_server(self, extra=()):
        self.log = open(os.path.join(self.dir, "postgres.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(PG_BIN, "postgres"), "-D", self.data, "-p", str(self.port),
             "-k", self.dir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300",
             "-c", "fsync=off", "-c", "shared_buffers=32MB"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=self._demote, cwd=self.dir)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("postgres exited: " + self.log_text())
            r = subprocess.run([os.path.join(PG_BIN, "pg_isready"), "-h", self.dir, "-p",
                                str(self.port)], stdout=subprocess.DEVNULL)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("postgres did not get ready: " + self.log_text())

    def psql(self, db, sql):
        """Runs SQL as the superuser over the Unix socket; returns stdout."""
        r = self._run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.dir,
                       "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql])
        return r.stdout.decode()

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "postgres.log"), "rb") as f:
                return f.read()[-5000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresReplica(PostgresServer):
    """A streaming replica (hot standby) of a started PostgresServer: pg_basebackup -R from the
    primary's Unix socket into its own data dir, started on its own loopback port."""

    def __init__(self, primary):
        super().__init__()
        self.primary = primary

    def start(self):
        self._run([os.path.join(PG_BIN, "pg_basebackup"), "-h", self.primary.dir, "-p",
                   str(self.primary.port), "-U", "postgres", "-D", self.data, "-R", "-X",
                   "stream", "-c", "fast"])
        self._start_server(["-c", "hot_standby=on", "-c", "wal_receiver_status_interval=1s"])
        return self

    def wait_replayed(self, timeout=30):
        """Until the replica has replayed everything the primary has written so far."""
        target = self.primary.psql("postgres", "SELECT pg_current_wal_lsn()").strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.psql("postgres", "SELECT pg_last_wal_replay_lsn() >= '%s'" % target)
            if done.strip() == "t":
                return
            time.sleep(0.05)
        raise AssertionError("the replica did not replay up to " + target)

    def pause_replay(self):
        self.psql("postgres", "SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10  # a pause takes effect between two WAL records
        while self.psql("postgres", "SELECT pg_get_wal_replay_pause_state()").strip() != "paused":
            if time.monotonic() > deadline:
                raise AssertionError("replay did not pause")
            time.sleep(0.02)

    def resume_replay(self):
        self.psql("postgres", "SELECT pg_wal_replay_resume()")

    def kill(self):
        """SIGKILL by PID: the replica vanishes without a goodbye."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --- a minimal frontend (for exact bytes: malformed messages after a real login) -------------

def _msg(t, body):
    return t + struct.pack("!I", len(body) + 4) + body


class RawPg:
    """A PostgreSQL v3 connection over a raw socket: startup, SCRAM-SHA-256, raw messages."""

    def __init__(self, port, user, password, database, timeout=10.0, ssl_context=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.backend_key = None  # (pid, secret) from BackendKeyData
        if ssl_context is not None:
            self.s = start_tls(self.s, ssl_context)
        body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + \
            database.encode() + b"\0\0"
        self.s.sendall(struct.pack("!I", len(body) + 4) + body)
        t, b = self.read()
        assert t == b"R" and struct.unpack("!I", b[:4])[0] == 10, (t, b)
        nonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = "n=,r=" + nonce
        first = ("n,," + first_bare).encode()
        self.send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
        t, b = self.read()
        assert t == b"R" and struct.unpack("!I", b[:4])[0] == 11, (t, b)
        server_first = b[4:].decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth = (first_bare + "," + server_first + "," + without_proof).encode()
        sig = hmac.new(hashlib.sha256(client_key).digest(), auth, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.send(b"p", (without_proof + ",p=" + base64.b64encode(proof).decode()).encode())
        while True:
            t, b = self.read()
            if t == b"E":
                raise AssertionError("login failed: %r" % b)
            if t == b"K":
                self.backend_key = struct.unpack("!II", b)
            if t == b"Z":
                break

    def send(self, t, body):
        self.s.sendall(_msg(t, body))

    def read(self):
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("!I", self.buf[1:5])[0]
                if len(self.buf) >= n + 1:
                    t, b = self.buf[:1], self.buf[5:n + 1]
                    self.buf = self.buf[n + 1:]
                    return t, b
            d = self.s.recv(65536)
            if not d:
                return None, None
            self.buf += d

    def query(self, sql):
        """Simple query; returns (rows, error fields or None)."""
        self.send(b"Q", sql.encode() + b"\0")
        rows, err = [], None
        while True:
            t, b = self.read()
            if t is None:
                if err is not None:  # a FATAL error, then the close
                    return rows, err
                raise ConnectionError("closed")
            if t == b"D":
                n = struct.unpack("!H", b[:2])[0]
                off, row = 2, []
                for _ in range(n):
                    ln = struct.unpack("!i", b[off:off + 4])[0]
                    off += 4
                    row.append(None if ln < 0 else b[off:off + ln].decode())
                    off += max(ln, 0)
                rows.append(row)
            elif t == b"E":
                err = error_fields(b)
            elif t == b"Z":
                return rows, err

    def close(self):
        self.s.close()


def start_tls(sock, ssl_context, server_hostname="localhost"):
    """SSLRequest on a fresh connection; on 'S' the TLS handshake. Returns the TLS socket."""
    sock.sendall(struct.pack("!II", 8, 80877103))
    answer = sock.recv(1)
    if answer != b"S":
        raise AssertionError("SSLRequest answered %r" % answer)
    return ssl_context.wrap_socket(sock, server_hostname=server_hostname)


def cancel_request(port, backend_key, ssl_context=None):
    """Sends a CancelRequest (after an SSLRequest and TLS when ssl_context is given)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if ssl_context is not None:
            s = start_tls(s, ssl_context)
        s.sendall(struct.pack("!IIII", 16, 80877102, backend_key[0], backend_key[1]))
        s.recv(1)  # the server closes when it has taken the request
    finally:
        s.close()


def error_fields(body):
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out
