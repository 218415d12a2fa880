"""Strict request parsing (RFC 9112, request-smuggling defence): every malformed request gets
the right status, a JSON error, the connection closed after it, and nothing reaches the
upstream (for body framing errors found after the head was forwarded: no complete request).
One test per case (generated from the tables below)."""

import time
import unittest

from harness import FicusTestCase, RawConn, endpoint, make_config, send_raw

H = b"Host: localhost\r\n"

# (name, raw request bytes, expected status, expected error kind). Rejected from the head alone:
# the upstream must see no connection at all.
HEAD_CASES = [
    ("cl_and_te", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te_and_cl", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("duplicate_cl_differs", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("cl_list_differs", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5, 6\r\n\r\nhello!", 400),
    ("cl_negative", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("cl_plus_sign", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", 400),
    ("cl_hex", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", 400),
    ("cl_not_a_number", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: five\r\n\r\nhello", 400),
    ("cl_overflow", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 184467440737095516160\r\n\r\nhello", 400),
    ("te_chunked_not_final", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("te_identity", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: identity\r\n\r\nhello", 400),
    ("te_chunked_then_identity_fields", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400),
    ("te_chunked_twice", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     400),
    ("te_empty", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: \r\n\r\n", 400),
    ("te_in_http10_request", b"POST /echo HTTP/1.0\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400),
    ("obs_fold_space", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: one\r\n two\r\n\r\n", 400),
    ("obs_fold_tab", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: one\r\n\ttwo\r\n\r\n", 400),
    ("space_before_colon", b"GET /echo HTTP/1.1\r\nHost : localhost\r\n\r\n", 400),
    ("tab_before_colon", b"GET /echo HTTP/1.1\r\n" + H + b"X-A\t: 1\r\n\r\n", 400),
    ("space_before_colon_cl", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length : 5\r\n\r\nhello", 400),
    ("nul_in_name", b"GET /echo HTTP/1.1\r\n" + H + b"X-A\x00B: 1\r\n\r\n", 400),
    ("del_in_name", b"GET /echo HTTP/1.1\r\n" + H + b"X-A\x7fB: 1\r\n\r\n", 400),
    ("space_in_name", b"GET /echo HTTP/1.1\r\n" + H + b"X A: 1\r\n\r\n", 400),
    ("empty_name", b"GET /echo HTTP/1.1\r\n" + H + b": 1\r\n\r\n", 400),
    ("nul_in_value", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400),
    ("del_in_value", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", 400),
    ("ctl_in_value", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400),
    ("nul_in_method", b"GE\x00T /echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("del_in_method", b"GE\x7fT /echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("separator_in_method", b"GE(T /echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("space_in_target", b"GET /echo x HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("double_space_request_line", b"GET  /echo HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nonascii_in_target", b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nul_in_target", b"GET /ec\x00ho HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("del_in_target", b"GET /ec\x7fho HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("bare_cr_in_value", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400),
    ("bare_cr_line_end", b"GET /echo HTTP/1.1\r\n" + H + b"X-A: a\rX-B: b\r\n\r\n", 400),
    ("bare_cr_request_line", b"GET /echo HTTP/1.1\r" + H + b"\r\n", 400),
    ("leading_whitespace_first_field", b"GET /echo HTTP/1.1\r\n Host: localhost\r\n\r\n", 400),
    ("lowercase_version", b"GET /echo http/1.1\r\n" + H + b"\r\n", 400),
    ("trailing_space_request_line", b"GET /echo HTTP/1.1 \r\n" + H + b"\r\n", 400),
    ("field_without_colon", b"GET /echo HTTP/1.1\r\n" + H + b"X-No-Colon\r\n\r\n", 400),
    ("missing_host_http11", b"GET /echo HTTP/1.1\r\nX-A: 1\r\n\r\n", 400),
    ("duplicate_host", b"GET /echo HTTP/1.1\r\n" + H + b"Host: other\r\n\r\n", 400),
    ("bad_version_token", b"GET /echo HTXP/1.1\r\n" + H + b"\r\n", 400),
    ("http2_version", b"GET /echo HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http3_version", b"GET /echo HTTP/3.0\r\n" + H + b"\r\n", 505),
]

# Body framing errors: the head is valid, so the request may already be on its way upstream;
# the client must get 400 and the upstream must never see a complete request.
CHUNK_HEAD = b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
CHUNK_CASES = [
    ("chunk_size_negative", CHUNK_HEAD + b"-1\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_0x_prefix", CHUNK_HEAD + b"0x10\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n"),
    ("chunk_size_overflow", CHUNK_HEAD + b"fffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_leading_space", CHUNK_HEAD + b" 5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_not_hex", CHUNK_HEAD + b"5g\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_empty", CHUNK_HEAD + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_extension_10kb", CHUNK_HEAD + b"5;" + b"a" * 10240 + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_extension_many_small", CHUNK_HEAD + b"5" + b";a=b" * 3000 + b"\r\nhello\r\n0\r\n\r\n"),
    ("chunk_data_not_followed_by_crlf", CHUNK_HEAD + b"5\r\nhelloXX0\r\n\r\n"),
    ("chunk_data_longer_than_size", CHUNK_HEAD + b"3\r\nhello\r\n0\r\n\r\n"),
    ("chunk_data_bare_cr", CHUNK_HEAD + b"5\r\nhello\r0\r\n\r\n"),
    ("chunk_trailer_obs_fold", CHUNK_HEAD + b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n"),
    ("chunk_trailer_without_colon", CHUNK_HEAD + b"5\r\nhello\r\n0\r\nX-T\r\n\r\n"),
    ("chunk_trailer_too_large", CHUNK_HEAD + b"5\r\nhello\r\n0\r\n" +
     b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 1000) for i in range(40)) + b"\r\n"),
]

# Unusual but valid: must be forwarded (strictness must not turn into false rejections).
VALID_CASES = [
    ("te_mixed_case", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "hello"),
    ("cl_zero_get", b"GET /echo HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n", ""),
    ("empty_field_value", b"GET /echo HTTP/1.1\r\n" + H + b"X-Empty:\r\n\r\n", ""),
    ("tab_around_value", b"GET /echo HTTP/1.1\r\n" + H + b"X-Tab:\t v \t\r\n\r\n", ""),
    ("obs_text_in_value", b"GET /echo HTTP/1.1\r\n" + H + b"X-Name: caf\xc3\xa9\r\n\r\n", ""),
    ("percent_encoded_target", b"GET /echo/a%20b?q=%2F&r=1 HTTP/1.1\r\n" + H + b"\r\n", ""),
    ("chunk_extension_small", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\n\r\n", "hello"),
    ("chunk_size_uppercase_hex", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", "0123456789"),
    ("chunk_trailer_field", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n", "hello"),
    ("http10_without_host", b"GET /echo HTTP/1.0\r\n\r\n", ""),
]


class StrictParsingTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("strict")
        cfg = make_config({"app": [endpoint(cls.up.port)]},
                          [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app"}])
        cls.ficus = cls.start_ficus_for_class(cfg)

    def setUp(self):
        super().setUp()
        self.up.reset()

    def test_valid_request_is_forwarded(self):
        # The baseline every rejection below is compared against.
        with RawConn(self.ficus.port) as c:
            c.send(b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
            resp = c.read_response()
            self.assertEqual(resp.status, 200, resp)
            self.assertFalse(c.is_closed(0.3), "a valid request must not close the connection")
        self.assertEqual(len(self.up.complete_requests()), 1)

    def check_rejected_at_head(self, raw, status):
        kind = {400: "bad_request", 431: "head_too_large", 505: None}[status]
        resp, closed = send_raw(self.ficus.port, raw)
        self.assertErrorResponse(resp, status, kind)
        self.assertTrue(closed, "connection must close after a malformed request")
        time.sleep(0.05)
        self.assertEqual(self.up.connections(), [],
                         "a rejected request reached the upstream")

    def check_rejected_in_body(self, raw):
        resp, closed = send_raw(self.ficus.port, raw, method="POST")
        self.assertErrorResponse(resp, 400, "bad_request")
        self.assertTrue(closed, "connection must close after a malformed body")
        time.sleep(0.05)
        self.assertEqual(self.up.complete_requests(), [],
                         "the upstream received a complete request from a malformed body")

    def test_malformed_then_nothing_else_is_processed(self):
        # A valid request pipelined behind a malformed one must not be forwarded.
        raw = (b"GET /echo HTTP/1.1\r\n" + H + b"X-A: one\r\n two\r\n\r\n" +
               b"GET /echo?smuggled=1 HTTP/1.1\r\n" + H + b"\r\n")
        with RawConn(self.ficus.port) as c:
            c.send(raw)
            resp = c.read_response()
            self.assertEqual(resp.status, 400, resp)
            self.assertTrue(c.is_closed())
        time.sleep(0.05)
        self.assertEqual(self.up.requests(), [])

    def test_smuggling_cl_te_pipeline(self):
        # Classic CL.TE: whichever framing a confused proxy picked, the hidden request must
        # never reach the upstream.
        smuggled = b"GET /echo?smuggled=1 HTTP/1.1\r\n" + H + b"\r\n"
        body = b"0\r\n\r\n" + smuggled
        raw = (b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n" % len(body) +
               b"Transfer-Encoding: chunked\r\n\r\n" + body)
        resp, closed = send_raw(self.ficus.port, raw)
        self.assertErrorResponse(resp, 400, "bad_request")
        time.sleep(0.05)
        self.assertEqual(self.up.requests(), [])


def _make_valid_test(raw, body):
    def t(self):
        resp, _ = send_raw(self.ficus.port, raw, check_closed=False)
        self.assertIsNotNone(resp, "no response")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.json()["body"], body)
        self.assertEqual(len(self.up.complete_requests()), 1)
    return t


def _make_head_test(raw, status):
    def t(self):
        self.check_rejected_at_head(raw, status)
    return t


def _make_body_test(raw):
    def t(self):
        self.check_rejected_in_body(raw)
    return t


for _name, _raw, _status in HEAD_CASES:
    setattr(StrictParsingTest, "test_head_%s" % _name, _make_head_test(_raw, _status))
for _name, _raw, _body in VALID_CASES:
    setattr(StrictParsingTest, "test_valid_%s" % _name, _make_valid_test(_raw, _body))
for _name, _raw in CHUNK_CASES:
    setattr(StrictParsingTest, "test_body_%s" % _name, _make_body_test(_raw))


if __name__ == "__main__":
    unittest.main()
