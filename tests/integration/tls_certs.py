"""Certificates for TLS tests, made with the openssl CLI in a directory the test owns: a CA, a
certificate for `localhost` and 127.0.0.1 signed by it (server or client use), and an unrelated
CA (for "wrong CA" tests). Standard library only."""

import os
import subprocess


def _openssl(cwd, *args):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class Certs:
    """Files: ca.crt, server.crt/server.key (CN=localhost, SAN localhost and 127.0.0.1),
    other-ca.crt (a CA that signed nothing here)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                 "-out", "ca.crt", "-days", "2", "-subj", "/CN=ficus-test-ca")
        _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                 "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=other-ca")
        self.issue("server", "localhost", "DNS:localhost,IP:127.0.0.1")
        self.ca = self.path("ca.crt")
        self.other_ca = self.path("other-ca.crt")
        self.cert = self.path("server.crt")
        self.key = self.path("server.key")

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, cn, san):
        """NAME.crt / NAME.key signed by the CA."""
        with open(self.path(name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        _openssl(self.dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                 "-out", name + ".csr", "-subj", "/CN=" + cn)
        _openssl(self.dir, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey",
                 "ca.key", "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile",
                 name + ".ext")
        os.chmod(self.path(name + ".key"), 0o600)
