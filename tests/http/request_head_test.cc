// RequestHeadParser: every accepted form and every rejected case of the request-head rules
// (RFC 9112, RFC 9110), trickled and pipelined input, and the limits.
#include <gtest/gtest.h>

#include <array>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "http/http.h"
#include "http_test_util.h"

namespace ficus::http {
namespace {

using testing::Cat;
using testing::Outcome;
using testing::Printable;
using namespace std::string_view_literals;

class RequestHeadTest : public ::testing::Test {
 protected:
  Result<size_t> Parse(std::string_view s) {
    RequestHeadParser p(limits_, storage_);
    return p.Parse(s, head_);
  }

  // Parses a complete head and expects success with head_size == s.size().
  // The head's views point into a copy of `s` that lives as long as the test.
  const RequestHead& Ok(std::string_view input) {
    const std::string_view s = buffers_.emplace_back(input);
    Result<size_t> r = Parse(s);
    EXPECT_TRUE(r.has_value()) << Printable(s) << " -> " << Outcome::Of(r);
    if (r.has_value()) {
      EXPECT_EQ(*r, s.size()) << Printable(s);
      EXPECT_EQ(head_.head_size, s.size());
    }
    return head_;
  }

  // Expects the head to be refused with `kind` (Side::kDownstream).
  void Rejects(std::string_view s, ErrorKind kind = ErrorKind::kBadRequest) {
    Result<size_t> r = Parse(s);
    ASSERT_FALSE(r.has_value()) << Printable(s) << " was accepted";
    EXPECT_EQ(r.error().kind, kind) << Printable(s) << " -> " << Outcome::Of(r);
    EXPECT_EQ(r.error().side, Side::kDownstream);
    EXPECT_STRNE(r.error().context, "");
  }

  // Field line(s) in an otherwise valid GET.
  static std::string With(std::string_view fields) {
    return Cat("GET / HTTP/1.1\r\nHost: h\r\n", fields, "\r\n");
  }

