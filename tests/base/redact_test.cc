// The one redaction of traffic copies (base/redact.h): heads, targets, field values and text.
#include "base/redact.h"

#include <gtest/gtest.h>

namespace ficus {
namespace {

TEST(RedactHead, RedactsCredentialsOnly) {
  const std::string head =
      "GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer abc\r\ncookie: s=1; t=2\r\n"
      "Proxy-Authorization : Basic Zm9v\r\nX-Auth: keep\r\n\r\n";
  const std::string out = RedactHead(head);
  EXPECT_EQ(out,
            "GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: <redacted>\r\ncookie: <redacted>\r\n"
            "Proxy-Authorization : <redacted>\r\nX-Auth: keep\r\n\r\n");
  EXPECT_EQ(RedactHead("HTTP/1.1 500 x\r\nSet-Cookie: id=secret\r\n"),
            "HTTP/1.1 500 x\r\nSet-Cookie: <redacted>\r\n");
  // A cut head (no final newline) is redacted too.
  EXPECT_EQ(RedactHead("GET / HTTP/1.1\r\nCookie: abc"), "GET / HTTP/1.1\r\nCookie: <redacted>");
}

// What the config names (an API-key field, a query parameter) and JWTs anywhere (issue 15).
TEST(RedactHead, RedactsConfiguredCredentialsAndJwts) {
  SetCredentialNames({"X-Api-Key"}, {"api_key"});
  const std::string jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
  EXPECT_EQ(RedactHead("GET /p?a=1&api_key=s3cret&b=2 HTTP/1.1\r\nx-api-key: s3cret\r\n"
                       "X-Token: t " +
                       jwt + " end\r\n\r\n"),
            "GET /p?a=1&api_key=<redacted>&b=2 HTTP/1.1\r\nx-api-key: <redacted>\r\n"
            "X-Token: t <redacted-jwt> end\r\n\r\n");
  EXPECT_EQ(RedactHead("GET /p?t=" + jwt + " HTTP/1.1\r\n"),
            "GET /p?t=<redacted-jwt> HTTP/1.1\r\n");
  EXPECT_EQ(RedactHead("GET /eyJ.not HTTP/1.1\r\n"), "GET /eyJ.not HTTP/1.1\r\n");
  SetCredentialNames({}, {});
  EXPECT_EQ(RedactHead("GET /p?api_key=x HTTP/1.1\r\n"), "GET /p?api_key=x HTTP/1.1\r\n");
}

// The pieces a capture writer and the access log use one by one.
TEST(Redact, FieldsTargetsAndText) {
  SetCredentialNames({"X-Api-Key"}, {"api_key", "token"});
  EXPECT_TRUE(IsCredentialField("authorization"));
  EXPECT_TRUE(IsCredentialField("X-API-KEY"));
  EXPECT_TRUE(IsCredentialField("Cookie"));
  EXPECT_FALSE(IsCredentialField("X-Api-Keys"));
  const std::string jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
  EXPECT_EQ(RedactTarget("/a?token=t1&x=1&api_key=k2"),
            "/a?token=<redacted>&x=1&api_key=<redacted>");
  EXPECT_EQ(RedactTarget("/reset/" + jwt + "?x=1"), "/reset/<redacted-jwt>?x=1");
  EXPECT_EQ(RedactTarget("/a?api_key"), "/a?api_key");  // no value: nothing to hide
  EXPECT_TRUE(HasJwt("/reset/" + jwt));
  EXPECT_FALSE(HasJwt("/eyJ.a"));
  EXPECT_FALSE(HasJwt("/plain/path"));
  EXPECT_EQ(RedactJwts("{\"t\":\"" + jwt + "\"}"), "{\"t\":\"<redacted-jwt>\"}");
  SetCredentialNames({}, {});
  EXPECT_FALSE(IsCredentialField("X-Api-Key"));
}

}  // namespace
}  // namespace ficus
