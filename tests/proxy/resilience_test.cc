// Request-side resilience helpers: retry eligibility, back-off, hash keys, affinity cookie.
#include "proxy/internal/resilience.h"

#include <gtest/gtest.h>

#include <vector>

#include "upstream/upstream.h"

namespace ficus::proxy {
namespace {

http::RequestHead Parse(std::string_view raw, std::vector<http::Header>& storage) {
  storage.resize(100);
  http::RequestHeadParser parser(http::Limits{}, storage);
  http::RequestHead head;
  auto r = parser.Parse(raw, head);
  EXPECT_TRUE(r && *r == raw.size()) << raw;
  return head;
}

TEST(ResilienceTest, OnlyIdempotentOrKeyedRequestsMayBeRetried) {
  std::vector<http::Header> s;
  EXPECT_TRUE(MayRetry(Parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", s)));
  EXPECT_TRUE(MayRetry(Parse("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", s)));
  EXPECT_TRUE(MayRetry(Parse("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", s)));
  EXPECT_FALSE(MayRetry(Parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", s)));
  EXPECT_FALSE(MayRetry(Parse("PATCH / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", s)));
  EXPECT_TRUE(MayRetry(
      Parse("POST / HTTP/1.1\r\nHost: a\r\nidempotency-key: 42\r\nContent-Length: 0\r\n\r\n", s)));
}

TEST(ResilienceTest, BackoffIsExponentialCappedAndJittered) {
  config::RetryPolicy p;
  p.backoff_base = config::Duration{10};
  p.backoff_max = config::Duration{50};
  for (uint64_t r : {uint64_t{0}, uint64_t{1}, uint64_t{7}, ~uint64_t{0}}) {
    int64_t b1 = BackoffMs(p, 1, r), b2 = BackoffMs(p, 2, r), b3 = BackoffMs(p, 3, r),
            b9 = BackoffMs(p, 9, r);
    EXPECT_GE(b1, 5);
    EXPECT_LE(b1, 10);
    EXPECT_GE(b2, 10);
    EXPECT_LE(b2, 20);
    EXPECT_GE(b3, 20);
    EXPECT_LE(b3, 40);
    EXPECT_GE(b9, 25);
    EXPECT_LE(b9, 50);
  }
  EXPECT_NE(BackoffMs(p, 3, 1), BackoffMs(p, 3, 2));  // jitter
  p.backoff_base = p.backoff_max = config::Duration{0};
  EXPECT_EQ(BackoffMs(p, 3, 123), 0);
}

TEST(ResilienceTest, CookieQueryAndFieldValues) {
  std::vector<http::Header> s;
  auto h = Parse(
      "GET /p?a=1&id=xyz&b= HTTP/1.1\r\nHost: a\r\nCookie: x=1; sid=\"abc\"\r\n"
      "Cookie: other=2\r\nX-User: u7\r\n\r\n",
      s);
  EXPECT_EQ(CookieValue(h, "sid"), "abc");
  EXPECT_EQ(CookieValue(h, "other"), "2");
  EXPECT_EQ(CookieValue(h, "si"), "");
  EXPECT_EQ(QueryValue(h.query, "id"), "xyz");
  EXPECT_EQ(QueryValue(h.query, "b"), "");
  EXPECT_EQ(QueryValue(h.query, "zz"), "");
  EXPECT_EQ(FieldValue(h, "x-user"), "u7");
  EXPECT_EQ(QueryValue("=&&=x&a", "a"), "");
}

TEST(ResilienceTest, RequestHashUsesTheConfiguredKey) {
  std::vector<http::Header> s;
  auto h = Parse("GET /?id=9 HTTP/1.1\r\nHost: a\r\nX-User: u7\r\nCookie: sid=s1\r\n\r\n", s);
  config::HashKey k;
  EXPECT_EQ(RequestHash(h, k, "10.0.0.1"), 0u);
  k.kind = config::HashKey::Kind::kHeader;
  k.name = "x-user";
  EXPECT_EQ(RequestHash(h, k, ""), upstream::HashKey("u7"));
  k.kind = config::HashKey::Kind::kCookie;
  k.name = "sid";
  EXPECT_EQ(RequestHash(h, k, ""), upstream::HashKey("s1"));
  k.kind = config::HashKey::Kind::kQuery;
  k.name = "id";
  EXPECT_EQ(RequestHash(h, k, ""), upstream::HashKey("9"));
  k.kind = config::HashKey::Kind::kClientAddress;
  EXPECT_EQ(RequestHash(h, k, "10.0.0.1"), upstream::HashKey("10.0.0.1"));
  k.kind = config::HashKey::Kind::kHeader;
  k.name = "x-missing";
  EXPECT_EQ(RequestHash(h, k, ""), 0u);  // absent: a random pick
}

TEST(ResilienceTest, AffinityCookieGoesBeforeTheEmptyLine) {
  config::Affinity a;
  a.cookie = "aff";
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  AddAffinityCookie(a, "0123456789abcdef", head);
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nSet-Cookie: aff=0123456789abcdef; Path=/; "
            "HttpOnly\r\n\r\n");
  a.ttl = config::Duration{90000};
  head = "HTTP/1.1 200 OK\r\n\r\n";
  AddAffinityCookie(a, "v", head);
  EXPECT_EQ(head, "HTTP/1.1 200 OK\r\nSet-Cookie: aff=v; Path=/; HttpOnly; Max-Age=90\r\n\r\n");
}

}  // namespace
}  // namespace ficus::proxy
