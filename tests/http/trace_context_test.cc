// W3C Trace Context parsing (traceparent, tracestate) and the header roles it relies on.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/http.h"

namespace ficus::http {
namespace {

constexpr std::string_view kValid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

TEST(TraceParent, ParsesVersion00) {
  TraceParent tp;
  ASSERT_TRUE(ParseTraceParent(kValid, &tp));
  EXPECT_EQ(tp.version, 0);
  EXPECT_EQ(tp.trace_id[0], 0x0a);
  EXPECT_EQ(tp.trace_id[15], 0x9c);
  EXPECT_EQ(tp.parent_id[0], 0xb7);
  EXPECT_EQ(tp.parent_id[7], 0x31);
  EXPECT_TRUE(tp.sampled());
  char out[kTraceParentSize];
  FormatTraceParent(tp.trace_id, tp.parent_id, tp.flags, out);
  EXPECT_EQ(std::string_view(out, sizeof out), kValid);
  ASSERT_TRUE(ParseTraceParent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", &tp));
  EXPECT_FALSE(tp.sampled());
  ASSERT_TRUE(ParseTraceParent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-fe", &tp));
  EXPECT_EQ(tp.flags, 0xfe);
}

TEST(TraceParent, FutureVersionsParseTheirFirstFields) {
  TraceParent tp;
  EXPECT_TRUE(ParseTraceParent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", &tp));
  EXPECT_TRUE(
      ParseTraceParent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", &tp));
  EXPECT_EQ(tp.version, 0xcc);
  EXPECT_FALSE(ParseTraceParent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x", &tp));
}

TEST(TraceParent, RejectsInvalid) {
  const std::vector<std::string> bad = {
      "",
      "00",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",    // short
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",  // v00 + more
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",   // upper case
      "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // version ff
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",  // zero trace id
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  // zero parent id
      "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  // separator
      "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331_01",
      "00-0af7651916cd43dd8448eb211c8031zz-b7ad6b7169203331-01",  // not hex
      "0g-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",
      " 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  };
  for (const std::string& s : bad) {
    TraceParent tp;
    EXPECT_FALSE(ParseTraceParent(s, &tp)) << s;
  }
}

TEST(TraceState, Valid) {
  for (std::string_view s :
       {"", "congo=t61rcWkgMzE", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", " congo=a , rojo=b ",
        "a=b,,c=d", "\tk=v\t", "tenant@system=v", "0tenant@sys-1=v", "k_-*/9=v a l u e",
        "a=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~"}) {
    EXPECT_TRUE(ValidTraceState(s)) << s;
  }
  std::string many;
  for (int i = 0; i < 32; ++i) many += "k" + std::to_string(i) + "=v,";
  EXPECT_TRUE(ValidTraceState(many));
  EXPECT_FALSE(ValidTraceState(many + "k32=v"));  // 33 members
}

TEST(TraceState, SeveralFieldsAreOneList) {
  TraceStateList ok;
  EXPECT_TRUE(ok.Add("congo=t61rcWkgMzE"));
  EXPECT_TRUE(ok.Add("rojo=00f067aa0ba902b7, ,"));
  EXPECT_TRUE(ok.valid());

  TraceStateList dup;  // each field alone is valid; together they repeat a key
  EXPECT_TRUE(dup.Add("a=1,b=2"));
  EXPECT_FALSE(dup.Add("b=3"));
  EXPECT_FALSE(dup.valid());
  EXPECT_FALSE(dup.Add("c=4"));  // stays invalid

  TraceStateList members;  // 20 + 13 = 33 members
  std::string first, second;
  for (int i = 0; i < 20; ++i) first += "a" + std::to_string(i) + "=v,";
  for (int i = 0; i < 13; ++i) second += "b" + std::to_string(i) + "=v,";
  EXPECT_TRUE(members.Add(first));
  EXPECT_FALSE(members.Add(second));

  // The list keeps views of the keys: the values outlive it.
  const std::string a256 = "a=" + std::string(254, 'x');
  const std::string b256 = "b=" + std::string(254, 'x');
  const std::string b255 = "b=" + std::string(253, 'x');
  TraceStateList bytes;  // 256 + 1 (the joining comma) + 256 = 513 bytes
  EXPECT_TRUE(bytes.Add(a256));
  EXPECT_FALSE(bytes.Add(b256));
  TraceStateList fits;  // 256 + 1 + 255 = 512
  EXPECT_TRUE(fits.Add(a256));
  EXPECT_TRUE(fits.Add(b255));

  TraceStateList bad;
  EXPECT_TRUE(bad.Add("a=1"));
  EXPECT_FALSE(bad.Add("Bad-Key=1"));
}

TEST(TraceState, Invalid) {
  for (std::string_view s :
       {"Congo=x", "1abc=x", "a", "a=", "=v", "a=b,a=c", "a=b\tc", "a=b=c", "a=\x7f", "t@=v",
        "@s=v", "t@Sys=v", "t@s@x=v", "t@systemnamelonge=v", "a=b;c=d", "a=\xc3\xa9"}) {
    EXPECT_FALSE(ValidTraceState(s)) << s;
  }
  EXPECT_FALSE(ValidTraceState("a=" + std::string(257, 'x')));
  EXPECT_TRUE(ValidTraceState("a=" + std::string(256, 'x')));
  EXPECT_FALSE(ValidTraceState("k=" + std::string(511, 'x')));  // over 512 bytes
}

TEST(TraceHeaders, RequestHeadCarriesThem) {
  std::vector<Header> storage(100);
  RequestHeadParser p(Limits{}, storage);
  RequestHead h;
  std::string req =
      "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: ua/1\r\nTraceparent: " + std::string(kValid) +
      "\r\ntracestate: a=b\r\ntracestate: c=d\r\n\r\n";
  ASSERT_TRUE(p.Parse(req, h).has_value());
  EXPECT_EQ(h.user_agent, "ua/1");
  EXPECT_EQ(h.traceparent, kValid);
  EXPECT_EQ(h.traceparent_count, 1);
  EXPECT_EQ(h.tracestate_count, 2);
  int roles = 0;
  for (const Header& f : h.headers) {
    if (f.role == HeaderRole::kTraceparent || f.role == HeaderRole::kTracestate) ++roles;
  }
  EXPECT_EQ(roles, 3);
}

}  // namespace
}  // namespace ficus::http
