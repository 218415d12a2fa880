"""A small OTLP/HTTP JSON receiver for tests: POST /v1/traces bodies are parsed and kept.
`fail_with` makes it answer an error status instead (a collector in trouble)."""

import http.server
import json
import threading
from loopback_server import LoopbackHTTPServer


class OtlpReceiver:
    def __init__(self, host="127.0.0.1", port=0):
        self.lock = threading.Lock()
        self.requests = []  # parsed bodies
        self.fail_with = None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                status = receiver.fail_with or 200
                if status == 200:
                    with receiver.lock:
                        receiver.requests.append({
                            "path": self.path,
                            "content_type": self.headers.get("Content-Type"),
                            "body": json.loads(body)})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = LoopbackHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def spans(self):
        """Every span received, with its resource attributes under "_resource"."""
        out = []
        with self.lock:
            for r in self.requests:
                for rs in r["body"].get("resourceSpans", []):
                    res = {a["key"]: a["value"] for a in rs["resource"]["attributes"]}
                    for ss in rs.get("scopeSpans", []):
                        for s in ss.get("spans", []):
                            s = dict(s)
                            s["_resource"] = res
                            out.append(s)
        return out


def attrs(span):
    """{key: python value} of a span's attributes."""
    out = {}
    for a in span.get("attributes", []):
        v = a["value"]
        if "stringValue" in v:
            out[a["key"]] = v["stringValue"]
        elif "intValue" in v:
            out[a["key"]] = int(v["intValue"])
        else:
            out[a["key"]] = v
    return out
