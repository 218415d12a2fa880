// Tests for the scalar grammars: durations, sizes, addresses, names, env substitution, regexes.
#include "config/internal/values.h"

#include <gtest/gtest.h>

#include <map>

#include "config/config.h"

namespace ficus::config {
namespace {

using namespace ::ficus::config::internal;  // NOLINT: the unit under test

TEST(ParseDuration, Accepts) {
  const std::pair<const char*, int64_t> cases[] = {
      {"0", 0},         {"0s", 0},        {"250ms", 250},       {"1s", 1000},
      {"1.5s", 1500},   {"0.25s", 250},   {"2m", 120000},       {"1h", 3600000},
      {"1d", 86400000}, {"1m30s", 90000}, {"1h0m1ms", 3600001}, {"60s", 60000},
      {"0.001s", 1},    {"1.5m", 90000},  {"007s", 7000},       {"10000h", 36000000000},
  };
  for (const auto& [text, ms] : cases) {
    std::optional<Duration> d = ParseDuration(text);
    ASSERT_TRUE(d.has_value()) << text;
    EXPECT_EQ(d->count(), ms) << text;
  }
}

TEST(ParseDuration, Rejects) {
  for (const char* text : {"",
                           "fast",
                           "1",
                           "10",
                           "1.5",
                           "s",
                           "ms",
                           "-1s",
                           "+1s",
                           "1 s",
                           " 1s",
                           "1s ",
                           "1.s",
                           ".5s",
                           "0.5ms",
                           "1.0001s",
                           "1us",
                           "1ns",
                           "1S",
                           "1sec",
                           "1e3ms",
                           "99999999999999999999s",
                           "1000000000d",
                           "1,5s",
                           "1.5.s"}) {
    EXPECT_FALSE(ParseDuration(text).has_value()) << text;
  }
}

TEST(FormatDuration, LargestExactUnit) {
  EXPECT_EQ(FormatDuration(Duration{0}), "0s");
  EXPECT_EQ(FormatDuration(Duration{250}), "250ms");
  EXPECT_EQ(FormatDuration(Duration{1500}), "1500ms");
  EXPECT_EQ(FormatDuration(Duration{2000}), "2s");
  EXPECT_EQ(FormatDuration(Duration{90000}), "90s");
  EXPECT_EQ(FormatDuration(Duration{60000}), "1m");
  EXPECT_EQ(FormatDuration(Duration{86400000}), "24h");
  for (int64_t ms : {0, 1, 999, 1000, 61000, 3600000, 3601000, 123456789}) {
    EXPECT_EQ(ParseDuration(FormatDuration(Duration{ms})), Duration{ms}) << ms;
  }
}

TEST(ParseSize, AcceptsAndRejects) {
  const std::pair<const char*, uint64_t> ok[] = {
      {"0", 0},
      {"123", 123},
      {"64KiB", 65536},
      {"1MiB", 1 << 20},
      {"1GiB", 1 << 30},
      {"2TiB", 2ull << 40},
      {"1KB", 1000},
      {"1MB", 1000000},
      {"1GB", 1000000000},
      {"1TB", 1000000000000},
      {"512B", 512},
      {"64 KiB", 65536},
      {"18446744073709551615", UINT64_MAX},
  };
  for (const auto& [text, n] : ok) {
    std::optional<uint64_t> v = ParseSize(text);
    ASSERT_TRUE(v.has_value()) << text;
    EXPECT_EQ(*v, n) << text;
  }
  for (const char* text : {"", "KiB", "1kib", "1K", "1.5MiB", "-1", "1 ", " 1", "1  KiB",
                           "18446744073709551616", "16777216TiB", "1KiBs", "0x10"}) {
    EXPECT_FALSE(ParseSize(text).has_value()) << text;
  }
}

TEST(FormatSize, LargestExactUnit) {
  EXPECT_EQ(FormatSize(0), "0");
  EXPECT_EQ(FormatSize(1000), "1000");
  EXPECT_EQ(FormatSize(65536), "64KiB");
  EXPECT_EQ(FormatSize(1 << 20), "1MiB");
  EXPECT_EQ(FormatSize(3ull << 30), "3GiB");
  EXPECT_EQ(FormatSize(1536), "1536");
  EXPECT_EQ(FormatSize(1ull << 40), "1TiB");
}

TEST(HostPort, Parses) {
  HostPort hp;
  std::string err;
  ASSERT_TRUE(ParseHostPort("127.0.0.1:80", &hp, &err)) << err;
  EXPECT_EQ(hp.host, "127.0.0.1");
  EXPECT_EQ(hp.port, 80);
  EXPECT_FALSE(hp.bracketed);
  ASSERT_TRUE(ParseHostPort("[::1]:65535", &hp, &err)) << err;
  EXPECT_EQ(hp.host, "::1");
  EXPECT_EQ(hp.port, 65535);
  EXPECT_TRUE(hp.bracketed);
  ASSERT_TRUE(ParseHostPort("db.internal:5432", &hp, &err)) << err;
  EXPECT_EQ(hp.host, "db.internal");
  for (const char* bad : {"", ":", "a", "a:", ":80", "[::1]", "[::1]80", "[::1:80", "::1:80", "a:0",
                          "a:65536", "a:-1", "a:8o", "a: 80", "a:80 "}) {
    EXPECT_FALSE(ParseHostPort(bad, &hp, &err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(Ip, CanonicalAndClassified) {
  EXPECT_EQ(CanonicalIp("0:0::1"), "::1");
  EXPECT_EQ(CanonicalIp("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(CanonicalIp("localhost"), std::nullopt);
  EXPECT_EQ(CanonicalIp("1.2.3"), std::nullopt);
  EXPECT_EQ(CanonicalIp("01.2.3.4"), std::nullopt);
  EXPECT_EQ(CanonicalIp(""), std::nullopt);
  EXPECT_EQ(CanonicalIp(std::string(100, '1')), std::nullopt);
  EXPECT_TRUE(IsLoopbackIp("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackIp("127.255.0.9"));
  EXPECT_TRUE(IsLoopbackIp("::1"));
  EXPECT_TRUE(IsLoopbackIp("::ffff:127.0.0.1"));
  EXPECT_FALSE(IsLoopbackIp("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackIp("::"));
  EXPECT_FALSE(IsLoopbackIp("10.0.0.1"));
  EXPECT_TRUE(IsWildcardIp("0.0.0.0"));
  EXPECT_TRUE(IsWildcardIp("::"));
  EXPECT_EQ(JoinHostPort("::1", 80), "[::1]:80");
  EXPECT_EQ(JoinHostPort("1.2.3.4", 80), "1.2.3.4:80");
}

TEST(Names, HostNamesTokensAndNames) {
  for (const char* ok : {"a", "example.com", "example.com.", "a-b.c_d.e", "x1.y2", "123.example"}) {
    EXPECT_TRUE(IsValidHostName(ok)) << ok;
  }
  for (const char* bad :
       {"", ".", "a..b", "-a.com", "a-.com", "a b", "a/b", "*.a.com", "a.com..", "é.com"}) {
    EXPECT_FALSE(IsValidHostName(bad)) << bad;
  }
  EXPECT_FALSE(IsValidHostName(std::string(64, 'a') + ".com"));
  EXPECT_TRUE(IsValidHostName(std::string(63, 'a') + ".com"));
  EXPECT_TRUE(IsToken("GET"));
  EXPECT_TRUE(IsToken("x-custom_1!"));
  EXPECT_FALSE(IsToken(""));
  EXPECT_FALSE(IsToken("GE T"));
  EXPECT_FALSE(IsToken("a:b"));
  EXPECT_EQ(CheckName("shop"), "");
  EXPECT_EQ(CheckName("shop-v2.eu_1"), "");
  EXPECT_NE(CheckName(""), "");
  EXPECT_NE(CheckName("-shop"), "");
  EXPECT_NE(CheckName("a b"), "");
  EXPECT_NE(CheckName(std::string(65, 'a')), "");
}

TEST(Text, Utf8AndControls) {
  EXPECT_EQ(CheckText("plain\ttext"), "");
  EXPECT_EQ(CheckText("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8c\xb3"), "");
  EXPECT_NE(CheckText("a\nb"), "");
  EXPECT_NE(CheckText(std::string("a\0b", 3)), "");
  EXPECT_NE(CheckText("\x7f"), "");
  EXPECT_NE(CheckText("\xff"), "");
  EXPECT_NE(CheckText("\xc3"), "");              // truncated
  EXPECT_NE(CheckText("\xc0\xaf"), "");          // overlong
  EXPECT_NE(CheckText("\xed\xa0\x80"), "");      // surrogate
  EXPECT_NE(CheckText("\xf4\x90\x80\x80"), "");  // > U+10FFFF
  EXPECT_NE(CheckText("\xc2\x85"), "");          // C1 control (NEL)
}

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Env, Substitutes) {
  const EnvLookup env = FakeEnv({{"A", "1"}, {"B", "two"}, {"EMPTY", ""}, {"D", "${A}"}});
  const std::pair<const char*, const char*> cases[] = {
      {"", ""},
      {"plain", "plain"},
      {"${A}", "1"},
      {"x${A}y${B}z", "x1ytwoz"},
      {"${NOPE:-dflt}", "dflt"},
      {"${NOPE:-}", ""},
      {"${EMPTY:-e}", "e"},
      {"${EMPTY}", ""},
      {"${A:-x}", "1"},
      {"${NOPE:-a:-b}", "a:-b"},
      {"$${A}", "${A}"},
      {"$$${A}", "$${A}"},
      {"$", "$"},
      {"$$", "$$"},
      {"a$b", "a$b"},
      {"${D}", "${A}"},  // values are not substituted again
      {"${NOPE:-{x}", "{x"},
  };
  for (const auto& [in, want] : cases) {
    Parsed p = SubstituteEnv(in, env);
    EXPECT_TRUE(p.ok()) << in << ": " << p.error;
    EXPECT_EQ(p.value, want) << in;
  }
}

TEST(Env, Errors) {
  const EnvLookup env = FakeEnv({});
  EXPECT_EQ(SubstituteEnv("${X}", env).error, "environment variable X is not set");
  EXPECT_EQ(SubstituteEnv("a${X", env).error, "unterminated '${' (write '$${' for a literal '${')");
  EXPECT_EQ(SubstituteEnv("${1A}", env).error,
            "invalid environment variable name '1A' in '${...}' (letters, digits and '_')");
  EXPECT_FALSE(SubstituteEnv("${A B}", env).ok());
  EXPECT_FALSE(SubstituteEnv("${:-x}", env).ok());
}

TEST(Env, EscapeIsTheInverse) {
  const EnvLookup env = FakeEnv({});
  for (const char* s : {"", "a", "${A}", "$${A}", "$$${", "${", "$", "}${}${", "a$b${c}$"}) {
    Parsed p = SubstituteEnv(EscapeEnv(s), env);
    ASSERT_TRUE(p.ok()) << s << ": " << p.error;
    EXPECT_EQ(p.value, s);
  }
}

TEST(Regex, Checks) {
  EXPECT_EQ(CheckRegex("/api/v[0-9]+/.*"), "");
  EXPECT_EQ(CheckRegex("^/a$"), "");
  EXPECT_EQ(CheckRegex("(?i)/ABC"), "");
  EXPECT_NE(CheckRegex("/a("), "");
  EXPECT_NE(CheckRegex("[a"), "");
  EXPECT_NE(CheckRegex("*a"), "");
  EXPECT_NE(CheckRegex("a{2,1}"), "");
  EXPECT_EQ(CheckRegex("/a(").substr(0, 15), "invalid regex: ");
  EXPECT_NE(CheckRegex(std::string(2000, 'a')), "");
  EXPECT_NE(CheckRegex(std::string(33, '(') + std::string(33, ')')), "");
  EXPECT_EQ(CheckRegex(std::string(32, '(') + std::string(32, ')')), "");
  EXPECT_EQ(CheckRegex("[(((((((((((((((((((((((((((((((((((((((((]"), "");
}

}  // namespace
}  // namespace ficus::config
