"""The command line: --version, --help, `ficus check` on good and bad configs, config warnings
(check and run print them), and the duration grammar `ficus load` shares with the config."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import FICUS_BIN, TIME_FACTOR, free_port

GOOD = """\
workers: 1
admin: {{ listen: 127.0.0.1:{admin} }}
listeners:
  - name: public
    listen: 127.0.0.1:{listen}
clusters:
  - name: app
    endpoints: [127.0.0.1:{up1}, {{ address: 127.0.0.1:{up2}, weight: 2 }}]
    connect_timeout: 1s
    pool: {{ max_idle: 64, idle_timeout: 4s }}
routes:
  - name: api
    match: {{ path_prefix: /api, methods: [GET] }}
    cluster: app
    timeout: 5s
    upstream_timeout: 2s
timeouts: {{ connect: 1s, request_head: 2s, idle: 60s, upstream_response: 30s, drain: 5s }}
limits: {{ max_head_bytes: 16KiB, max_header_count: 100, max_body_bytes: 2GiB }}
"""

# Each deliberate error sits on a known line (1-based), noted in the comment.
BAD = """\
workers: 1
admin: { listen: 127.0.0.1:9901 }
listeners:
  - name: public
    listen: 127.0.0.1:notaport
clusters:
  - name: app
    endpoints: []
routes:
  - name: api
    match: { path_prefix: /api }
    cluster: nope
timeouts:
  connect: 5 parsecs
bogus_key: 1
"""
BAD_LINES = {5: "listeners[0].listen", 8: "clusters[0].endpoints",
             12: "routes[0].cluster", 14: "timeouts.connect", 15: "bogus_key"}

# Legal but probably unintended: a short admin token (line 2), a cluster no route uses (line 7),
# a route after a catch-all (line 14).
WARNY = """\
workers: 1
admin: {{ listen: 127.0.0.1:{admin}, token: short }}
listeners:
  - listen: 127.0.0.1:{listen}
clusters:
  - {{ name: app, endpoints: [127.0.0.1:{up1}] }}
  - name: unused
    endpoints: [127.0.0.1:{up2}]
routes:
  - name: all
    cluster: app
  - name: never
    match: {{ path_prefix: /api }}
    cluster: app
