// Answers from a stored response through the policy's phases: byte ranges (one, several, none
// satisfiable, If-Range), HEAD from a stored GET, and a HEAD's 200 updating or invalidating the
// stored GET response (RFC 9111 §4.3.5).
#include <gtest/gtest.h>

#include <string>

#include "policy_harness.h"

namespace ficus::cache {
namespace {

using policy::Decision;

constexpr int64_t kT0 = 1'000'000'000'000;
constexpr const char* kGet = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
constexpr const char* kStored =
    "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: \"v1\"\r\n"
    "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain\r\n"
    "Content-Length: 11\r\n\r\n";

std::string Get(std::string_view fields) {
  return std::string("GET /a HTTP/1.1\r\nHost: h\r\n") + std::string(fields) + "\r\n";
}

class ServeTest : public PolicyTest {
 protected:
  ServeTest() { Exchange(kGet, kStored, "0123456789A", kT0); }
  void Stored(const std::string& path, const std::string& body) {
    Exchange("GET " + path + " HTTP/1.1\r\nHost: h\r\n\r\n",
             "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: \"v1\"\r\n"
             "Content-Type: text/plain\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n",
             body, kT0);
  }
};

TEST_F(ServeTest, OneRangeIsA206WithContentRangeFromTheStoredBody) {
  for (auto [range, body, content_range] : {std::tuple{"bytes=0-1", "01", "bytes 0-1/11"},
                                            {"bytes=1-", "123456789A", "bytes 1-10/11"},
                                            {"bytes=-1", "A", "bytes 10-10/11"}}) {
    Result r = Exchange(Get(std::string("Range: ") + range + "\r\n"), "", "", kT0 + 1000);
    ASSERT_EQ(r.decision.kind, Decision::Kind::kAnswer) << range;
    EXPECT_EQ(r.decision.answer.status, 206) << range;
    EXPECT_EQ(r.body, body) << range;
    EXPECT_NE(r.response_added.find(std::string("Content-Range: ") + content_range + "\r\n"),
              std::string::npos)
        << r.response_added;
    EXPECT_NE(r.decision.answer.headers.find("Content-Type: text/plain"), std::string::npos);
    EXPECT_NE(r.response_added.find("Cache-Status: ficus; hit"), std::string::npos);
  }
  EXPECT_EQ(policy_->store()->stats().hits.load(), 3u);
}

TEST_F(ServeTest, SeveralRangesAreAMultipartByteranges206) {
  Result r = Exchange(Get("Range: bytes=0-0, 200-300, 10-10\r\n"), "", "", kT0 + 1000);
  ASSERT_EQ(r.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(r.decision.answer.status, 206);
  // 0-0 and 10-10 are 9 bytes apart: one part; 200-300 is past the end. One range left.
  EXPECT_EQ(r.body, "0123456789A");

  Stored("/big", std::string(1000, 'x') + "y" + std::string(999, 'z'));
  Result m = Exchange("GET /big HTTP/1.1\r\nHost: h\r\nRange: bytes=1000-1000,0-1\r\n\r\n", "", "",
                      kT0 + 1000);
  ASSERT_EQ(m.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(m.decision.answer.status, 206);
  const std::string ct = m.content_type;
  ASSERT_TRUE(ct.starts_with("multipart/byteranges; boundary=")) << ct;
  const std::string boundary = ct.substr(ct.find('=') + 1);
  EXPECT_EQ(m.body,
            "--" + boundary +
                "\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/2000\r\n\r\nxx\r\n"
                "--" +
                boundary +
                "\r\nContent-Type: text/plain\r\nContent-Range: bytes 1000-1000/2000\r\n\r\n"
                "y\r\n--" +
                boundary + "--\r\n");
  // The top-level fields keep the stored ones but not the representation's Content-Type.
  EXPECT_EQ(m.headers.find("Content-Type"), std::string::npos) << m.headers;
  EXPECT_NE(m.headers.find("ETag: \"v1\""), std::string::npos) << m.headers;
}

TEST_F(ServeTest, AnUnsatisfiableRangeIsA416AndAnInvalidOneTheWhole200) {
  Result r = Exchange(Get("Range: bytes=11-\r\n"), "", "", kT0 + 1000);
  ASSERT_EQ(r.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(r.decision.answer.status, 416);
  EXPECT_NE(r.response_added.find("Content-Range: bytes */11\r\n"), std::string::npos);
  EXPECT_EQ(r.body, "");
  Result bad = Exchange(Get("Range: bytes=5-1\r\n"), "", "", kT0 + 1000);
  EXPECT_EQ(bad.decision.answer.status, 200);
  EXPECT_EQ(bad.body, "0123456789A");
  EXPECT_EQ(bad.response_added.find("Content-Range"), std::string::npos);
}

TEST_F(ServeTest, IfRangeThatDoesNotMatchGetsTheWholeResponse) {
  Result ok = Exchange(Get("Range: bytes=0-1\r\nIf-Range: \"v1\"\r\n"), "", "", kT0 + 1000);
  EXPECT_EQ(ok.decision.answer.status, 206);
  Result date = Exchange(Get("Range: bytes=0-1\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), "",
                         "", kT0 + 1000);
  EXPECT_EQ(date.decision.answer.status, 206);
  Result other = Exchange(Get("Range: bytes=0-1\r\nIf-Range: \"v0\"\r\n"), "", "", kT0 + 1000);
  EXPECT_EQ(other.decision.answer.status, 200);
  EXPECT_EQ(other.body, "0123456789A");
  // A matching If-None-Match still wins (a 304 before any range).
  Result inm = Exchange(Get("Range: bytes=0-1\r\nIf-None-Match: \"v1\"\r\n"), "", "", kT0 + 1000);
  EXPECT_EQ(inm.decision.answer.status, 304);
}

TEST_F(ServeTest, HeadIsAnsweredFromTheStoredGetAndIgnoresRange) {
  Result r =
      Exchange("HEAD /a HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n", "", "", kT0 + 1000);
  ASSERT_EQ(r.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(r.decision.answer.status, 200);
  EXPECT_EQ(r.decision.answer.body.size(), 11u);  // the length a GET would get; Answer sends none
  EXPECT_NE(r.response_added.find("Cache-Status: ficus; hit"), std::string::npos);
}

TEST_F(ServeTest, AHead200WithMatchingValidatorsUpdatesTheStoredResponse) {
  const std::string head = "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n";
  // Stale after 60 s: the HEAD goes upstream (as a HEAD).
  Result r = Exchange(head,
                      "HTTP/1.1 200 OK\r\nCache-Control: max-age=1000\r\nETag: \"v1\"\r\n"
                      "X-New: 2\r\nContent-Length: 11\r\n\r\n",
                      "", kT0 + 100'000);
  EXPECT_EQ(r.decision.kind, Decision::Kind::kPass);
  EXPECT_NE(r.response_added.find("fwd=stale; fwd-status=200; stored"), std::string::npos)
      << r.response_added;
  Result hit = Exchange(kGet, "", "", kT0 + 200'000);
  ASSERT_EQ(hit.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(hit.body, "0123456789A");  // the stored body, the HEAD's fields
  EXPECT_NE(hit.decision.answer.headers.find("X-New: 2\r\n"), std::string::npos);
  EXPECT_NE(hit.decision.answer.headers.find("max-age=1000"), std::string::npos);
  EXPECT_NE(hit.decision.answer.headers.find("Content-Type: text/plain"), std::string::npos);
}

TEST_F(ServeTest, AHead200ThatDisagreesInvalidatesTheStoredResponse) {
  const std::string head = "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n";
  for (const char* fields :
       {"ETag: \"v2\"\r\nContent-Length: 11\r\n", "ETag: \"v1\"\r\nContent-Length: 12\r\n",
        "Last-Modified: Mon, 07 Nov 1994 08:49:37 GMT\r\n"}) {
    Exchange(kGet, kStored, "0123456789A", kT0);  // stored again
    ASSERT_EQ(policy_->store()->stats().objects.load(), 1);
    Result r = Exchange(
        head, std::string("HTTP/1.1 200 OK\r\nCache-Control: max-age=1000\r\n") + fields + "\r\n",
        "", kT0 + 100'000);
    EXPECT_NE(r.response_added.find("detail=head-mismatch"), std::string::npos)
        << fields << r.response_added;
    EXPECT_EQ(policy_->store()->stats().objects.load(), 0) << fields;
  }
}

TEST_F(PolicyTest, HitsWriteTheStoredBodyWithoutACopyAndTheStoreChargesItsMemory) {
  // A 16 KiB body of unknown length, relayed in 64 pieces of 256 bytes.
  Request req("GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string added, response_added;
  policy::Context ctx(req.head, route_, "", "id", kT0, 0, loop_, added, response_added, nullptr);
  ASSERT_EQ(policy_->Admit(ctx).kind, Decision::Kind::kPass);
  Response resp(
      "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n");
  policy_->OnResponse(ctx, resp.head);
  ASSERT_NE(ctx.response_body_sink(), nullptr);
  for (int i = 0; i < 64; ++i) ctx.response_body_sink()->Body(std::string(256, 'a' + i % 26));
  ctx.response_body_sink()->Done(true);
  policy_->End(ctx, {});
  const int64_t charged = policy_->store()->stats().bytes.load();
  EXPECT_GE(charged, 16384);
  EXPECT_LT(charged, 16384 + 16384 / 8 + 4096);  // no doubling slack left in the object
  // Two hits answer from the same stored bytes: a view, not a copy per hit.
  Result a = Exchange("GET /big HTTP/1.1\r\nHost: h\r\n\r\n", "", "", kT0 + 1000);
  Result b = Exchange("GET /big HTTP/1.1\r\nHost: h\r\n\r\n", "", "", kT0 + 2000);
  ASSERT_EQ(a.decision.answer.body.size(), 16384u);
  EXPECT_EQ(a.decision.answer.body.data(), b.decision.answer.body.data());
}

}  // namespace
}  // namespace ficus::cache
