"""A real Prometheus (Debian package `prometheus`) for integration tests: started on a loopback
port with a temporary config that scrapes one target every second (and evaluates the given rule
files every second), queried through its HTTP API, stopped by PID when the test ends."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
import urllib.request

from harness import free_port

PROMETHEUS = shutil.which("prometheus")


class Prometheus:
    def __init__(self, test, target_port, rule_files=()):
        """Starts scraping 127.0.0.1:target_port/metrics; cleanups go to `test` (a TestCase)."""
        self.workdir = tempfile.mkdtemp(prefix="ficus-prom-")
        test.addCleanup(shutil.rmtree, self.workdir, True)
        self.port = free_port()
        config = os.path.join(self.workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n")
            if rule_files:
                f.write("rule_files: [%s]\n" % ", ".join("'%s'" % r for r in rule_files))
            f.write("scrape_configs:\n  - job_name: ficus\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % target_port)
        self.log_path = os.path.join(self.workdir, "prometheus.log")
        log = open(self.log_path, "wb")
        test.addCleanup(log.close)
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(self.workdir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir)
        test.addCleanup(self.stop)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def query(self, q):
        """The first sample's value of an instant query, or None (not up yet, no result)."""
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (self.port,
                                                       urllib.parse.urlencode({"query": q}))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                body = json.load(r)
        except OSError:
            return None
        if body.get("status") != "success" or not body["data"]["result"]:
            return None
        return float(body["data"]["result"][0]["value"][1])

    def log_tail(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]
