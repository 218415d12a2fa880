// ResponseHeadParser: status lines, framing by method and status (RFC 9112 §6.3), keep-alive,
// and the field rules shared with requests; every error blames the upstream.
#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <string>
#include <string_view>

#include "http/http.h"
#include "http_test_util.h"

namespace ficus::http {
namespace {

using testing::Cat;
using testing::Outcome;
using testing::Printable;

class ResponseHeadTest : public ::testing::Test {
 protected:
  Result<size_t> Parse(std::string_view s, Method m = Method::kGet) {
    ResponseHeadParser p(limits_, storage_);
    return p.Parse(s, m, head_);
  }
  // The head's views point into a copy of `s` that lives as long as the test.
  const ResponseHead& Ok(std::string_view input, Method m = Method::kGet) {
    const std::string_view s = buffers_.emplace_back(input);
    Result<size_t> r = Parse(s, m);
    EXPECT_TRUE(r.has_value()) << Printable(s) << " -> " << Outcome::Of(r);
    if (r.has_value()) {
      EXPECT_EQ(*r, s.size());
      EXPECT_EQ(head_.head_size, s.size());
    }
    return head_;
  }
  void Rejects(std::string_view s, Method m = Method::kGet) {
    Result<size_t> r = Parse(s, m);
    ASSERT_FALSE(r.has_value()) << Printable(s) << " was accepted";
    EXPECT_EQ(r.error().kind, ErrorKind::kUpstreamProtocol) << Outcome::Of(r);
    EXPECT_EQ(r.error().side, Side::kUpstream);
  }
  static std::string With(std::string_view fields) {
    return Cat("HTTP/1.1 200 OK\r\n", fields, "\r\n");
  }

