"""The Debian package: `cpack -G DEB` on the build under test gives a .deb with the binary, the
service's config (a conffile), the systemd unit, docs and the license, depending on the shared
libraries the binary links; unpacked, its `ficus --version` names a commit and `ficus check`
accepts its config; the unit passes `systemd-analyze verify` where that is available."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import FICUS_BIN

BUILD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(FICUS_BIN)))


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cpack_config = os.path.join(BUILD_DIR, "CPackConfig.cmake")
        if not os.path.exists(cpack_config) or not shutil.which("cpack"):
            raise unittest.SkipTest("no CPackConfig.cmake in %s" % BUILD_DIR)
        cls.dir = tempfile.mkdtemp(prefix="ficus-deb-")
        r = run(["cpack", "-G", "DEB", "--config", cpack_config, "-B", cls.dir])
        if r.returncode != 0:
            shutil.rmtree(cls.dir, True)
            raise AssertionError("cpack failed:\n" + r.stdout + r.stderr)
        debs = [f for f in os.listdir(cls.dir) if f.endswith(".deb")]
        assert len(debs) == 1, debs
        cls.deb = os.path.join(cls.dir, debs[0])
        cls.root = os.path.join(cls.dir, "root")
        subprocess.run(["dpkg-deb", "-x", cls.deb, cls.root], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def test_control_fields_and_contents(self):
        info = run(["dpkg-deb", "-f", self.deb]).stdout
        self.assertRegex(info, r"(?m)^Package: ficus$")
        self.assertRegex(info, r"(?m)^Version: \d+\.\d+\.\d+$")
        depends = re.search(r"(?m)^Depends: (.*)$", info).group(1)
        for lib in ("libssl3", "libyaml-cpp", "libsqlite3", "libc6"):
            self.assertIn(lib, depends)
        files = run(["dpkg-deb", "-c", self.deb]).stdout
        for path in ("./usr/bin/ficus", "./etc/ficus/ficus.yaml",
                     "./usr/lib/systemd/system/ficus.service", "./usr/share/doc/ficus/LICENSE",
                     "./usr/share/doc/ficus/README.md", "./usr/share/doc/ficus/docs/config.md",
                     "./usr/share/doc/ficus/examples/ficus.yaml"):
            self.assertIn(path, files)
        conffiles = run(["dpkg-deb", "-I", self.deb, "conffiles"]).stdout.split()
        self.assertEqual(conffiles, ["/etc/ficus/ficus.yaml"])

    def test_installed_binary_runs_and_checks_its_config(self):
        ficus = os.path.join(self.root, "usr/bin/ficus")
        r = run([ficus, "--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.strip(), r"^ficus \d+\.\d+\.\d+ \(commit ([0-9a-f]{4,}|unknown)\)$")
        r = run([ficus, "check", "-c", os.path.join(self.root, "etc/ficus/ficus.yaml")])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ficus.yaml: OK", r.stdout)

    def test_systemd_unit(self):
        with open(os.path.join(self.root, "usr/lib/systemd/system/ficus.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/bin/ficus run -c /etc/ficus/ficus.yaml\n", unit)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID\n", unit)
        for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                     "PrivateTmp=yes", "DynamicUser=yes", "StateDirectory=ficus"):
            self.assertIn(line + "\n", unit)
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze not installed")
        # verify checks that ExecStart's binary exists: point it at the unpacked one. It
        # exits 0 on unknown keys too, so its output must be empty.
        path = os.path.join(self.dir, "ficus.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/bin/ficus", os.path.join(self.root, "usr/bin/ficus")))
        r = run(["systemd-analyze", "verify", path])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        r = run(["systemd-analyze", "security", "--offline=yes", "--threshold=30", path])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
