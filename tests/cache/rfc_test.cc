// The RFC 9111 rules alone: directive parsing, dates, storability, freshness, age, keys, Vary,
// and ETag matching.
#include "cache/internal/rfc.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ficus::cache {
namespace {

CacheControl Parse(std::string_view v) {
  CacheControl cc;
  ParseCacheControl(v, cc);
  return cc;
}

std::vector<http::Header> Fields(std::initializer_list<std::pair<const char*, const char*>> f) {
  std::vector<http::Header> out;
  for (auto& [n, v] : f) out.push_back({n, v, http::HeaderRole::kOther});
  return out;
}

TEST(CacheControlTest, ParsesDirectivesCaseInsensitivelyWithQuotedArguments) {
  CacheControl cc = Parse(R"(Max-Age=60, S-MAXAGE="120", no-cache="Set-Cookie, X", public)");
  EXPECT_TRUE(cc.present);
  EXPECT_EQ(cc.max_age, 60);
  EXPECT_EQ(cc.s_maxage, 120);
  // Qualified: the quoted comma does not split the directive, and it names fields, not the whole
  // response.
  EXPECT_FALSE(cc.no_cache);
  EXPECT_EQ(cc.no_cache_fields, "Set-Cookie, X");
  EXPECT_TRUE(OmittedField(cc, "x"));
  EXPECT_TRUE(OmittedField(cc, "set-cookie"));
  EXPECT_FALSE(OmittedField(cc, "Set"));
  EXPECT_TRUE(cc.is_public);
  EXPECT_FALSE(cc.is_private);
}

TEST(CacheControlTest, QualifiedNoCacheAndPrivate) {
  CacheControl cc = Parse(R"(private="a", max-age=5)");
  EXPECT_FALSE(cc.is_private);
  EXPECT_TRUE(OmittedField(cc, "A"));
  EXPECT_FALSE(OmittedField(cc, "b"));
  // Bare, empty, or a second list: unqualified (the safe reading).
  EXPECT_TRUE(Parse("no-cache").no_cache);
  EXPECT_TRUE(Parse(R"(no-cache="")").no_cache);
  EXPECT_TRUE(Parse(R"(no-cache="a", no-cache="b")").no_cache);
  EXPECT_TRUE(Parse(R"(private="a", private)").is_private);
  EXPECT_TRUE(ListsField(" a ,b", "B"));
}

TEST(CacheControlTest, ConflictingMaxAgeIsStaleAndMalformedMaxAgeIsStale) {
  // §4.2.1: more than one value for a directive: the first, or stale; ficus takes stale when
  // they differ (a second max-age on another line included).
  EXPECT_EQ(Parse("max-age=10, max-age=99").max_age, 0);
  EXPECT_EQ(Parse("max-age=99, max-age=10").max_age, 0);
  EXPECT_EQ(Parse("max-age=10, max-age=10").max_age, 10);
  EXPECT_EQ(Parse("s-maxage=10, s-maxage=1").s_maxage, 0);
  CacheControl cc;
  ParseCacheControl("max-age=5", cc);
  ParseCacheControl("max-age=7", cc);  // a second field line
  EXPECT_EQ(cc.max_age, 0);
  // "max-age" inside a quoted extension is not a directive; single quotes are not quotes.
  EXPECT_EQ(Parse(R"(extension="max-age=3600", max-age=1)").max_age, 1);
  EXPECT_EQ(Parse(R"(max-age="1", extension="max-age=3600")").max_age, 1);
  EXPECT_EQ(Parse("max-age='3600'").max_age, 0);
  EXPECT_EQ(Parse("max-age=003600").max_age, 3600);
  EXPECT_EQ(Parse("max-age=100a").max_age, 0);
  EXPECT_EQ(Parse("max-age= 100").max_age, 0);
  EXPECT_EQ(Parse("max-age=abc").max_age, 0);
  EXPECT_EQ(Parse("max-age=-1").max_age, 0);
  EXPECT_EQ(Parse("max-age").max_age, 0);
  EXPECT_EQ(Parse("max-age=99999999999999999999").max_age, kMaxDelta);
}

TEST(CacheControlTest, SkipsUnknownExtensionsAndGarbage) {
  CacheControl cc = Parse(R"(foo="a,b\"c", ,, bar, max-age=3, =x, no-store)");
  EXPECT_EQ(cc.max_age, 3);
  EXPECT_TRUE(cc.no_store);
  EXPECT_EQ(Parse("max-stale").max_stale, kMaxDelta);
  EXPECT_EQ(Parse("max-stale=30, min-fresh=5").min_fresh, 5);
  EXPECT_FALSE(Parse("").present);
}

TEST(CacheControlTest, TargetedFieldsOverrideCacheControlForFicusOnly) {
  auto f = Fields({{"Cache-Control", "no-store"}, {"CDN-Cache-Control", "max-age=60"}});
  bool targeted = false;
  CacheControl cc = ResponseDirectives(f, &targeted);
  EXPECT_TRUE(targeted);
  EXPECT_FALSE(cc.no_store);
  EXPECT_EQ(cc.max_age, 60);
  f.push_back({"Ficus-Cache-Control", "max-age=5", http::HeaderRole::kOther});
  EXPECT_EQ(ResponseDirectives(f).max_age, 5);
  auto plain = Fields({{"Cache-Control", "max-age=9"}});
  EXPECT_EQ(ResponseDirectives(plain, &targeted).max_age, 9);
  EXPECT_FALSE(targeted);
}

TEST(CacheControlTest, InvalidTargetedFieldsAreIgnoredWhole) {
  for (const char* ok :
       {"max-age=3600", "foobar, max-age=3600", "max-age=99999999999", R"(no-cache="a", private)",
        "a;p=1, b=?0, c=(1 2);q, d=:YWJj:, e=1.5", "", "max-age=1 , s-maxage=2", "x=tok/en:1"}) {
    EXPECT_TRUE(ValidStructuredDictionary(ok)) << ok;
  }
  for (const char* bad : {"max-age=10000, &&&&&", "max-age=", "a,", ",a", "a=1.2345",
                          "a=1234567890123456", R"(a="x)", "a=(1", "a=?2", "a b"}) {
    EXPECT_FALSE(ValidStructuredDictionary(bad)) << bad;
  }
  // RFC 9213: an invalid CDN-Cache-Control is as if absent (Cache-Control decides)...
  bool targeted = true;
  auto f = Fields({{"CDN-Cache-Control", "max-age=10000, &&&&&"}, {"Cache-Control", "no-store"}});
  CacheControl cc = ResponseDirectives(f, &targeted);
  EXPECT_FALSE(targeted);
  EXPECT_TRUE(cc.no_store);
  // ... and a directive of the wrong type (a String for an Integer) is ignored.
  auto g = Fields({{"CDN-Cache-Control", R"(max-age="10000")"}, {"Cache-Control", "no-store"}});
  cc = ResponseDirectives(g);
  EXPECT_EQ(cc.max_age, -1);
  EXPECT_FALSE(cc.no_store);
  auto h = Fields({{"CDN-Cache-Control", "max-age=10000"}, {"Cache-Control", "no-store"}});
  EXPECT_EQ(ResponseDirectives(h).max_age, 10000);
}

TEST(CacheControlTest, PragmaNoCacheOnlyWithoutCacheControl) {
  EXPECT_TRUE(RequestDirectives(Fields({{"Pragma", "no-cache"}})).no_cache);
  EXPECT_FALSE(
      RequestDirectives(Fields({{"Pragma", "no-cache"}, {"Cache-Control", "max-age=5"}})).no_cache);
}

TEST(HttpDateTest, ParsesAllThreeFormsAndRejectsGarbage) {
  const int64_t t = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), t);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), t);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), t);
  EXPECT_EQ(FormatHttpDate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate(FormatHttpDate(1733300000)), 1733300000);
  for (const char* bad : {"0", "", "Sun, 06 Nov 1994 08:49:37", "Sun, 32 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT x"}) {
    EXPECT_FALSE(ParseHttpDate(bad)) << bad;
  }
}

