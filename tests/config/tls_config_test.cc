// TLS keys: `postgres.tls`, a database's sslmode/sslrootcert/sslcert/sslkey. Every
// file is opened and parsed at load: a missing, unreadable or wrong file is an error naming the
// file, line, field and why. Certificates made with the openssl CLI in a temp dir.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "config/config.h"

namespace ficus::config {
namespace {

using ::testing::HasSubstr;

class TlsConfig : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/ficus-tls-config-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string script =
        "cd " + dir_ +
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 "
        "-subj /CN=ca 2>/dev/null"
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 "
        "-subj /CN=other 2>/dev/null && echo 'not a pem' > junk.txt";
    ASSERT_EQ(std::system(script.c_str()), 0);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  static std::string F(const std::string& name) { return dir_ + "/" + name; }

  static LoadResult Load(const std::string& pg_extra, const std::string& db_extra = "") {
    return LoadString(std::string("listeners:\n"
                                  "  - { listen: 127.0.0.1:8080 }\n"
                                  "  - { name: db, listen: 127.0.0.1:6432, kind: postgres }\n"
                                  "clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\n"
                                  "routes: [{ match: { path_prefix: / }, cluster: app }]\n"
                                  "postgres:\n"
                                  "  databases:\n"
                                  "    - name: shop\n"
                                  "      primary: 127.0.0.1:5432\n") +
                          db_extra + "  users: [{ name: app, password: secret }]\n" + pg_extra,
                      "test.yaml");
  }
  static std::string Errors(const LoadResult& r) {
    std::string out;
    for (const auto& e : r.errors) out += e.ToString() + "\n";
    return out;
  }
  static std::string dir_;
};
std::string TlsConfig::dir_;

TEST_F(TlsConfig, DefaultsPreferAndNoListenerTls) {
  LoadResult r = Load("");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  EXPECT_EQ(r.config->postgres.databases[0].sslmode, PgSslMode::kPrefer);
  EXPECT_FALSE(r.config->postgres.tls.enabled());
  EXPECT_FALSE(r.config->postgres.tls_required);
}

TEST_F(TlsConfig, EveryKeyAndTheRedactedYaml) {
  LoadResult r =
      Load("  tls: { cert: " + F("ca.crt") + ", key: " + F("ca.key") + ", required: true }\n",
           "      sslmode: verify-full\n      sslrootcert: " + F("ca.crt") +
               "\n      sslcert: " + F("other.crt") + "\n      sslkey: " + F("other.key") + "\n");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  const Postgres& pg = r.config->postgres;
  EXPECT_EQ(pg.tls.cert, F("ca.crt"));
  EXPECT_TRUE(pg.tls_required);
  EXPECT_EQ(pg.databases[0].sslmode, PgSslMode::kVerifyFull);
  EXPECT_EQ(pg.databases[0].sslrootcert, F("ca.crt"));
  EXPECT_EQ(pg.databases[0].sslkey, F("other.key"));
  const std::string yaml = ToRedactedYaml(*r.config);
  EXPECT_THAT(yaml, HasSubstr("sslmode: verify-full"));
  EXPECT_THAT(yaml, HasSubstr("required: true"));
  // What /config shows loads again, to the same config.
  LoadResult again = LoadString(yaml, "again.yaml");
  ASSERT_TRUE(again.errors.empty()) << Errors(again);
  EXPECT_EQ(again.config->postgres.tls, pg.tls);
  EXPECT_TRUE(again.config->postgres.tls_required);
  const PgDatabase& d = again.config->postgres.databases.at(0);
  EXPECT_EQ(d.sslmode, PgSslMode::kVerifyFull);
  EXPECT_EQ(d.sslrootcert, F("ca.crt"));
  EXPECT_EQ(d.sslcert, F("other.crt"));
  EXPECT_EQ(d.sslkey, F("other.key"));
}

TEST_F(TlsConfig, BadFilesNameFileLineFieldAndWhy) {
  LoadResult r = Load("  tls: { cert: " + F("missing.crt") + ", key: " + F("ca.key") + " }\n");
  EXPECT_THAT(Errors(r), HasSubstr("test.yaml:11:16: postgres.tls.cert: cannot read '" +
                                   F("missing.crt") + "': No such file or directory"));
  r = Load("  tls: { cert: " + F("junk.txt") + ", key: " + F("ca.key") + " }\n");
  EXPECT_THAT(Errors(r),
              HasSubstr("postgres.tls.cert: '" + F("junk.txt") + "' holds no PEM certificate"));
  r = Load("  tls: { cert: " + F("ca.crt") + ", key: " + F("ca.crt") + " }\n");
  EXPECT_THAT(Errors(r),
              HasSubstr("postgres.tls.key: '" + F("ca.crt") + "' holds no PEM private key"));
  r = Load("  tls: { cert: " + F("ca.crt") + ", key: " + F("other.key") + " }\n");
  EXPECT_THAT(Errors(r), HasSubstr("postgres.tls.key: '" + F("other.key") +
                                   "' is not the key of the certificate in '" + F("ca.crt") + "'"));
  r = Load("  tls: { cert: " + F("ca.crt") + " }\n");
  EXPECT_THAT(Errors(r), HasSubstr("postgres.tls"));
}

TEST_F(TlsConfig, DatabaseSslKeys) {
  LoadResult r = Load("", "      sslmode: verify-everything\n");
  EXPECT_THAT(Errors(r),
              HasSubstr("test.yaml:10:16: postgres.databases[0].sslmode: unknown sslmode "
                        "'verify-everything'; expected disable, allow, prefer, "
                        "require, verify-ca or verify-full"));
  r = Load("", "      sslmode: require\n      sslrootcert: " + F("ca.crt") + "\n");
  EXPECT_THAT(Errors(r), HasSubstr("postgres.databases[0].sslrootcert: is used only with sslmode "
                                   "verify-ca or verify-full (sslmode is require)"));
  r = Load("", "      sslmode: verify-ca\n      sslrootcert: " + F("junk.txt") + "\n");
  EXPECT_THAT(Errors(r), HasSubstr("postgres.databases[0].sslrootcert: '" + F("junk.txt") +
                                   "' holds no PEM certificate"));
  r = Load("", "      sslcert: " + F("ca.crt") + "\n");
  EXPECT_THAT(Errors(r), HasSubstr("sslcert and sslkey go together"));
  r = Load("", "      sslmode: allow\n");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  EXPECT_EQ(r.config->postgres.databases[0].sslmode, PgSslMode::kAllow);
}

}  // namespace
}  // namespace ficus::config