  Limits limits_;
  std::array<Header, 128> storage_;
  RequestHead head_;
  std::deque<std::string> buffers_;
};

// --- Accepted forms ---------------------------------------------------------------------------

TEST_F(RequestHeadTest, SimpleGetFillsEveryField) {
  constexpr std::string_view kHead =
      "GET /index.html HTTP/1.1\r\n"
      "Host: example.com\r\n"
      "User-Agent: test\r\n"
      "\r\n";
  const RequestHead& h = Ok(kHead);
  EXPECT_EQ(h.method, Method::kGet);
  EXPECT_EQ(h.method_text, "GET");
  EXPECT_EQ(h.target, "/index.html");
  EXPECT_EQ(h.path, "/index.html");
  EXPECT_EQ(h.query, "");
  EXPECT_EQ(h.version_minor, 1);
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.framing, BodyFraming::kNone);
  EXPECT_EQ(h.content_length, 0u);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_FALSE(h.upgrade);
  EXPECT_EQ(h.upgrade_protocol, "");
  EXPECT_EQ(h.request_id, "");
  ASSERT_EQ(h.headers.size(), 2u);
  EXPECT_EQ(h.headers[0].name, "Host");
  EXPECT_EQ(h.headers[0].value, "example.com");
  EXPECT_EQ(h.headers[0].role, HeaderRole::kHost);
  EXPECT_EQ(h.headers[1].name, "User-Agent");
  EXPECT_EQ(h.headers[1].value, "test");
  EXPECT_EQ(h.headers[1].role, HeaderRole::kOther);
  EXPECT_EQ(h.head_size, kHead.size());
  // Views point into the caller's buffer, fields into the caller's storage.
  EXPECT_EQ(h.method_text.data(), buffers_.back().data());
  EXPECT_EQ(h.headers.data(), storage_.data());
}

TEST_F(RequestHeadTest, FieldNamesWithUnderscoresAreFlaggedAndCanBeDropped) {
  EXPECT_FALSE(Ok("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n").underscore_names);
  RequestHead h =
      Ok("POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\nContent-Length: 0\r\n"
         "X_Key: k\r\n\r\n");
  EXPECT_TRUE(h.underscore_names);
  // Not a framing field to ficus (only "Transfer-Encoding" is), whatever the upstream makes of it.
  EXPECT_EQ(h.framing, BodyFraming::kContentLength);
  DropUnderscoreFields(h);
  EXPECT_EQ(h.headers[0].role, HeaderRole::kHost);
  EXPECT_EQ(h.headers[1].role, HeaderRole::kHopByHop);
  EXPECT_EQ(h.headers[2].role, HeaderRole::kContentLength);
  EXPECT_EQ(h.headers[3].role, HeaderRole::kHopByHop);
}

TEST_F(RequestHeadTest, OriginFormWithQuery) {
  const RequestHead& h = Ok("GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(h.path, "/a/b");
  EXPECT_EQ(h.query, "x=1&y=%20");
  EXPECT_EQ(h.target, "/a/b?x=1&y=%20");
}

TEST_F(RequestHeadTest, OriginFormEmptyQueryAndSecondQuestionMark) {
  EXPECT_EQ(Ok("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n").query, "");
  const RequestHead& h = Ok("GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(h.path, "/a");
  EXPECT_EQ(h.query, "b?c");
}

TEST_F(RequestHeadTest, AbsoluteFormDerivesHostPathQuery) {
  const RequestHead& h =
      Ok("GET http://example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n");
  EXPECT_EQ(h.target, "http://example.com:8080/a/b?x=1");
  EXPECT_EQ(h.host, "example.com:8080");  // the target's authority overrides Host
  EXPECT_EQ(h.path, "/a/b");
  EXPECT_EQ(h.query, "x=1");
}

TEST_F(RequestHeadTest, AbsoluteFormWithoutPath) {
  const RequestHead& h = Ok("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(h.host, "example.com");
  EXPECT_EQ(h.path, "/");
  EXPECT_EQ(h.query, "");
  const RequestHead& q = Ok("GET http://example.com?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(q.path, "/");
  EXPECT_EQ(q.query, "x=1");
}

TEST_F(RequestHeadTest, AbsoluteFormHttpsAndSchemeCase) {
  EXPECT_EQ(Ok("GET https://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n").host, "a.example");
  EXPECT_EQ(Ok("GET HTTP://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n").path, "/x");
  EXPECT_EQ(Ok("GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").host, "[::1]:80");
}

TEST_F(RequestHeadTest, AsteriskFormForOptions) {
  const RequestHead& h = Ok("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(h.method, Method::kOptions);
  EXPECT_EQ(h.target, "*");
  EXPECT_EQ(h.path, "*");
}

TEST_F(RequestHeadTest, AuthorityFormForConnect) {
  const RequestHead& h = Ok("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  EXPECT_EQ(h.method, Method::kConnect);
  EXPECT_EQ(h.target, "example.com:443");
  EXPECT_EQ(h.host, "example.com:443");
  EXPECT_EQ(h.path, "");
  EXPECT_EQ(Ok("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n").host, "[2001:db8::1]:443");
}

TEST_F(RequestHeadTest, Http10WithoutHost) {
  const RequestHead& h = Ok("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(h.version_minor, 0);
  EXPECT_EQ(h.host, "");
  EXPECT_FALSE(h.keep_alive);
  EXPECT_TRUE(h.headers.empty());
}

TEST_F(RequestHeadTest, Http10KeepAlive) {
  EXPECT_TRUE(Ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
  EXPECT_TRUE(Ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  EXPECT_FALSE(Ok("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive);
}

TEST_F(RequestHeadTest, ConnectionClose) {
  EXPECT_FALSE(Ok(With("Connection: close\r\n")).keep_alive);
  EXPECT_FALSE(Ok(With("Connection: CLOSE\r\n")).keep_alive);
  EXPECT_FALSE(Ok(With("Connection: keep-alive\r\nConnection: close\r\n")).keep_alive);
  EXPECT_FALSE(Ok(With("Connection: ,close,\r\n")).keep_alive);  // empty elements are ignored
  EXPECT_TRUE(Ok(With("Connection: keep-alive\r\n")).keep_alive);
}

TEST_F(RequestHeadTest, HostWithPortAndEmptyHost) {
  EXPECT_EQ(Ok("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n").host, "example.com:8080");
  EXPECT_EQ(Ok("GET / HTTP/1.1\r\nHost: \r\n\r\n").host, "");
  EXPECT_EQ(Ok("GET / HTTP/1.1\r\nhOsT: a\r\n\r\n").host, "a");
}

TEST_F(RequestHeadTest, ContentLength) {
  const RequestHead& h = Ok("POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 42\r\n\r\n");
  EXPECT_EQ(h.method, Method::kPost);
  EXPECT_EQ(h.framing, BodyFraming::kContentLength);
  EXPECT_EQ(h.content_length, 42u);
  EXPECT_EQ(h.headers[1].role, HeaderRole::kContentLength);
  const RequestHead& z = Ok("POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(z.framing, BodyFraming::kContentLength);
  EXPECT_EQ(z.content_length, 0u);
  EXPECT_EQ(Ok(With("Content-Length: 007\r\n")).content_length, 7u);
  EXPECT_EQ(Ok(With("Content-Length: 18446744073709551615\r\n")).content_length, UINT64_MAX);
}

TEST_F(RequestHeadTest, ContentLengthIdenticalListAndRepeats) {
  EXPECT_EQ(Ok(With("Content-Length: 5, 5\r\n")).content_length, 5u);
  EXPECT_EQ(Ok(With("Content-Length: 5,5 ,\t5\r\n")).content_length, 5u);
  EXPECT_EQ(Ok(With("Content-Length: 5\r\ncontent-length: 5\r\n")).content_length, 5u);
  EXPECT_EQ(Ok(With("Content-Length: 5\r\ncontent-length: 05\r\n")).content_length, 5u);
}

TEST_F(RequestHeadTest, Chunked) {
  const RequestHead& h = Ok("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_EQ(h.framing, BodyFraming::kChunked);
  EXPECT_EQ(h.headers[1].role, HeaderRole::kTransferEncoding);
  EXPECT_EQ(Ok(With("Transfer-Encoding: Chunked\r\n")).framing, BodyFraming::kChunked);
  EXPECT_EQ(Ok(With("transfer-encoding:  CHUNKED \r\n")).framing, BodyFraming::kChunked);
}

TEST_F(RequestHeadTest, Upgrade) {
  const RequestHead& h = Ok(With("Connection: Upgrade\r\nUpgrade: websocket\r\n"));
  EXPECT_TRUE(h.upgrade);
  EXPECT_EQ(h.upgrade_protocol, "websocket");
  EXPECT_EQ(h.headers[1].role, HeaderRole::kHopByHop);
  EXPECT_EQ(h.headers[2].role, HeaderRole::kHopByHop);
  EXPECT_TRUE(Ok(With("Upgrade: h2c\r\nConnection: keep-alive, upgrade\r\n")).upgrade);
  // Either half alone is not an upgrade.
  EXPECT_FALSE(Ok(With("Connection: upgrade\r\n")).upgrade);
  const RequestHead& u = Ok(With("Upgrade: websocket\r\n"));
  EXPECT_FALSE(u.upgrade);
  EXPECT_EQ(u.upgrade_protocol, "");
  // HTTP/1.0 requests cannot upgrade.
  EXPECT_FALSE(Ok("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n").upgrade);
}

TEST_F(RequestHeadTest, ExpectContinue) {
  const RequestHead& h = Ok(With("Expect: 100-continue\r\n"));
  EXPECT_TRUE(h.expect_continue);
  EXPECT_EQ(h.headers[1].role, HeaderRole::kExpect);
  EXPECT_TRUE(Ok(With("Expect: 100-Continue\r\n")).expect_continue);
  // Other expectations are left to the proxy.
  EXPECT_FALSE(Ok(With("Expect: something-else\r\n")).expect_continue);
  // RFC 9110 §10.1.1: ignored in HTTP/1.0.
  EXPECT_FALSE(Ok("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
}

TEST_F(RequestHeadTest, RequestId) {
  const RequestHead& h = Ok(With("X-Request-Id: abc-123\r\nX-Request-ID: second\r\n"));
  EXPECT_EQ(h.request_id, "abc-123");
  EXPECT_EQ(h.headers[1].role, HeaderRole::kXRequestId);
}

TEST_F(RequestHeadTest, Roles) {
  const RequestHead& h =
      Ok("GET / HTTP/1.1\r\n"
         "Host: h\r\n"
         "Connection: keep-alive\r\n"
         "Keep-Alive: timeout=5\r\n"
         "Proxy-Connection: keep-alive\r\n"
         "TE: trailers\r\n"
         "Trailer: X-Checksum\r\n"
         "Upgrade: websocket\r\n"
         "Expect: 100-continue\r\n"
         "X-Forwarded-For: 1.2.3.4\r\n"
         "X-Forwarded-Proto: https\r\n"
         "X-Forwarded-Host: example.com\r\n"
         "X-Request-Id: r1\r\n"
         "Via: 1.1 other\r\n"
         "Accept: */*\r\n"
         "\r\n");
  const std::vector<HeaderRole> want = {HeaderRole::kHost,
                                        HeaderRole::kHopByHop,
                                        HeaderRole::kHopByHop,
                                        HeaderRole::kHopByHop,
                                        HeaderRole::kHopByHop,
                                        HeaderRole::kHopByHop,
                                        HeaderRole::kHopByHop,
                                        HeaderRole::kExpect,
                                        HeaderRole::kXForwardedFor,
                                        HeaderRole::kXForwardedProto,
                                        HeaderRole::kXForwardedHost,
                                        HeaderRole::kXRequestId,
                                        HeaderRole::kVia,
                                        HeaderRole::kOther};
  ASSERT_EQ(h.headers.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(h.headers[i].role, want[i]) << h.headers[i].name;
  }
}

TEST_F(RequestHeadTest, FieldsNamedByConnectionAreHopByHop) {
  const RequestHead& h =
      Ok("GET / HTTP/1.1\r\n"
         "X-Secret: 1\r\n"
         "Host: h\r\n"
         "Connection: x-secret, X-Other, host, content-length\r\n"
         "x-other: 2\r\n"
         "X-Kept: 3\r\n"
         "Content-Length: 0\r\n"
         "\r\n");
  ASSERT_EQ(h.headers.size(), 6u);
  EXPECT_EQ(h.headers[0].role, HeaderRole::kHopByHop);  // X-Secret
  EXPECT_EQ(h.headers[1].role, HeaderRole::kHost);      // framing/routing fields keep theirs
  EXPECT_EQ(h.headers[2].role, HeaderRole::kHopByHop);  // Connection
  EXPECT_EQ(h.headers[3].role, HeaderRole::kHopByHop);  // x-other
  EXPECT_EQ(h.headers[4].role, HeaderRole::kOther);     // X-Kept
  EXPECT_EQ(h.headers[5].role, HeaderRole::kContentLength);
  EXPECT_TRUE(h.keep_alive);
}

TEST_F(RequestHeadTest, FieldValuesTrimmedAndAllowedBytes) {
  const RequestHead& h =
      Ok(With("A:  a b \t\r\n"
              "B:\r\n"
              "C: \t \r\n"
              "D: x\ty\r\n"
              "E: caf\xc3\xa9 \x80\xff\r\n"
              "F:!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\r\n"));
  ASSERT_EQ(h.headers.size(), 7u);
  EXPECT_EQ(h.headers[1].value, "a b");
  EXPECT_EQ(h.headers[2].value, "");
  EXPECT_EQ(h.headers[3].value, "");
  EXPECT_EQ(h.headers[4].value, "x\ty");
  EXPECT_EQ(h.headers[5].value, "caf\xc3\xa9 \x80\xff");
  EXPECT_EQ(h.headers[6].value, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
}

TEST_F(RequestHeadTest, FieldNamesAreTokens) {
  const RequestHead& h = Ok(With("X-a!#$%&'*+.^_`|~09: v\r\n"));
  EXPECT_EQ(h.headers[1].name, "X-a!#$%&'*+.^_`|~09");
}

TEST_F(RequestHeadTest, MethodsAndOtherTokens) {
  EXPECT_EQ(Ok("HEAD / HTTP/1.1\r\nHost: h\r\n\r\n").method, Method::kHead);
  EXPECT_EQ(Ok("PUT / HTTP/1.1\r\nHost: h\r\n\r\n").method, Method::kPut);
  EXPECT_EQ(Ok("DELETE / HTTP/1.1\r\nHost: h\r\n\r\n").method, Method::kDelete);
  EXPECT_EQ(Ok("TRACE / HTTP/1.1\r\nHost: h\r\n\r\n").method, Method::kTrace);
  EXPECT_EQ(Ok("PATCH / HTTP/1.1\r\nHost: h\r\n\r\n").method, Method::kPatch);
  const RequestHead& h = Ok("PROPFIND /d HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(h.method, Method::kOther);
  EXPECT_EQ(h.method_text, "PROPFIND");
  EXPECT_EQ(Ok("get / HTTP/1.1\r\nHost: h\r\n\r\n").method, Method::kOther);  // case-sensitive
}

TEST(HttpCommonTest, ParseMethodAndIdempotency) {
  EXPECT_EQ(ParseMethod("GET"), Method::kGet);
  EXPECT_EQ(ParseMethod("HEAD"), Method::kHead);
  EXPECT_EQ(ParseMethod("POST"), Method::kPost);
  EXPECT_EQ(ParseMethod("PUT"), Method::kPut);
  EXPECT_EQ(ParseMethod("DELETE"), Method::kDelete);
  EXPECT_EQ(ParseMethod("CONNECT"), Method::kConnect);
  EXPECT_EQ(ParseMethod("OPTIONS"), Method::kOptions);
  EXPECT_EQ(ParseMethod("TRACE"), Method::kTrace);
  EXPECT_EQ(ParseMethod("PATCH"), Method::kPatch);
  EXPECT_EQ(ParseMethod("Get"), Method::kOther);
  EXPECT_EQ(ParseMethod(""), Method::kOther);
  for (Method m : {Method::kGet, Method::kHead, Method::kPut, Method::kDelete, Method::kOptions,
                   Method::kTrace}) {
    EXPECT_TRUE(IsIdempotent(m));
  }
  for (Method m : {Method::kPost, Method::kPatch, Method::kConnect, Method::kOther}) {
    EXPECT_FALSE(IsIdempotent(m));
  }
}

TEST(HttpCommonTest, EqualsIgnoreCase) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-length"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("Host", "Hos"));
  EXPECT_FALSE(EqualsIgnoreCase("a-b", "a\rb"));
  EXPECT_FALSE(EqualsIgnoreCase("\xc3", "\xe3"));  // no locale: only ASCII letters fold
}

TEST_F(RequestHeadTest, LeadingEmptyLinesAreSkipped) {
  const std::string one = "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  const RequestHead& h = Ok(one);
  EXPECT_EQ(h.method_text, "GET");
  EXPECT_EQ(h.head_size, one.size());  // includes the skipped line
  Ok("\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

// --- Rejected request lines --------------------------------------------------------------------

// Two credentials on one request: refused (issue 15), whatever their case or values.
TEST_F(RequestHeadTest, RejectsTwoAuthorizationFields) {
  Rejects(With("Authorization: Bearer a\r\nauthorization: Bearer b\r\n"));
  Rejects(With("Authorization: Basic x\r\nAUTHORIZATION: Basic x\r\n"));
  EXPECT_EQ(Ok(With("Authorization: Bearer a\r\n")).headers.size(), 2u);
}

TEST_F(RequestHeadTest, RejectsBareLf) {
  Rejects("GET / HTTP/1.1\nHost: h\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: h\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: h\r\n\n");
  Rejects("GET / HTTP/1.1\n\n");
  Rejects("GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n");
}

TEST_F(RequestHeadTest, RejectsBareCr) {
  Rejects("GET / HTTP/1.1\rHost: h\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: h\r\n\rX\r\n");
  Rejects("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST_F(RequestHeadTest, RejectsSpacingInRequestLine) {
  Rejects("GET  / HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET /  HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET / HTTP/1.1 \r\nHost: h\r\n\r\n");
  Rejects(" GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET /\tHTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n");
}

TEST_F(RequestHeadTest, RejectsBadMethod) {
  Rejects("G(T / HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GE\x01T / HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects(Cat(std::string(33, 'A'), " / HTTP/1.1\r\nHost: h\r\n\r\n"));
  Ok(Cat(std::string(32, 'A'), " / HTTP/1.1\r\nHost: h\r\n\r\n"));
}

TEST_F(RequestHeadTest, RejectsBadTarget) {
  Rejects("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET /a\x00z HTTP/1.1\r\nHost: h\r\n\r\n"sv);
  Rejects("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET /\r\n\r\n");  // HTTP/0.9-style request line
  Rejects("GET \r\nHost: h\r\n\r\n");
}

TEST_F(RequestHeadTest, RejectsTargetFormForMethod) {
  Rejects("GET * HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n");        // no port
  Rejects("CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n");       // empty port
  Rejects("CONNECT http://a:1/ HTTP/1.1\r\nHost: h\r\n\r\n");        // absolute-form
  Rejects("CONNECT u@example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n");  // userinfo
}

TEST_F(RequestHeadTest, RejectsBadAbsoluteForm) {
  Rejects("GET ftp://a/ HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET http:/a/ HTTP/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n");          // empty host
  Rejects("GET http://user:pw@a/ HTTP/1.1\r\nHost: h\r\n\r\n");  // userinfo
  Rejects("GET http://a:80x/ HTTP/1.1\r\nHost: h\r\n\r\n");      // bad port
  Rejects("GET http://a:123456/ HTTP/1.1\r\nHost: h\r\n\r\n");   // port too long
  Rejects("GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n");       // unclosed IP-literal
  Rejects("GET http://a%zz/ HTTP/1.1\r\nHost: h\r\n\r\n");       // bad pct-encoding
}

TEST_F(RequestHeadTest, RejectsVersions) {
  Rejects("GET / HTTP/2.0\r\nHost: h\r\n\r\n", ErrorKind::kBadVersion);
  Rejects("GET / HTTP/1.2\r\nHost: h\r\n\r\n", ErrorKind::kBadVersion);
  Rejects("GET / HTTP/0.9\r\nHost: h\r\n\r\n", ErrorKind::kBadVersion);
  Rejects("GET / HTTP/3.1\r\nHost: h\r\n\r\n", ErrorKind::kBadVersion);
  Rejects("GET / HTTP/1\r\nHost: h\r\n\r\n");
  Rejects("GET / HTTP/2\r\nHost: h\r\n\r\n");
  Rejects("GET / http/1.1\r\nHost: h\r\n\r\n");
  Rejects("GET / HTTP/1.10\r\nHost: h\r\n\r\n");
  Rejects("GET / HTTP/1.1x\r\nHost: h\r\n\r\n");
  Rejects("GET / FOO\r\nHost: h\r\n\r\n");
}

// --- Rejected field lines ----------------------------------------------------------------------

TEST_F(RequestHeadTest, RejectsBadFieldNames) {
  Rejects(With("X-Foo : bar\r\n"));  // whitespace before the colon
  Rejects(With("X-Foo\t: bar\r\n"));
  Rejects(With(": bar\r\n"));      // empty name
  Rejects(With("X-Foo bar\r\n"));  // no colon
  Rejects(With("X-Foo\r\n"));
  Rejects(With("X@Foo: bar\r\n"));  // not a token
  Rejects(With("X\x80: bar\r\n"));
  Rejects(With("X(: bar\r\n"));
}

TEST_F(RequestHeadTest, RejectsObsFold) {
  Rejects(With("X-Foo: a\r\n b\r\n"));
  Rejects(With("X-Foo: a\r\n\tb\r\n"));
  Rejects("GET / HTTP/1.1\r\n Host: h\r\n\r\n");  // SP at the start of the first field line
}

TEST_F(RequestHeadTest, RejectsControlCharactersInValues) {
  Rejects(With("X: a\0b\r\n"sv));
  Rejects(With("X: a\x7f\r\n"));
  Rejects(With("X: \x01\r\n"));
  Rejects(With("X: a\x1f\r\n"));
  Rejects(With("X: a\x0b b\r\n"));
  Rejects(With("X: a\x0c\r\n"));
}

TEST_F(RequestHeadTest, RejectsHostProblems) {
  Rejects("GET / HTTP/1.1\r\n\r\n");  // missing Host
  Rejects("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
  Rejects("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: a b\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n");
  Rejects("GET http://a/ HTTP/1.1\r\n\r\n");  // absolute-form still needs Host in HTTP/1.1
}

TEST_F(RequestHeadTest, RejectsBadContentLength) {
  Rejects(With("Content-Length: abc\r\n"));
  Rejects(With("Content-Length: +5\r\n"));
  Rejects(With("Content-Length: -1\r\n"));
  Rejects(With("Content-Length: 5.0\r\n"));
  Rejects(With("Content-Length: 0x10\r\n"));
  Rejects(With("Content-Length: 5 5\r\n"));
  Rejects(With("Content-Length:\r\n"));
  Rejects(With("Content-Length: 18446744073709551616\r\n"));  // UINT64_MAX + 1
  Rejects(With("Content-Length: 99999999999999999999999\r\n"));
  Rejects(With("Content-Length: 5, 6\r\n"));
  Rejects(With("Content-Length: 5,,5\r\n"));
  Rejects(With("Content-Length: 5,\r\n"));
  Rejects(With("Content-Length: 5\r\nContent-Length: 6\r\n"));
}

TEST_F(RequestHeadTest, RejectsTransferEncodingProblems) {
  Rejects(With("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"));
  Rejects(With("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"));
  Rejects("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
  Rejects(With("Transfer-Encoding: gzip\r\n"));
  Rejects(With("Transfer-Encoding: chunked, gzip\r\n"));
  Rejects(With("Transfer-Encoding: chunked, chunked\r\n"));
  Rejects(With("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"));
  Rejects(With("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"));
  Rejects(With("Transfer-Encoding: identity\r\n"));
  Rejects(With("Transfer-Encoding:\r\n"));
  Rejects(With("Transfer-Encoding: chunked,\r\n"));
  Rejects(With("Transfer-Encoding: chunked;foo=bar\r\n"));
  Rejects(With("Transfer-Encoding: \"chunked\"\r\n"));
  Rejects(With("Transfer-Encoding: xchunked\r\n"));
}

TEST_F(RequestHeadTest, OtherCodingBeforeChunkedIsNotImplemented) {
  Rejects(With("Transfer-Encoding: gzip, chunked\r\n"), ErrorKind::kNotImplemented);
  Rejects(With("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
          ErrorKind::kNotImplemented);
  Rejects(With("Transfer-Encoding: deflate,chunked\r\n"), ErrorKind::kNotImplemented);
}

TEST_F(RequestHeadTest, RejectsMalformedConnection) {
  Rejects(With("Connection: close, a b\r\n"));
  Rejects(With("Connection: \"close\"\r\n"));
  std::string many = "Connection: ";
  for (int i = 0; i < 33; ++i) many += Cat("o", std::to_string(i), ",");
  Rejects(With(Cat(many, "\r\n")));
}

// --- Incremental, pipelined and moving input -----------------------------------------------------

// Feeds `input` one byte at a time to one parser; returns the first non-zero outcome.
Outcome Trickle(std::string_view input, const Limits& limits, size_t* fed) {
  std::array<Header, 128> storage;
  RequestHeadParser parser(limits, storage);
  RequestHead head;
  for (size_t n = 1; n <= input.size(); ++n) {
    Result<size_t> r = parser.Parse(input.substr(0, n), head);
    if (!r.has_value() || *r != 0) {
      *fed = n;
      return Outcome::Of(r);
    }
  }
  *fed = input.size();
  Outcome more;
  more.ok = true;
  return more;
}

const char* const kCorpus[] = {
    "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "\r\n\r\nGET /x?y HTTP/1.0\r\nA: b\r\nConnection: keep-alive\r\n\r\n",
    "POST http://a.example:81/p?q HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
    "CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\n b\r\n\r\n",
    "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    "GET / HTTP/1.1\r\nHost: h\r\nX: \x01\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\n\r",
};

TEST_F(RequestHeadTest, TrickledEqualsOneShotForEveryPrefix) {
  for (std::string_view input : kCorpus) {
    // For every prefix, byte-by-byte parsing so far must agree with parsing it at once.
    std::array<Header, 128> storage;
    RequestHeadParser trickle(limits_, storage);
    RequestHead th;
    for (size_t n = 0; n <= input.size(); ++n) {
      const Outcome a = Outcome::Of(trickle.Parse(input.substr(0, n), th));
      const Outcome b = Outcome::Of(Parse(input.substr(0, n)));
      ASSERT_EQ(a, b) << Printable(input.substr(0, n));
      if (!a.ok || a.value != 0) {
        if (a.ok) {  // and the heads are the same
          EXPECT_EQ(th.target, head_.target);
          EXPECT_EQ(th.host, head_.host);
          ASSERT_EQ(th.headers.size(), head_.headers.size());
          for (size_t i = 0; i < th.headers.size(); ++i) {
            EXPECT_EQ(th.headers[i].name, head_.headers[i].name);
            EXPECT_EQ(th.headers[i].value, head_.headers[i].value);
            EXPECT_EQ(th.headers[i].role, head_.headers[i].role);
          }
        }
        break;
      }
    }
  }
}

TEST_F(RequestHeadTest, EveryProperPrefixOfAValidHeadNeedsMore) {
  const std::string head =
      "POST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n"
      "Content-Type: text/plain\r\nX-Request-Id: abc\r\n\r\n";
  for (size_t n = 0; n < head.size(); ++n) {
    Result<size_t> r = Parse(std::string_view(head).substr(0, n));
    ASSERT_TRUE(r.has_value()) << n << " " << Outcome::Of(r);
    EXPECT_EQ(*r, 0u) << n;
  }
  EXPECT_EQ(Ok(head).content_length, 10u);
}

TEST_F(RequestHeadTest, TrickleWithMovingBuffer) {
  // The caller's buffer may be reallocated between calls: views must point into the last one.
  const std::string input =
      "GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-B: 2\r\nConnection: x-a\r\n\r\n";
  RequestHeadParser parser(limits_, storage_);
  std::vector<std::string> copies;
  copies.reserve(input.size());
  Result<size_t> r = size_t{0};
  for (size_t n = 1; n <= input.size(); ++n) {
    copies.push_back(input.substr(0, n));
    r = parser.Parse(copies.back(), head_);
    ASSERT_TRUE(r.has_value()) << Outcome::Of(r);
    if (*r != 0) break;
  }
  ASSERT_EQ(*r, input.size());
  const std::string& last = copies.back();
  auto inside = [&](std::string_view v) {
    return v.data() >= last.data() && v.data() + v.size() <= last.data() + last.size();
  };
  EXPECT_TRUE(inside(head_.target));
  EXPECT_TRUE(inside(head_.host));
  ASSERT_EQ(head_.headers.size(), 4u);
  for (const Header& h : head_.headers) {
    EXPECT_TRUE(inside(h.name) && inside(h.value)) << h.name;
  }
  EXPECT_EQ(head_.headers[1].role, HeaderRole::kHopByHop);  // X-A, named by Connection
}

TEST_F(RequestHeadTest, PipelinedRequests) {
  const std::string a = "GET /first HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string b = "POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n";
  const std::string c = "GET /third HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string all = Cat(a, b, "xy", c);
  RequestHeadParser parser(limits_, storage_);
  std::string_view rest = all;
  Result<size_t> r = parser.Parse(rest, head_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, a.size());
  EXPECT_EQ(head_.path, "/first");
  rest.remove_prefix(*r);
  parser.Reset();
  r = parser.Parse(rest, head_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, b.size());
  EXPECT_EQ(head_.path, "/second");
  rest.remove_prefix(*r + head_.content_length);
  r = parser.Parse(rest, head_);  // no Reset(): Parse forgot its progress by itself
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, c.size());
  EXPECT_EQ(head_.path, "/third");
}

TEST_F(RequestHeadTest, TrickledPipelineStopsAtHeadEnd) {
  const std::string first = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t fed = 0;
  const Outcome o = Trickle(Cat(first, "GET /2 HTTP/1.1\r\n"), limits_, &fed);
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.value, first.size());
  EXPECT_EQ(fed, first.size());
}

TEST_F(RequestHeadTest, GarbageIsRefusedBeforeAnyLineEnds) {
  // A TLS ClientHello on a plaintext port: refused on its first byte, not after a timeout.
  size_t fed = 0;
  const Outcome o = Trickle("\x16\x03\x01\x02\x00\x01\x00", limits_, &fed);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.kind, ErrorKind::kBadRequest);
  EXPECT_EQ(fed, 1u);
  const Outcome m = Trickle(std::string(40, 'A'), limits_, &fed);
  EXPECT_FALSE(m.ok);
  EXPECT_EQ(fed, 33u);  // a method longer than 32 bytes
}

// --- Limits
// ---------------------------------------------------------------------------------------

TEST_F(RequestHeadTest, HeadSizeLimit) {
  const std::string head =
      Cat("GET / HTTP/1.1\r\nHost: h\r\nX: ", std::string(100, 'v'), "\r\n\r\n");
  limits_.max_head_bytes = static_cast<uint32_t>(head.size());
  Ok(head);
  Result<size_t> next = Parse(Cat(head, "GET / HTTP/1.1\r\n"));  // the next one does not count
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, head.size());
  limits_.max_head_bytes = static_cast<uint32_t>(head.size() - 1);
  Rejects(head, ErrorKind::kHeadTooLarge);
  // Incomplete but already too large: refused without waiting for the end.
  limits_.max_head_bytes = 64;
  Rejects(Cat("GET / HTTP/1.1\r\nHost: h\r\nX: ", std::string(100, 'v')), ErrorKind::kHeadTooLarge);
  Rejects(Cat("GET /", std::string(100, 'a')), ErrorKind::kHeadTooLarge);
  Result<size_t> r = Parse(Cat("GET / HTTP/1.1\r\nHost: h\r\nX: ", std::string(20, 'v')));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 0u);
}

TEST_F(RequestHeadTest, HeadSizeLimitWhenTrickled) {
  limits_.max_head_bytes = 64;
  size_t fed = 0;
  const Outcome o =
      Trickle(Cat("GET / HTTP/1.1\r\nHost: h\r\nX: ", std::string(100, 'v')), limits_, &fed);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.kind, ErrorKind::kHeadTooLarge);
  EXPECT_EQ(fed, 64u);
}

TEST_F(RequestHeadTest, HeaderCountLimit) {
  limits_.max_header_count = 3;
  Ok("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n");
  Rejects("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ErrorKind::kHeadTooLarge);
  // The storage span bounds the count too.
  limits_.max_header_count = 100;
  std::array<Header, 2> small;
  RequestHeadParser p(limits_, small);
  Result<size_t> r = p.Parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", head_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kHeadTooLarge);
}

TEST_F(RequestHeadTest, DefaultLimitsAllowHundredFields) {
  std::string head = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 100; ++i) head += Cat("X-", std::to_string(i), ": v\r\n");
  Rejects(Cat(head, "\r\n"));  // 100 fields but no Host
  head = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 99; ++i) head += Cat("X-", std::to_string(i), ": v\r\n");
  EXPECT_EQ(Ok(Cat(head, "\r\n")).headers.size(), 100u);
  Rejects(Cat(head, "X-100: v\r\n\r\n"), ErrorKind::kHeadTooLarge);
}

}  // namespace
}  // namespace ficus::http
