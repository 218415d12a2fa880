"""JWT verification side by side (bench/protect/run.py's third part): one RS256 token (a
2048-bit key, python3-cryptography) sent on every request through ficus `auth.jwt` with its
verified-token cache, ficus with the cache off (`token_cache: 0`: a signature check per
request), and HAProxy 2.6 `jwt_verify` against the same public key (a check per request).
Throughput and the proxy's CPU per request, medians of interleaved rounds.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import rate  # bench/protect/rate.py: start, measure, the ficus and HAProxy templates
import run as pb  # bench/proxy/run.py

HAPROXY_JWT = """    http-request deny deny_status 401 unless {{ req.hdr(authorization),word(2,' '),jwt_verify("RS256","{pem}") -m int 1 }}"""
FICUS_JWT = ", auth: {{ jwt: {{ jwks_file: {jwks}, algorithms: [RS256], token_cache: {cache} }} }}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(tmp: Path) -> tuple[str, Path, Path]:
    """A token, the JWKS file and the public key PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_numbers()
    n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
    jwks = tmp / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "k", "alg": "RS256",
                                          "n": b64(n), "e": b64(pub.e.to_bytes(3, "big"))}]}))
    pem = tmp / "jwt-pub.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    claims = {"sub": "bench", "exp": int(time.time()) + 3600}
    signing = (b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k"}).encode()) + "." +
               b64(json.dumps(claims).encode())).encode()
    sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    return signing.decode() + "." + b64(sig), jwks, pem


def jwt_bench(tmp: Path, ficus: str, backend: int, rounds: int, duration: int) -> dict:
    token, jwks, pem = make_key(tmp)
    proxies = {}
    for name, cache in (("ficus-jwt-cache", 4096), ("ficus-jwt-nocache", 0)):
        port, admin = pb.free_port(), pb.free_port()
        conf = tmp / f"{name}.yaml"
        conf.write_text(rate.FICUS.format(d=tmp, name=name, admin=admin, port=port,
                                          backend=backend,
                                          extra=FICUS_JWT.format(jwks=jwks, cache=cache)))
        proxies[name] = (rate.start(name, [ficus, "run", "-c", str(conf)], tmp, port), port)
    port = pb.free_port()
    conf = tmp / "haproxy-jwt.cfg"
    conf.write_text(rate.HAPROXY.format(port=port, backend=backend,
                                        limit=HAPROXY_JWT.format(pem=pem)))
    proxies["haproxy-jwt"] = (rate.start("haproxy-jwt", [pb.tool("haproxy"), "-db", "-f",
                                                          str(conf)], tmp, port), port)
    header = ("-H", f"Authorization: Bearer {token}")
    runs: dict[str, list[dict]] = {n: [] for n in proxies}
    try:
        for _ in range(rounds):
            for name, (server, port) in proxies.items():
                runs[name].append(rate.measure(server, port, 50, duration, header))
    finally:
        rate.stop_all(proxies)
    print(f"\nJWT RS256 (2048-bit key), one token on every request, wrk -c50, {rounds} rounds "
          f"x {duration} s (medians)")
    print(f"{'proxy':18} {'req/s':>9} {'CPU us/req':>11} {'non-2xx':>8}")
    med = {}
    for n, rs in runs.items():
        med[n] = {"rps": statistics.median(r["rps"] for r in rs),
                  "cpu_us": statistics.median(r["cpu_us"] for r in rs)}
        print(f"{n:18} {med[n]['rps']:9.0f} {med[n]['cpu_us']:11.2f} "
              f"{sum(r['non_2xx'] for r in rs):8d}")
    return med
