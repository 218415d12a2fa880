"""Keys and tokens for the JWT tests: RSA and EC P-256 keys made with python3-cryptography, their
JWK form, tokens signed with them (RS256, ES256: real signatures), and a small JWKS server on
loopback whose key set, answer status and fetch count a test controls."""

import base64
import http.server
import json
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from loopback_server import LoopbackHTTPServer


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(n, length=None):
    length = length or (n.bit_length() + 7) // 8
    return b64(n.to_bytes(length, "big"))


class Key:
    """A signing key and its public JWK. kind: "RS256" or "ES256"."""

    def __init__(self, kind, kid):
        self.kind = kind
        self.kid = kid
        if kind == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self):
        pub = self.private.public_key().public_numbers()
        if self.kind == "RS256":
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                    "n": _int_b64(pub.n), "e": _int_b64(pub.e)}
        return {"kty": "EC", "kid": self.kid, "crv": "P-256", "use": "sig",
                "x": _int_b64(pub.x, 32), "y": _int_b64(pub.y, 32)}

    def sign(self, claims, kid=None):
        header = {"alg": self.kind, "typ": "JWT", "kid": kid or self.kid}
        signing = (b64(json.dumps(header).encode()) + "." +
                   b64(json.dumps(claims).encode())).encode()
        if self.kind == "RS256":
            sig = self.private.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        else:
            der = self.private.sign(signing, ec.ECDSA(hashes.SHA256()))
            r, s = utils.decode_dss_signature(der)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS: r || s
        return signing.decode() + "." + b64(sig)


def claims(sub="alice", ttl=300, **extra):
    now = int(time.time())
    c = {"sub": sub, "iss": "https://idp.test", "aud": "shop", "iat": now, "exp": now + ttl}
    c.update(extra)
    return c


class JwksServer:
    """Serves {"keys": [...]} at any path; .keys (list of Key), .fail_with (a status to answer
    instead), .fetches (GETs answered so far, failed ones included)."""

    def __init__(self, keys, port=0):
        self.lock = threading.Lock()
        self.keys = list(keys)
        self.fail_with = None
        self.fetches = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with server.lock:
                    server.fetches += 1
                    status = server.fail_with or 200
                    body = (json.dumps({"keys": [k.jwk() for k in server.keys]}).encode()
                            if status == 200 else b"{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/jwk-set+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = LoopbackHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "http://127.0.0.1:%d/.well-known/jwks.json" % self.port

    def set(self, keys=None, fail_with=None):
        with self.lock:
            if keys is not None:
                self.keys = list(keys)
            self.fail_with = fail_with

    def count(self):
        with self.lock:
            return self.fetches

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
