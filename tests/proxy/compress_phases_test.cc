// The compress policy (compress/) through the real phases: the relay re-encodes identity and
// chunked bodies as they stream (chunked out to HTTP/1.1 clients, close-delimited to HTTP/1.0),
// rewrites the representation's fields, leaves alone what must not be transformed, and the
// cache stores the encoded variant under Vary: Accept-Encoding.
#include <zlib.h>
#include <zstd.h>

#include "cache/internal/cache_policy.h"
#include "compress/compress.h"
#include "phase_harness.h"

namespace ficus::proxy {
namespace {

using namespace phase_test;

// A JSON-ish body that compresses well and is larger than one relay read.
std::string Body(size_t n) {
  std::string b;
  for (size_t i = 0; b.size() < n; ++i) {
    b += "{\"id\":" + std::to_string(i) + ",\"name\":\"item " + std::to_string(i % 97) + "\"},";
  }
  b.resize(n);
  return b;
}

std::string Gunzip(std::string_view in) {
  std::string out(1 << 22, '\0');
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

// The payload of a chunked body (no trailers); empty and a test failure if it is malformed.
std::string Dechunk(std::string_view body) {
  std::string out;
  for (;;) {
    const size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) {
      ADD_FAILURE() << "unterminated chunk size line";
      return {};
    }
    const size_t n = std::stoul(std::string(body.substr(0, eol)), nullptr, 16);
    body.remove_prefix(eol + 2);
    if (n == 0) {
      EXPECT_EQ(body, "\r\n");
      return out;
    }
    out.append(body.substr(0, n));
    EXPECT_EQ(body.substr(n, 2), "\r\n");
    body.remove_prefix(n + 2);
  }
}

struct Split {
  std::string head;  // through the blank line
  std::string body;
};
Split SplitResponse(const std::string& out) {
  const size_t end = out.find("\r\n\r\n");
  if (end == std::string::npos) return {out, {}};
  return {out.substr(0, end + 4), out.substr(end + 4)};
}

policy::Chain CompressChain(config::Compress c = {}) {
  config::Config cfg;
  config::Route route;
  route.compress = std::move(c);
  policy::Chain chain;
  compress::BuildPolicies({cfg, route, 0, nullptr}, chain);
  return chain;
}

// One exchange of `request` against an upstream that answers `answer` (none: no upstream at
// all, for a hit); what the client got.
std::string Exchange(const std::string& request, const std::string& answer,
                     std::shared_ptr<cache::Store> store = nullptr, TestUpstream* counted = nullptr,
                     bool upstream = true) {
  TestUpstream local;
  TestUpstream& up = counted ? *counted : local;
  up.answers = {answer};
  PhaseTest t(Cluster(upstream ? up.endpoint() : "127.0.0.1:9"));
  for (auto& p : CompressChain()) t.AddPolicy(std::move(p));
  if (store) t.AddPolicy(std::make_unique<cache::CachePolicy>("r", config::Cache{}, store));
  t.ClientSends(request);
  t.Drive([&]() -> net::Task<void> {
    if (upstream) net::Spawn(up.Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
  });
  return t.ClientReceived();
}

std::string Plain(const std::string& body, const std::string& fields = "") {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: \"v1\"\r\n"
         "Accept-Ranges: bytes\r\n" +
         fields + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(CompressPhases, AnIdentityBodyIsGzippedAndChunkedForAnHttp11Client) {
  const std::string body = Body(200 * 1024);  // several relay reads
  const Split got = SplitResponse(
      Exchange("GET /j HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n", Plain(body)));
  EXPECT_EQ(got.head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got.head;
  EXPECT_NE(got.head.find("\r\nContent-Encoding: gzip\r\n"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nVary: Accept-Encoding\r\n"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nETag: W/\"v1\"\r\n"), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("Content-Length"), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("Accept-Ranges"), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("ETag: \"v1\""), std::string::npos) << got.head;
  const std::string coded = Dechunk(got.body);
  EXPECT_LT(coded.size(), body.size() / 4);
  EXPECT_EQ(Gunzip(coded), body);
}

TEST(CompressPhases, AChunkedBodyIsZstdEncodedAndCloseDelimitedForAnHttp10Client) {
  const std::string body = Body(40 * 1024);
  std::string chunked =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (size_t i = 0; i < body.size(); i += 7000) {
    const std::string piece = body.substr(i, 7000);
    char line[16];
    std::snprintf(line, sizeof line, "%zx\r\n", piece.size());
    chunked += line + piece + "\r\n";
  }
  chunked += "0\r\nX-Trailer: t\r\n\r\n";
  const Split got = SplitResponse(
      Exchange("GET /h HTTP/1.0\r\nHost: h\r\nAccept-Encoding: gzip;q=0.5, zstd\r\n\r\n", chunked));
  EXPECT_NE(got.head.find("\r\nContent-Encoding: zstd\r\n"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nConnection: close\r\n"), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("Transfer-Encoding"), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("Content-Length"), std::string::npos) << got.head;
  std::string decoded(body.size() + 1, '\0');
  const size_t n =
      ZSTD_decompress(decoded.data(), decoded.size(), got.body.data(), got.body.size());
  ASSERT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  decoded.resize(n);
  EXPECT_EQ(decoded, body);
}

TEST(CompressPhases, ResponsesThatMustNotOrNeedNotBeEncodedPassUnchanged) {
  const std::string body = Body(8 * 1024);
  const std::string gzip_get = "GET /x HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, br\r\n\r\n";
  struct Case {
    const char* what;
    std::string answer;
  } cases[] = {
      {"already encoded", Plain(body, "Content-Encoding: br\r\n")},
      {"no-transform", Plain(body, "Cache-Control: max-age=5, no-transform\r\n")},
      {"a range",
       "HTTP/1.1 206 Partial Content\r\nContent-Type: application/json\r\n"
       "Content-Range: bytes 0-8191/100000\r\nContent-Length: 8192\r\n\r\n" +
           body},
      {"too small", Plain(body.substr(0, 500))},
      {"not a listed type", "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body},
  };
  for (const Case& c : cases) {
    const Split got = SplitResponse(Exchange(gzip_get, c.answer));
    EXPECT_EQ(got.head.find("Content-Encoding: gzip"), std::string::npos) << c.what;
    EXPECT_EQ(got.head.find("Content-Encoding: br\r\n") != std::string::npos,
              std::string_view(c.what) == "already encoded")
        << c.what;
    EXPECT_NE(got.head.find("Content-Length: "), std::string::npos) << c.what;
    EXPECT_EQ(got.head.find("Vary"), std::string::npos) << c.what << "\n" << got.head;
    EXPECT_EQ(got.body.size(), c.what == std::string("too small") ? 500u : body.size()) << c.what;
  }
}

TEST(CompressPhases, ARequestThatSaysNoTransformGetsTheIdentityBody) {
  const std::string body = Body(8 * 1024);
  const Split got = SplitResponse(Exchange(
      "GET /j HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\nCache-Control: no-transform\r\n\r\n",
      Plain(body)));
  EXPECT_EQ(got.head.find("Content-Encoding"), std::string::npos) << got.head;
  EXPECT_EQ(got.body, body);
}

TEST(CompressPhases, IdentityForAClientThatAcceptsNoOfferedCodingStillVaries) {
  const std::string body = Body(4096);
  const Split got = SplitResponse(Exchange(
      "GET /j HTTP/1.1\r\nHost: h\r\nAccept-Encoding: deflate, gzip;q=0\r\n\r\n", Plain(body)));
  EXPECT_EQ(got.head.find("Content-Encoding"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nVary: Accept-Encoding\r\n"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nETag: \"v1\"\r\n"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nContent-Length: 4096\r\n"), std::string::npos) << got.head;
  EXPECT_EQ(got.body, body);
}

TEST(CompressPhases, AHeadResponseSaysWhatTheGetWouldWithoutABody) {
  const std::string answer =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"v1\"\r\nContent-Length: 9000\r\n\r\n";
  const std::string out =
      Exchange("HEAD /j HTTP/1.1\r\nHost: h\r\nAccept-Encoding: br\r\n\r\n", answer);
  const Split got = SplitResponse(out);
  EXPECT_NE(got.head.find("\r\nContent-Encoding: br\r\n"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nETag: W/\"v1\"\r\n"), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("Content-Length"), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("Transfer-Encoding"), std::string::npos) << got.head;
  EXPECT_EQ(got.body, "");
}

TEST(CompressPhases, TheCacheStoresTheEncodedVariantAndServesItByAcceptEncoding) {
  const std::string body = Body(30 * 1024);
  auto store = std::make_shared<cache::Store>(16 << 20, 1 << 20);
  const std::string answer = Plain(body, "Cache-Control: max-age=60\r\n");
  TestUpstream up;
  const Split miss = SplitResponse(Exchange(
      "GET /v HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, br;q=0.5\r\n\r\n", answer, store, &up));
  EXPECT_NE(miss.head.find("Content-Encoding: gzip"), std::string::npos) << miss.head;
  EXPECT_NE(miss.head.find("; stored"), std::string::npos) << miss.head;
  EXPECT_EQ(Gunzip(Dechunk(miss.body)), body);

  // The same preference spelt otherwise: the stored gzip variant, with its length, no upstream.
  const Split hit = SplitResponse(
      Exchange("GET /v HTTP/1.1\r\nHost: h\r\nAccept-Encoding: BR;q=0.500 ,GZIP\r\n\r\n", answer,
               store, nullptr, /*upstream=*/false));
  EXPECT_NE(hit.head.find("Cache-Status: ficus; hit"), std::string::npos) << hit.head;
  EXPECT_NE(hit.head.find("\r\nContent-Encoding: gzip\r\n"), std::string::npos) << hit.head;
  EXPECT_NE(hit.head.find("\r\nVary: Accept-Encoding\r\n"), std::string::npos) << hit.head;
  EXPECT_NE(hit.head.find("\r\nETag: W/\"v1\"\r\n"), std::string::npos) << hit.head;
  EXPECT_NE(hit.head.find("\r\nContent-Length: " + std::to_string(hit.body.size()) + "\r\n"),
            std::string::npos)
      << hit.head;
  EXPECT_EQ(Gunzip(hit.body), body);

  // A client without Accept-Encoding: another variant, from the upstream, as it sent it.
  const Split identity =
      SplitResponse(Exchange("GET /v HTTP/1.1\r\nHost: h\r\n\r\n", answer, store));
  EXPECT_NE(identity.head.find("fwd=vary-miss"), std::string::npos) << identity.head;
  EXPECT_EQ(identity.head.find("Content-Encoding"), std::string::npos) << identity.head;
  EXPECT_NE(identity.head.find("\r\nETag: \"v1\"\r\n"), std::string::npos) << identity.head;
  EXPECT_EQ(identity.body, body);
  EXPECT_EQ(store->stats().objects.load(), 2);
}

TEST(CompressPhases, ARevalidatedEncodedVariantKeepsItsWeakETagAndSendsTheUpstreamOne) {
  const std::string body = Body(10 * 1024);
  auto store = std::make_shared<cache::Store>(16 << 20, 1 << 20);
  const std::string gzip_get = "GET /r HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n\r\n";
  Exchange(gzip_get, Plain(body, "Cache-Control: max-age=0\r\n"), store);
  TestUpstream up;
  const Split got = SplitResponse(Exchange(
      gzip_get, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=60\r\n\r\n",
      store, &up));
  ASSERT_EQ(up.requests.size(), 1u);
  EXPECT_NE(up.requests[0].find("\r\nIf-None-Match: \"v1\"\r\n"), std::string::npos)
      << up.requests[0];
  EXPECT_NE(got.head.find("fwd=stale; fwd-status=304"), std::string::npos) << got.head;
  EXPECT_NE(got.head.find("\r\nETag: W/\"v1\"\r\n"), std::string::npos) << got.head;
  EXPECT_EQ(got.head.find("ETag: \"v1\""), std::string::npos) << got.head;
  EXPECT_EQ(Gunzip(got.body), body);
}

}  // namespace
}  // namespace ficus::proxy