"""
WARNY_LINES = {2: "admin.token", 7: "clusters[1]", 12: "routes[1]"}

WARNING_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<field>\S+): warning: (?P<reason>.+)$")

ERROR_LINE = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<field>\S+): (?P<reason>.+)$")


class CliTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(FICUS_BIN):
            self.skipTest("ficus binary not found at %s" % FICUS_BIN)
        self.dir = tempfile.mkdtemp(prefix="ficus-cli-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_ficus(self, *args, timeout=20):
        return subprocess.run([FICUS_BIN, *args], capture_output=True, text=True,
                              timeout=timeout * TIME_FACTOR, cwd=self.dir)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version(self):
        r = self.run_ficus("--version")
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout + r.stderr, r"\d+\.\d+\.\d+")

    def test_help(self):
        r = self.run_ficus("--help")
        self.assertEqual(r.returncode, 0, r)
        out = r.stdout + r.stderr
        self.assertIn("run", out)
        self.assertIn("check", out)

    def test_unknown_command_fails(self):
        r = self.run_ficus("no-such-command")
        self.assertNotEqual(r.returncode, 0, r)

    def test_check_good_config(self):
        path = self.write("good.yaml", GOOD.format(admin=free_port(), listen=free_port(),
                                                   up1=free_port(), up2=free_port()))
        r = self.run_ficus("check", "-c", path)
        self.assertEqual(r.returncode, 0, r)
        out = r.stdout + r.stderr
        self.assertTrue(out.strip(), "check prints a summary")
        self.assertIn("api", out)
        self.assertIn("app", out)

    def test_check_bad_config_reports_every_error_with_position(self):
        path = self.write("bad.yaml", BAD)
        r = self.run_ficus("check", "-c", path)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertEqual(r.returncode, 1, r)
        out = (r.stdout + r.stderr).splitlines()
        errors = [m for m in (ERROR_LINE.match(line) for line in out) if m]
        self.assertTrue(errors, "no FILE:LINE:COL: field: reason lines in %r" % out)
        for m in errors:
            self.assertTrue(m.group("file").endswith("bad.yaml"), m.group(0))
            self.assertGreaterEqual(int(m.group("col")), 1, m.group(0))
        lines = {int(m.group("line")): m for m in errors}
        for line, field in BAD_LINES.items():
            self.assertIn(line, lines, "no error reported on line %d (%s); got:\n%s"
                          % (line, field, "\n".join(out)))
            self.assertIn(field.split("[")[0].split(".")[0], lines[line].group("field"),
                          lines[line].group(0))

    def test_check_missing_file(self):
        r = self.run_ficus("check", "-c", os.path.join(self.dir, "missing.yaml"))
        self.assertNotEqual(r.returncode, 0, r)

    def test_check_yaml_syntax_error_has_position(self):
        path = self.write("syntax.yaml", "workers: 1\nlisteners: [ { name: a\n")
        r = self.run_ficus("check", "-c", path)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stdout + r.stderr, r"syntax\.yaml:\d+:\d+: ")

    def test_check_env_substitution(self):
        text = GOOD.format(admin=free_port(), listen=free_port(), up1=free_port(),
                           up2=free_port()).replace("workers: 1", "workers: ${FICUS_IT_WORKERS}")
        path = self.write("env.yaml", text)
        env = dict(os.environ, FICUS_IT_WORKERS="1")
        r = subprocess.run([FICUS_BIN, "check", "-c", path], capture_output=True, text=True,
                           timeout=20 * TIME_FACTOR, env=env)
        self.assertEqual(r.returncode, 0, r)
        env.pop("FICUS_IT_WORKERS")
        r = subprocess.run([FICUS_BIN, "check", "-c", path], capture_output=True, text=True,
                           timeout=20 * TIME_FACTOR, env=env)
        self.assertEqual(r.returncode, 1, r)
        self.assertRegex(r.stdout + r.stderr, r"env\.yaml:1:\d+: workers: ")


if __name__ == "__main__":
    unittest.main()

    def check_warnings(self, stderr, path):
        found = {}
        for line in stderr.splitlines():
            m = WARNING_LINE.match(line)
            if m:
                self.assertEqual(m.group("file"), path, line)
                found[int(m.group("line"))] = m
        for line, field in WARNY_LINES.items():
            self.assertIn(line, found, "no warning on line %d (%s) in:\n%s" % (line, field, stderr))
            self.assertEqual(found[line].group("field"), field, found[line].group(0))

    def test_check_prints_warnings(self):
        path = self.write("warny.yaml", WARNY.format(admin=free_port(), listen=free_port(),
                                                     up1=free_port(), up2=free_port()))
        r = self.run_ficus("check", "-c", path)
        self.assertEqual(r.returncode, 0, r)  # warnings do not fail the check
        self.check_warnings(r.stderr, path)
        self.assertIn("shorter than 16", r.stderr)

    def test_run_prints_warnings(self):
        path = self.write("warny.yaml", WARNY.format(admin=free_port(), listen=free_port(),
                                                     up1=free_port(), up2=free_port()))
        p = subprocess.Popen([FICUS_BIN, "run", "-c", path], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, cwd=self.dir)
        try:
            # The warnings come before anything else; read until all three are in.
            lines = []
            while sum(1 for line in lines if ": warning: " in line) < len(WARNY_LINES):
                line = p.stderr.readline()
                if not line:
                    break
                lines.append(line)
        finally:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=20 * TIME_FACTOR)
        self.check_warnings("".join(lines), path)

    def test_check_bare_number_duration_says_add_a_unit(self):
        text = GOOD.format(admin=free_port(), listen=free_port(), up1=free_port(),
                           up2=free_port()).replace("drain: 5s", "drain: 90")
        path = self.write("bare.yaml", text)
        r = self.run_ficus("check", "-c", path)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("timeouts.drain: '90' has no unit: write 90s or 90ms", r.stderr)

    def test_load_takes_the_config_duration_grammar(self):
        url = "http://127.0.0.1:%d/" % free_port()
        r = self.run_ficus("load", url, "-d", "90")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("--duration: '90' has no unit: write 90s or 90ms", r.stdout + r.stderr)
        r = self.run_ficus("load", url, "-d", "1x")
        self.assertNotEqual(r.returncode, 0, r)
        self.assertIn("--duration: expected a number with a unit", r.stdout + r.stderr)
        # 1h30m and 1d are accepted (as in the config); SIGTERM ends the run early.
        for d in ("1h30m", "1d"):
            p = subprocess.Popen([FICUS_BIN, "load", url, "-d", d, "--rate", "5", "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 cwd=self.dir)
            try:
                out, err = p.communicate(timeout=1.0)
                self.fail("load -d %s ended by itself: %s %s" % (d, out, err))
            except subprocess.TimeoutExpired:
                pass
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=20 * TIME_FACTOR)
            self.assertIn('"mode"', out, err)