http::RequestHead Get(std::vector<http::Header>& fields) {
  http::RequestHead r;
  r.method = http::Method::kGet;
  r.headers = fields;
  return r;
}

TEST(StorableTest, FollowsSection3) {
  std::vector<http::Header> none;
  http::RequestHead req = Get(none);
  Rules rules;
  auto verdict = [&](int status, std::vector<http::Header> resp) {
    return Storable(req, {}, status, resp, ResponseDirectives(resp), rules);
  };
  EXPECT_EQ(verdict(200, {}), Verdict::kStorable);  // heuristically cacheable
  EXPECT_EQ(verdict(302, {}), Verdict::kNotCacheable);
  EXPECT_EQ(verdict(302, Fields({{"Cache-Control", "max-age=5"}})), Verdict::kStorable);
  EXPECT_EQ(verdict(200, Fields({{"Cache-Control", "no-store"}})), Verdict::kNoStore);
  EXPECT_EQ(verdict(200, Fields({{"Cache-Control", "private"}})), Verdict::kPrivate);
  EXPECT_EQ(verdict(200, Fields({{"Vary", "Accept, *"}})), Verdict::kVaryStar);
  EXPECT_EQ(verdict(200, Fields({{"Set-Cookie", "a=1"}})), Verdict::kSetCookie);
  // Set-Cookie does not inhibit caching when the response states its freshness (the stored copy
  // leaves the cookie out: object.cc).
  EXPECT_EQ(verdict(200, Fields({{"Set-Cookie", "a=1"}, {"Cache-Control", "max-age=5"}})),
            Verdict::kStorable);
  EXPECT_EQ(verdict(206, Fields({{"Cache-Control", "max-age=5"}})), Verdict::kStatus);
  EXPECT_EQ(verdict(304, Fields({{"Cache-Control", "max-age=5"}})), Verdict::kStatus);
  // §3: any final status with explicit freshness, understood or not; heuristics only for the
  // heuristically cacheable ones (or public).
  for (int status : {299, 302, 400, 499, 500, 599}) {
    EXPECT_EQ(verdict(status, Fields({{"Cache-Control", "max-age=5"}})), Verdict::kStorable)
        << status;
    EXPECT_EQ(verdict(status, Fields({{"Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}})),
              Verdict::kNotCacheable)
        << status;
  }
  EXPECT_EQ(verdict(599, Fields({{"Cache-Control", "public"}})), Verdict::kStorable);
  EXPECT_EQ(verdict(201, Fields({{"Cache-Control", "no-cache"}})), Verdict::kNotCacheable);
  EXPECT_EQ(verdict(200, Fields({{"Cache-Control", R"(private="Set-Cookie", max-age=5)"}})),
            Verdict::kStorable);
  EXPECT_EQ(verdict(299, Fields({{"Cache-Control", "max-age=5, must-understand, no-store"}})),
            Verdict::kMustUnderstand);
  EXPECT_EQ(verdict(200, Fields({{"Cache-Control", "max-age=5, must-understand, no-store"}})),
            Verdict::kStorable);
  // §3.5: Authorization.
  std::vector<http::Header> auth = Fields({{"Authorization", "Bearer x"}});
  req = Get(auth);
  EXPECT_EQ(verdict(200, Fields({{"Cache-Control", "max-age=5"}})), Verdict::kAuthorization);
  EXPECT_EQ(verdict(200, Fields({{"Cache-Control", "s-maxage=5"}})), Verdict::kStorable);
  EXPECT_EQ(verdict(200, Fields({{"Cache-Control", "public"}})), Verdict::kStorable);
  // A forced route ttl overrides no-store and private, but never a request's no-store.
  req = Get(none);
  rules.default_ttl_s = 30;
  rules.force_ttl = true;
  EXPECT_EQ(verdict(200, Fields({{"Cache-Control", "no-store, private"}})), Verdict::kStorable);
  CacheControl req_cc = Parse("no-store");
  EXPECT_EQ(Storable(req, req_cc, 200, {}, {}, rules), Verdict::kNoStore);
  http::RequestHead post = req;
  post.method = http::Method::kPost;
  EXPECT_EQ(Storable(post, {}, 200, {}, {}, rules), Verdict::kMethod);
}

TEST(FreshnessTest, SMaxAgeThenMaxAgeThenExpiresThenHeuristic) {
  Rules rules;
  const int64_t now = 1'000'000'000'000;  // ms
  auto lifetime = [&](int status, std::vector<http::Header> f) {
    return ComputeTiming(status, f, ResponseDirectives(f), rules, now, now).lifetime_s;
  };
  EXPECT_EQ(lifetime(200, Fields({{"Cache-Control", "max-age=10, s-maxage=20"}})), 20);
  EXPECT_EQ(lifetime(200, Fields({{"Cache-Control", "max-age=10"},
                                  {"Expires", "Sun, 06 Nov 1994 08:49:37 GMT"}})),
            10);
  const std::string date = FormatHttpDate(now / 1000);
  const std::string later = FormatHttpDate(now / 1000 + 100);
  EXPECT_EQ(lifetime(200, Fields({{"Date", date.c_str()}, {"Expires", later.c_str()}})), 100);
  EXPECT_EQ(lifetime(200, Fields({{"Date", date.c_str()}, {"Expires", "0"}})), 0);
  const std::string lm = FormatHttpDate(now / 1000 - 1000);
  EXPECT_EQ(lifetime(200, Fields({{"Date", date.c_str()}, {"Last-Modified", lm.c_str()}})), 100);
  EXPECT_EQ(lifetime(302, Fields({{"Date", date.c_str()}, {"Last-Modified", lm.c_str()}})), 0);
  const std::string old = FormatHttpDate(now / 1000 - 100 * 86400);
  EXPECT_EQ(lifetime(200, Fields({{"Date", date.c_str()}, {"Last-Modified", old.c_str()}})),
            86400);          // capped
  rules.default_ttl_s = 30;  // the route's ttl replaces the heuristic, not explicit freshness
  EXPECT_EQ(lifetime(200, {}), 30);
  EXPECT_EQ(lifetime(200, Fields({{"Cache-Control", "max-age=3"}})), 3);
}

TEST(FreshnessTest, AgeFollowsSection423) {
  Rules rules;
  const int64_t now = 1'000'000'000'000;
  const std::string date = FormatHttpDate(now / 1000 - 10);  // 10 s apparent age
  auto f = Fields({{"Date", date.c_str()}, {"Age", "3"}});
  Timing t = ComputeTiming(200, f, {}, rules, now - 2000, now);
  EXPECT_EQ(t.corrected_initial_age_s, 10);  // max(apparent 10, 3 + delay 2)
  EXPECT_EQ(CurrentAge(t, now + 5000), 15);
  auto g = Fields({{"Age", "50"}});
  t = ComputeTiming(200, g, {}, rules, now - 2000, now);
  EXPECT_EQ(t.corrected_initial_age_s, 52);  // the upstream's Age plus the response delay
  // An invalid Age (a list, two lines, a sign, a fraction) is ignored (§5.1).
  for (auto bad :
       {Fields({{"Age", "7200,0"}}), Fields({{"Age", "7200"}, {"Age", "0"}}),
        Fields({{"Age", "-7200"}}), Fields({{"Age", "7200.0"}}), Fields({{"Age", "abc"}})}) {
    EXPECT_EQ(AgeValue(bad), 0);
  }
  EXPECT_EQ(AgeValue(Fields({{"Age", " 15 "}})), 15);
  // An invalid Date is the response time; an invalid Expires is in the past (§5.3).
  auto h = Fields({{"Date", "garbage"}, {"Expires", "0"}, {"Cache-Control", "x"}});
  t = ComputeTiming(200, h, ResponseDirectives(h), rules, now, now);
  EXPECT_EQ(t.date_s, now / 1000);
  EXPECT_EQ(t.lifetime_s, 0);
}

TEST(KeyTest, NormalisesHostAndQuery) {
  KeyRules rules;
  std::string k;
  AppendKey("Example.COM:80", "/a", "b=2&a=1", rules, k);
  EXPECT_EQ(k, "http://example.com/a?b=2&a=1");
  rules.sort_query = true;
  rules.ignore_query = {"utm_source"};
  AppendKey("h", "/a", "utm_source=x&b=2&a=1", rules, k);
  EXPECT_EQ(k, "http://h/a?a=1&b=2");
  AppendKey("h", "/a", "utm_source=x", rules, k);
  EXPECT_EQ(k, "http://h/a");
}

TEST(KeyTest, LocationKeysAreSameOriginOnly) {
  KeyRules rules;
  std::string k;
  EXPECT_TRUE(LocationKey("h", "/x?y=1#frag", rules, k));
  EXPECT_EQ(k, "http://h/x?y=1");
  EXPECT_TRUE(LocationKey("h", "http://H/z", rules, k));
  EXPECT_EQ(k, "http://h/z");
  EXPECT_FALSE(LocationKey("h", "http://evil/z", rules, k));
  EXPECT_FALSE(LocationKey("h", "//evil/z", rules, k));
  EXPECT_FALSE(LocationKey("h", "https://h/z", rules, k));
}

TEST(VaryTest, SecondaryKeysNormaliseWhitespaceAndLines) {
  std::vector<std::string> names;
  EXPECT_FALSE(
      VaryNames(Fields({{"Vary", "Accept-Encoding, accept-encoding"}, {"Vary", "X"}}), names));
  EXPECT_EQ(names, (std::vector<std::string>{"accept-encoding", "x"}));
  std::string a, b, c;
  AppendSecondaryKey(names, Fields({{"Accept-Encoding", "gzip, br"}}), a);
  AppendSecondaryKey(names, Fields({{"accept-encoding", "gzip"}, {"Accept-Encoding", " br "}}), b);
  AppendSecondaryKey(names, Fields({{"Accept-Encoding", "gzip"}}), c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(ETagTest, WeakComparison) {
  EXPECT_TRUE(IfNoneMatchMatches(R"("a", W/"b")", R"("b")"));
  EXPECT_TRUE(IfNoneMatchMatches(R"(W/"a")", R"("a")"));
  EXPECT_TRUE(IfNoneMatchMatches("*", R"("a")"));
  EXPECT_FALSE(IfNoneMatchMatches(R"("a")", R"("b")"));
  EXPECT_FALSE(IfNoneMatchMatches(R"("a")", ""));
}

}  // namespace
}  // namespace ficus::cache