  Limits limits_;
  std::array<Header, 128> storage_;
  ResponseHead head_;
  std::deque<std::string> buffers_;
};

TEST_F(ResponseHeadTest, ContentLengthResponse) {
  const ResponseHead& h = Ok("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nServer: x\r\n\r\n");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.reason, "OK");
  EXPECT_EQ(h.framing, BodyFraming::kContentLength);
  EXPECT_EQ(h.content_length, 12u);
  EXPECT_TRUE(h.keep_alive);
  ASSERT_EQ(h.headers.size(), 2u);
  EXPECT_EQ(h.headers[0].role, HeaderRole::kContentLength);
  EXPECT_EQ(h.headers[1].role, HeaderRole::kOther);
}

TEST_F(ResponseHeadTest, Chunked) {
  const ResponseHead& h = Ok(With("Transfer-Encoding: chunked\r\n"));
  EXPECT_EQ(h.framing, BodyFraming::kChunked);
  EXPECT_TRUE(h.keep_alive);
}

TEST_F(ResponseHeadTest, UntilClose) {
  const ResponseHead& h = Ok(With("Content-Type: text/html\r\n"));
  EXPECT_EQ(h.framing, BodyFraming::kUntilClose);
  EXPECT_FALSE(h.keep_alive);
}

TEST_F(ResponseHeadTest, NoBodyStatusesAndMethods) {
  const std::string cl = "Content-Length: 100\r\n";
  EXPECT_EQ(Ok(With(cl), Method::kHead).framing, BodyFraming::kNone);
  EXPECT_EQ(head_.content_length, 100u);  // what a GET would have returned
  EXPECT_TRUE(head_.keep_alive);
  EXPECT_EQ(Ok(With("Transfer-Encoding: chunked\r\n"), Method::kHead).framing, BodyFraming::kNone);
  EXPECT_EQ(Ok("HTTP/1.1 204 No Content\r\n\r\n").framing, BodyFraming::kNone);
  EXPECT_TRUE(head_.keep_alive);
  EXPECT_EQ(Ok(Cat("HTTP/1.1 304 Not Modified\r\n", cl, "\r\n")).framing, BodyFraming::kNone);
  EXPECT_EQ(Ok("HTTP/1.1 100 Continue\r\n\r\n").framing, BodyFraming::kNone);
  EXPECT_EQ(head_.status, 100);
  EXPECT_EQ(Ok("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n").framing,
            BodyFraming::kNone);
  EXPECT_EQ(Ok("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n").framing, BodyFraming::kNone);
  EXPECT_EQ(Ok("HTTP/1.1 200 Connection Established\r\n\r\n", Method::kConnect).framing,
            BodyFraming::kNone);
  // A refused CONNECT has a body like any other response.
  EXPECT_EQ(Ok(Cat("HTTP/1.1 403 Forbidden\r\n", cl, "\r\n"), Method::kConnect).framing,
            BodyFraming::kContentLength);
}

TEST_F(ResponseHeadTest, ReasonPhrase) {
  EXPECT_EQ(Ok("HTTP/1.1 200 \r\n\r\n").reason, "");
  EXPECT_EQ(Ok("HTTP/1.1 200\r\n\r\n").reason, "");  // missing SP before an empty reason
  EXPECT_EQ(Ok("HTTP/1.1 404 Not  Found\t!\r\n\r\n").reason, "Not  Found\t!");
  EXPECT_EQ(Ok("HTTP/1.1 200 D\xc3\xa9j\xe0 vu\r\n\r\n").reason, "D\xc3\xa9j\xe0 vu");
  EXPECT_EQ(Ok("HTTP/1.1 599 x\r\n\r\n").status, 599);
}

TEST_F(ResponseHeadTest, KeepAlive) {
  EXPECT_FALSE(Ok("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive);
  const ResponseHead& h10 = Ok("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(h10.version_minor, 0);
  EXPECT_FALSE(h10.keep_alive);
  EXPECT_TRUE(
      Ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").keep_alive);
  EXPECT_FALSE(Ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive);  // until close
  // HTTP/1.x with x > 1 is handled as 1.1 (RFC 9110 §2.5).
  EXPECT_EQ(Ok("HTTP/1.7 200 OK\r\nContent-Length: 0\r\n\r\n").version_minor, 1);
}

TEST_F(ResponseHeadTest, RolesAndConnectionOptions) {
  const ResponseHead& h =
      Ok(With("Connection: keep-alive, X-Internal\r\nX-Internal: 1\r\nVia: 1.1 a\r\n"
              "Keep-Alive: timeout=5\r\nContent-Length: 0\r\n"));
  ASSERT_EQ(h.headers.size(), 5u);
  EXPECT_EQ(h.headers[0].role, HeaderRole::kHopByHop);
  EXPECT_EQ(h.headers[1].role, HeaderRole::kHopByHop);
  EXPECT_EQ(h.headers[2].role, HeaderRole::kVia);
  EXPECT_EQ(h.headers[3].role, HeaderRole::kHopByHop);
  EXPECT_EQ(h.headers[4].role, HeaderRole::kContentLength);
}

TEST_F(ResponseHeadTest, ContentLengthListAndRepeats) {
  EXPECT_EQ(Ok(With("Content-Length: 3, 3\r\nContent-Length: 3\r\n")).content_length, 3u);
}

TEST_F(ResponseHeadTest, RejectsBadStatusLines) {
  Rejects("HTTP/2 200 OK\r\n\r\n");
  Rejects("HTTP/2.0 200 OK\r\n\r\n");
  Rejects("HTTP/1.1 20 OK\r\n\r\n");
  Rejects("HTTP/1.1 2000 OK\r\n\r\n");
  Rejects("HTTP/1.1 099 OK\r\n\r\n");
  Rejects("HTTP/1.1 2x0 OK\r\n\r\n");
  Rejects("HTTP/1.1  200 OK\r\n\r\n");
  Rejects("HTTP/1.1\t200 OK\r\n\r\n");
  Rejects("HTTP/1.1 200\tOK\r\n\r\n");
  Rejects("http/1.1 200 OK\r\n\r\n");
  Rejects("HTTP/1.x 200 OK\r\n\r\n");
  Rejects("ICY 200 OK\r\n\r\n");
  Rejects("\r\nHTTP/1.1 200 OK\r\n\r\n");
  Rejects("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n");
  Rejects("HTTP/1.1 200 OK\rX\r\n\r\n");
  Rejects("HTTP/1.1 200 O\x01K\r\n\r\n");
  Rejects("HTTP/1.1 200 O\x7fK\r\n\r\n");
}

TEST_F(ResponseHeadTest, RejectsBadFields) {
  Rejects(With("X : y\r\n"));
  Rejects(With(": y\r\n"));
  Rejects(With("X: a\r\n b\r\n"));
  Rejects(With("X: a\x01\r\n"));
  Rejects(With("X: a\nY: b\r\n"));
  Rejects("HTTP/1.1 200 OK\r\nX: y\r\n\n");
}

TEST_F(ResponseHeadTest, RejectsFramingConflicts) {
  Rejects(With("Content-Length: 1\r\nContent-Length: 2\r\n"));
  Rejects(With("Content-Length: 1, 2\r\n"));
  Rejects(With("Content-Length: x\r\n"));
  Rejects(With("Content-Length: 99999999999999999999\r\n"));
  Rejects(With("Transfer-Encoding: chunked\r\nContent-Length: 1\r\n"));
  Rejects(With("Transfer-Encoding: gzip\r\n"));
  Rejects(With("Transfer-Encoding: gzip, gzip, chunked\r\n"));
  Rejects(With("Transfer-Encoding: br, chunked\r\n"));  // not a transfer coding ficus decodes
  Rejects(With("Transfer-Encoding: chunked, gzip\r\n"));
  Rejects(With("Transfer-Encoding: chunked, chunked\r\n"));
  Rejects("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  Rejects(With("Connection: a b\r\n"));
}

TEST_F(ResponseHeadTest, Limits) {
  limits_.max_head_bytes = 32;
  Rejects("HTTP/1.1 200 OK\r\nServer: a-rather-long-server-name\r\n\r\n");
  limits_.max_head_bytes = 64 * 1024;
  limits_.max_header_count = 1;
  Rejects(With("A: 1\r\nB: 2\r\n"));
}

TEST_F(ResponseHeadTest, IncrementalAndEarlyRejection) {
  const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  const size_t head_size = resp.size() - 2;
  ResponseHeadParser p(limits_, storage_);
  for (size_t n = 0; n < head_size; ++n) {
    Result<size_t> r = p.Parse(std::string_view(resp).substr(0, n), Method::kGet, head_);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(*r, 0u) << n;
  }
  Result<size_t> r = p.Parse(resp, Method::kGet, head_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, head_size);
  EXPECT_EQ(head_.content_length, 2u);

  // Not HTTP at all: refused on the first wrong byte of the fixed prefix.
  ResponseHeadParser q(limits_, storage_);
  r = q.Parse("HTTP/1.1 2", Method::kGet, head_);
  ASSERT_TRUE(r.has_value());
  r = q.Parse("HTTP/1.1 2z", Method::kGet, head_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kUpstreamProtocol);
}

TEST_F(ResponseHeadTest, InterimThenFinalResponse) {
  const std::string both =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
  ResponseHeadParser p(limits_, storage_);
  std::string_view rest = both;
  Result<size_t> r = p.Parse(rest, Method::kPost, head_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(head_.status, 100);
  rest.remove_prefix(*r);
  r = p.Parse(rest, Method::kPost, head_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(head_.status, 201);
  EXPECT_EQ(*r, rest.size());
}

}  // namespace
TEST_F(ResponseHeadTest, OneCompressionCodingUnderChunkedIsAccepted) {
  const ResponseHead& g = Ok(With("Transfer-Encoding: gzip, chunked\r\n"));
  EXPECT_EQ(g.framing, BodyFraming::kChunked);
  EXPECT_EQ(g.transfer_coding, TransferCoding::kGzip);
  EXPECT_EQ(Ok(With("Transfer-Encoding: x-gzip\r\nTransfer-Encoding: chunked\r\n")).transfer_coding,
            TransferCoding::kGzip);
  EXPECT_EQ(Ok(With("Transfer-Encoding: deflate, chunked\r\n")).transfer_coding,
            TransferCoding::kDeflate);
  EXPECT_EQ(Ok(With("Transfer-Encoding: chunked\r\n")).transfer_coding, TransferCoding::kNone);
}

}  // namespace ficus::http
