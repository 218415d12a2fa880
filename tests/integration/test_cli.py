"""The command line: --version, --help, `ficus check` on good and bad configs."""

import os
import re
import shutil
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
