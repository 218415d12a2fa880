// The header rules of forwarding: what goes upstream and what comes back downstream.
#include "proxy/internal/heads.h"

#include <gtest/gtest.h>

#include <vector>

namespace ficus::proxy {
namespace {

http::RequestHead ParseRequest(std::string_view raw, std::vector<http::Header>& storage) {
  storage.resize(100);
  http::RequestHeadParser parser(http::Limits{}, storage);
  http::RequestHead head;
  auto r = parser.Parse(raw, head);
  EXPECT_TRUE(r && *r == raw.size()) << raw;
  return head;
}

http::ResponseHead ParseResponse(std::string_view raw, std::vector<http::Header>& storage) {
  storage.resize(100);
  http::ResponseHeadParser parser(http::Limits{}, storage);
  http::ResponseHead head;
  auto r = parser.Parse(raw, http::Method::kGet, head);
  EXPECT_TRUE(r && *r == raw.size()) << raw;
  return head;
}

TEST(ForwardTest, UpstreamHeadDropsHopByHopAndAddsForwardingHeaders) {
  std::vector<http::Header> storage;
  auto head = ParseRequest(
      "GET /a?b=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, x-secret\r\n"
      "Keep-Alive: timeout=5\r\nX-Secret: 1\r\nTE: trailers\r\nProxy-Connection: close\r\n"
      "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nVia: 1.0 edge\r\n"
      "Accept: */*\r\n\r\n",
      storage);
  std::string out;
  AppendUpstreamRequestHead(head, ForwardContext{"127.0.0.1", "rid-1", false}, out);
  EXPECT_EQ(out,
            "GET /a?b=1 HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\n"
            "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: shop.example\r\nVia: 1.0 edge, 1.1 ficus\r\nX-Request-Id: rid-1\r\n"
            "\r\n");
}

TEST(ForwardTest, KeepsBodyFramingAndDropsExpect) {
  std::vector<http::Header> storage;
  auto head = ParseRequest(
      "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n"
      "X-Request-Id: abc\r\n\r\n",
      storage);
  std::string out;
  AppendUpstreamRequestHead(head, ForwardContext{"::1", "abc", false}, out);
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Expect"), std::string::npos);
  EXPECT_NE(out.find("X-Request-Id: abc\r\n"), std::string::npos);
  EXPECT_EQ(out.find("X-Request-Id: abc\r\nX-Request-Id"), std::string::npos);
}

TEST(ForwardTest, Http10ClientsAskUpstreamInHttp10WithKeepAlive) {
  std::vector<http::Header> storage;
  auto head = ParseRequest("GET / HTTP/1.0\r\n\r\n", storage);
  std::string out;
  AppendUpstreamRequestHead(head, ForwardContext{"127.0.0.1", "r", true}, out);
  EXPECT_EQ(out.rfind("GET / HTTP/1.0\r\n", 0), 0u);
  EXPECT_NE(out.find("Connection: keep-alive\r\n"), std::string::npos);
  EXPECT_NE(out.find("Via: 1.0 ficus\r\n"), std::string::npos);
}

TEST(ForwardTest, UpgradeRequestsKeepUpgradeHeaders) {
  std::vector<http::Header> storage;
  auto head = ParseRequest(
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Sec-WebSocket-Key: k\r\n\r\n",
      storage);
  ASSERT_TRUE(head.upgrade);
  std::string out;
  AppendUpstreamRequestHead(head, ForwardContext{"127.0.0.1", "r", false}, out);
  EXPECT_NE(out.find("Connection: upgrade\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(out.find("Sec-WebSocket-Key: k\r\n"), std::string::npos);
}

TEST(ForwardTest, AbsoluteFormTargetBecomesOriginFormAndSetsHost) {
  std::vector<http::Header> storage;
  auto head =
      ParseRequest("GET http://b.example/echo?abs=1 HTTP/1.1\r\nHost: localhost\r\n\r\n", storage);
  std::string out;
  AppendUpstreamRequestHead(head, ForwardContext{"127.0.0.1", "r", false}, out);
  EXPECT_EQ(out.rfind("GET /echo?abs=1 HTTP/1.1\r\nHost: b.example\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("localhost"), std::string::npos) << out;
}

TEST(ForwardTest, DownstreamHeadDropsHopByHopAndSaysClose) {
  std::vector<http::Header> storage;
  auto resp = ParseResponse(
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=4\r\n"
      "Server: up\r\n\r\n",
      storage);
  std::string out;
  AppendDownstreamResponseHead(resp, ResponseContext{"rid", false, false, false}, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nServer: up\r\nContent-Length: 2\r\nVia: 1.1 ficus\r\n"
            "X-Request-Id: rid\r\nConnection: close\r\n\r\n");
}

TEST(ForwardTest, DownstreamKeepsUpstreamRequestIdAndHttp10KeepAlive) {
  std::vector<http::Header> storage;
  auto resp = ParseResponse("HTTP/1.1 204 No Content\r\nX-Request-Id: up-id\r\n\r\n", storage);
  std::string out;
  AppendDownstreamResponseHead(resp, ResponseContext{"rid", true, true, false}, out);
  EXPECT_EQ(out.find("X-Request-Id: rid"), std::string::npos);
  EXPECT_NE(out.find("X-Request-Id: up-id\r\n"), std::string::npos);
  EXPECT_NE(out.find("Connection: keep-alive\r\n"), std::string::npos);
}

TEST(ForwardTest, ContentLengthListsAndRepeatsBecomeOneField) {
  std::vector<http::Header> storage;
  auto head = ParseRequest(
      "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", storage);
  std::string out;
  AppendUpstreamRequestHead(head, ForwardContext{"127.0.0.1", "r", false}, out);
  EXPECT_NE(out.find("\r\nContent-Length: 5\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Content-Length", out.find("Content-Length") + 1), std::string::npos) << out;
}

TEST(ForwardTest, DechunkedResponsesLoseTransferEncoding) {
  std::vector<http::Header> storage;
  auto resp = ParseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", storage);
  std::string out;
  AppendDownstreamResponseHead(resp, ResponseContext{"r", false, true, false, true}, out);
  EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos) << out;
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
}

TEST(ForwardTest, ErrorResponseIsJsonWithLengthAndId) {
  std::string out;
  AppendErrorResponse(Error{ErrorKind::kConnectFailed, Side::kUpstream, true, "no \"luck\""},
                      "rid-9", /*keep_alive=*/false, /*added=*/{}, out);
  const std::string body =
      "{\"error\":\"connect_failed\",\"message\":\"no \\\"luck\\\"\",\"request_id\":\"rid-9\"}\n";
  EXPECT_EQ(out, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(body.size()) +
                     "\r\nX-Request-Id: rid-9\r\nConnection: close\r\n\r\n" + body);
}

TEST(ForwardTest, StatusMapping) {
  EXPECT_EQ(StatusFor(ErrorKind::kBadRequest), 400);
  EXPECT_EQ(StatusFor(ErrorKind::kHeadTooLarge), 431);
  EXPECT_EQ(StatusFor(ErrorKind::kBodyTooLarge), 413);
  EXPECT_EQ(StatusFor(ErrorKind::kHeadTimeout), 408);
  EXPECT_EQ(StatusFor(ErrorKind::kNoRoute), 404);
  EXPECT_EQ(StatusFor(ErrorKind::kConnectFailed), 502);
  EXPECT_EQ(StatusFor(ErrorKind::kUpstreamTimeout), 504);
  EXPECT_EQ(StatusFor(ErrorKind::kBadVersion), 505);
  EXPECT_EQ(StatusFor(ErrorKind::kNotImplemented), 501);
}

TEST(ForwardTest, RequestIdIsAVersion4Uuid) {
  char id[36];
  FormatRequestId(0x0123456789abcdefULL, 0xfedcba9876543210ULL, id);
  // Version nibble forced to 4, variant bits to 10xx.
  EXPECT_EQ(std::string_view(id, 36), "01234567-89ab-4def-bedc-ba9876543210");
  FormatRequestId(0, 0, id);
  EXPECT_EQ(std::string_view(id, 36), "00000000-0000-4000-8000-000000000000");
  FormatRequestId(~0ULL, ~0ULL, id);
  EXPECT_EQ(std::string_view(id, 36), "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

TEST(ForwardTest, HeadsWithoutSpacesAfterColonsAndLongValuesAreWrittenWhole) {
  // Every field grows by one byte (the space ficus writes after the colon): the serializer's
  // size estimate must hold, and anything past it must still be written.
  std::string raw = "GET / HTTP/1.1\r\nHost:h\r\n";
  std::string expected = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 60; ++i) {
    raw += "X-" + std::to_string(i) + ":" + std::string(i * 7, 'v') + "\r\n";
    expected += "X-" + std::to_string(i) + ": " + std::string(i * 7, 'v') + "\r\n";
  }
  raw += "\r\n";
  std::vector<http::Header> storage;
  auto head = ParseRequest(raw, storage);
  std::string out = "prefix-kept";
  const std::string long_ip(300, '1');
  AppendUpstreamRequestHead(head, ForwardContext{long_ip, "rid", false}, out);
  expected = "prefix-kept" + expected + "X-Forwarded-For: " + long_ip +
             "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\nVia: 1.1 ficus\r\n"
             "X-Request-Id: rid\r\n\r\n";
  EXPECT_EQ(out, expected);
}

}  // namespace
TEST(ForwardTest, NoFramingFieldsOn204) {
  std::vector<http::Header> storage;
  auto head =
      ParseResponse("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n", storage);
  std::string out;
  AppendDownstreamResponseHead(head, ResponseContext{"rid", true}, out);
  EXPECT_EQ(out,
            "HTTP/1.1 204 No Content\r\nX-A: 1\r\nVia: 1.1 ficus\r\nX-Request-Id: rid\r\n\r\n");
}

TEST(ForwardTest, InterimHeadKeepsEndToEndFieldsOnly) {
  std::vector<http::Header> storage(100);
  http::ResponseHeadParser parser(http::Limits{}, storage);
  http::ResponseHead head;
  constexpr std::string_view kRaw =
      "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: keep-alive\r\n"
      "Keep-Alive: timeout=5\r\n\r\n";
  ASSERT_TRUE(parser.Parse(kRaw, http::Method::kGet, head));
  std::string out;
  AppendInterimResponseHead(head, out);
  EXPECT_EQ(out, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
}

TEST(ForwardTest, RechunkedResponsesSayChunkedOnly) {
  std::vector<http::Header> storage;
  auto head = ParseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", storage);
  std::string out;
  ResponseContext ctx{"rid", true};
  ctx.rechunk = true;
  AppendDownstreamResponseHead(head, ctx, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVia: 1.1 ficus\r\n"
            "X-Request-Id: rid\r\n\r\n");
}

TEST(ForwardTest, TrailersThatMustNotBeTrailersAreDropped) {
  EXPECT_TRUE(AllowedInTrailer("X-Checksum"));
  EXPECT_TRUE(AllowedInTrailer("Server-Timing"));
  for (const char* name : {"Content-Length", "transfer-encoding", "HOST", "Authorization",
                           "Set-Cookie", "Content-Type", "Trailer", "Cache-Control"})
    EXPECT_FALSE(AllowedInTrailer(name)) << name;

  // Split anywhere, the gate lets the chunks through as they come and the filtered trailer
  // section out once it is whole.
  constexpr std::string_view kBody =
      "5\r\nhello\r\n0\r\nX-Sum: 1\r\nContent-Length: 9\r\nHost: evil\r\nX-B: 2\r\n\r\n";
  for (size_t split = 1; split < kBody.size(); ++split) {
    http::ChunkedScanner scanner;
    TrailerGate gate;
    std::string sent;
    for (std::string_view piece : {kBody.substr(0, split), kBody.substr(split)}) {
      auto n = scanner.Scan(piece);
      ASSERT_TRUE(n);
      sent.append(piece.substr(0, gate.Pass(scanner, piece.substr(0, *n))));
      sent.append(gate.release());
    }
    EXPECT_EQ(sent, "5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n") << split;
  }
  // No trailer fields: everything passes at once, nothing held.
  http::ChunkedScanner scanner;
  TrailerGate gate;
  constexpr std::string_view kPlain = "2\r\nhi\r\n0\r\n\r\n";
  auto n = scanner.Scan(kPlain);
  ASSERT_TRUE(n);
  EXPECT_EQ(gate.Pass(scanner, kPlain), kPlain.size());
  EXPECT_TRUE(gate.release().empty());
}

}  // namespace ficus::proxy
