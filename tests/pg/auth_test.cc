// SCRAM-SHA-256 both ways (ficus as the server checks ficus as the client, and a stored
// PostgreSQL verifier), and the md5 response against a value computed by PostgreSQL.
#include "pg/internal/auth.h"

#include <gtest/gtest.h>

namespace ficus::pg::internal {
namespace {

TEST(PgScram, ClientAndServerAgree) {
  auto v = MakeVerifier("correct horse");
  ASSERT_TRUE(v);
  ScramServer server(*v);
  ScramClient client("correct horse");
  std::string server_first, client_final, server_final, error;
  ASSERT_TRUE(server.First(client.First(), &server_first, &error)) << error;
  ASSERT_TRUE(client.Final(server_first, &client_final, &error)) << error;
  ASSERT_TRUE(server.Final(client_final, &server_final, &error)) << error;
  EXPECT_TRUE(client.Verify(server_final));
  EXPECT_FALSE(client.Verify("v=AAAA"));
}

TEST(PgScram, AWrongPasswordFails) {
  auto v = MakeVerifier("right");
  ScramServer server(*v);
  ScramClient client("wrong");
  std::string server_first, client_final, server_final, error;
  ASSERT_TRUE(server.First(client.First(), &server_first, &error));
  ASSERT_TRUE(client.Final(server_first, &client_final, &error));
  EXPECT_FALSE(server.Final(client_final, &server_final, &error));
  EXPECT_EQ(error, "password authentication failed");
}

TEST(PgScram, AStoredVerifier) {
  // A verifier in PostgreSQL's stored form (pg_authid.rolpassword) checks the same password.
  auto fresh = MakeVerifier("secret");
  ASSERT_TRUE(fresh);
  const std::string stored = "SCRAM-SHA-256$4096:" + Base64Encode(fresh->salt) + "$" +
                             Base64Encode(fresh->stored_key) + ":" +
                             Base64Encode(fresh->server_key);
  auto v = MakeVerifier(stored);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->stored_key, fresh->stored_key);
  ScramServer server(*v);
  ScramClient client("secret");
  std::string server_first, client_final, server_final, error;
  ASSERT_TRUE(server.First(client.First(), &server_first, &error));
  ASSERT_TRUE(client.Final(server_first, &client_final, &error));
  EXPECT_TRUE(server.Final(client_final, &server_final, &error)) << error;
  EXPECT_FALSE(MakeVerifier("SCRAM-SHA-256$x:y$z:w"));
  EXPECT_FALSE(MakeVerifier("SCRAM-SHA-256$4096:c2FsdA==$YQ==:YQ=="));  // keys too short
}

TEST(PgScram, MalformedClientMessages) {
  auto v = MakeVerifier("pw");
  ScramServer server(*v);
  std::string out, error;
  EXPECT_FALSE(server.First("p=tls-server-end-point,,n=,r=abc", &out, &error));
  EXPECT_FALSE(server.First("x,,n=,r=abc", &out, &error));
  EXPECT_FALSE(server.First("n,,r=abc", &out, &error));
  ASSERT_TRUE(server.First("n,,n=,r=abc", &out, &error));
  EXPECT_FALSE(server.Final("c=biws,r=wrongnonce,p=AAAA", &out, &error));
  EXPECT_FALSE(server.Final("garbage", &out, &error));
}

TEST(PgScram, Md5Response) {
  // 'md5' || md5(md5('secret' || 'app') || 'salt'), as PostgreSQL computes it.
  EXPECT_EQ(Md5Response("app", "secret", "salt"), "md57f097e06031b34893c20e25a0e68242c");
  EXPECT_NE(Md5Response("app", "secret", "salt"), Md5Response("app", "secret", "salu"));
}

TEST(PgScram, Base64) {
  EXPECT_EQ(Base64Encode("n,,"), "biws");
  EXPECT_EQ(*Base64Decode("biws"), "n,,");
  EXPECT_EQ(*Base64Decode("YQ=="), "a");
  EXPECT_FALSE(Base64Decode("YQ="));
  EXPECT_FALSE(Base64Decode("Y!=="));
}

}  // namespace
}  // namespace ficus::pg::internal
