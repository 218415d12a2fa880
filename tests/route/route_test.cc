// Tests for ficus::route::RouteTable: every matcher, first-match order, hosts (wildcards, ports,
// case), regex (including the fail-closed bound), no match, and that Match() never allocates.
#include "route/route.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

// Allocation counter for the whole test binary: Match() must not allocate.
// noinline: g++ otherwise pairs the inlined malloc with `delete` and warns (mismatched-new-delete).
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

[[gnu::noinline]] void* operator new(size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new(size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size ? size : 1);
}
[[gnu::noinline]] void* operator new[](size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size ? size : 1);
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace ficus::route {
namespace {

using config::Config;
using config::HeaderMatcher;
using config::Route;

// A request head over strings the test owns.
struct Request {
  std::string method = "GET";
  std::string host = "example.com";
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> fields;
  std::vector<http::Header> storage;

  http::RequestHead Head() {
    storage.clear();
    for (const auto& [n, v] : fields) storage.push_back({n, v, http::HeaderRole::kOther});
    http::RequestHead h;
    h.method = http::Method::kOther;
    h.method_text = method;
    h.target = path;
    h.path = path;
    h.host = host;
    h.headers = std::span<http::Header>(storage.data(), storage.size());
    return h;
  }
};

// Appends only: g++ 12 -O3 warns falsely (-Wrestrict) on "literal" + std::string.
std::string Cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

Route MakeRoute(std::string name) {
  Route r;
  r.name = std::move(name);
  r.cluster = std::string(1, 'c');  // not = "c": g++ 12 -Wrestrict false positive
  return r;
}

Config MakeConfig(std::vector<Route> routes) {
  Config c;
  c.routes = std::move(routes);
  return c;
}

int MatchOf(const RouteTable& t, Request req) {
  http::RequestHead h = req.Head();
  return t.Match(h);
}

Request Req(std::string method, std::string host, std::string path) {
  Request r;
  r.method = std::move(method);
  r.host = std::move(host);
  r.path = std::move(path);
  return r;
}

TEST(RouteTable, EmptyTableMatchesNothing) {
  RouteTable t(MakeConfig({}));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(MatchOf(t, Req("GET", "a.com", "/")), -1);
}

TEST(RouteTable, CatchAllMatchesEverything) {
  RouteTable t(MakeConfig({MakeRoute("all")}));
  EXPECT_EQ(MatchOf(t, Req("GET", "a.com", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("DELETE", "", "/x/y")), 0);
  EXPECT_EQ(MatchOf(t, Req("OPTIONS", "x", "*")), 0);
}

TEST(RouteTable, ExactPath) {
  Route r = MakeRoute("r");
  r.match.path = "/api";
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/api")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/api/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/ap")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/API")), -1);  // paths are case-sensitive
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "")), -1);
}

TEST(RouteTable, PathPrefixIsAPlainStringPrefix) {
  Route r = MakeRoute("r");
  r.match.path_prefix = "/api";
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/api")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/api/x")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/apix")), 0);  // string prefix, not segment prefix
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/ap")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/")), -1);
}

TEST(RouteTable, RegexMustMatchTheWholePath) {
  Route r = MakeRoute("r");
  r.match.path_regex = "/users/[0-9]+";
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/users/42")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/users/42/x")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/x/users/42")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/users/")), -1);
}

TEST(RouteTable, RegexEcmaScriptFeatures) {
  Route r = MakeRoute("r");
  r.match.path_regex = R"(/(a|b)/\d{2,3}/(?:x|y)?)";
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "h", "/a/12/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "h", "/b/123/y")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "h", "/c/12/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "h", "/a/1234/")), -1);
}

// Match() skips a regex whose literal prefix the path lacks; that must never change a result.
TEST(RouteTable, RegexLiteralPrefixShortcutKeepsSemantics) {
  const std::pair<const char*, std::vector<std::pair<const char*, bool>>> cases[] = {
      {"/ab?c", {{"/ac", true}, {"/abc", true}, {"/a", false}}},
      {"/ab*c", {{"/ac", true}, {"/abbc", true}}},
      {"/ab{0,2}c", {{"/ac", true}, {"/abbc", true}}},
      {"/ab+c", {{"/abc", true}, {"/ac", false}}},
      {"/a|/b", {{"/a", true}, {"/b", true}, {"/c", false}}},
      {"(/a|/b)x", {{"/bx", true}}},
      {"^/x$", {{"/x", true}, {"/xy", false}}},
      {"/a\\.b", {{"/a.b", true}, {"/axb", false}}},
      {"(?i)/ABC", {{"/abc", true}}},
      {"[/]x", {{"/x", true}}},
      {".*", {{"", true}, {"/anything", true}}},
      {"/p#x", {{"/p#x", true}}},
  };
  for (const auto& [pattern, paths] : cases) {
    Route r = MakeRoute("r");
    r.match.path_regex = pattern;
    RouteTable t(MakeConfig({r}));
    for (const auto& [path, want] : paths) {
      EXPECT_EQ(MatchOf(t, Req("GET", "h", path)), want ? 0 : -1) << pattern << " " << path;
    }
  }
}

TEST(RouteTable, RegexFailsClosedOnLongPaths) {
  Route regex = MakeRoute("regex");
  regex.match.path_regex = "/a.*";
  Route rest = MakeRoute("rest");
  RouteTable t(MakeConfig({regex, rest}));
  const std::string ok_path = Cat({"/a", std::string(RouteTable::kMaxRegexPathBytes - 2, 'x')});
  EXPECT_EQ(MatchOf(t, Req("GET", "h", ok_path)), 0);
  // Too long to evaluate: no route at all, rather than falling through to "rest".
  EXPECT_EQ(MatchOf(t, Req("GET", "h", ok_path + "x")), -1);
  // ...but only when the regex route's other matchers match.
  Route regex_post = regex;
  regex_post.match.methods = {"POST"};
  RouteTable t2(MakeConfig({regex_post, rest}));
  EXPECT_EQ(MatchOf(t2, Req("GET", "h", ok_path + "x")), 1);
}

TEST(RouteTable, CatastrophicRegexIsBoundedAndFailsClosed) {
  Route r = MakeRoute("evil");
  r.match.path_regex = "(a|aa)*c";
  Route rest = MakeRoute("rest");
  RouteTable t(MakeConfig({r, rest}));
  const std::string path(RouteTable::kMaxRegexPathBytes, 'a');
  EXPECT_EQ(MatchOf(t, Req("GET", "h", path)), -1);  // boost gives up: -1, and no crash
  EXPECT_EQ(MatchOf(t, Req("GET", "h", "aac")), 0);
}

TEST(RouteTable, Methods) {
  Route r = MakeRoute("r");
  r.match.methods = {"GET", "HEAD"};
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("HEAD", "a", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("POST", "a", "/")), -1);
  EXPECT_EQ(MatchOf(t, Req("get", "a", "/")), -1);  // methods are case-sensitive (RFC 9110)
  EXPECT_EQ(MatchOf(t, Req("GETX", "a", "/")), -1);
}

TEST(RouteTable, ExactHostsAreCaseInsensitiveWithoutPort) {
  Route r = MakeRoute("r");
  r.match.hosts = {"shop.example.com", "Other.Example.com"};
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "shop.example.com", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "SHOP.Example.COM", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "shop.example.com:8080", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "shop.example.com.", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "shop.example.com.:443", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "other.example.com", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "x.shop.example.com", "/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "example.com", "/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "", "/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", ":80", "/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", std::string(300, 'a'), "/")), -1);
}

TEST(RouteTable, WildcardHosts) {
  Route r = MakeRoute("r");
  r.match.hosts = {"*.example.com"};
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "a.example.com", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "A.B.Example.com:9", "/")), 0);  // one label or more
  EXPECT_EQ(MatchOf(t, Req("GET", "example.com", "/")), -1);       // at least one label
  EXPECT_EQ(MatchOf(t, Req("GET", ".example.com", "/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "aexample.com", "/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "a.example.com.evil", "/")), -1);
}

TEST(RouteTable, StarHostMatchesAnyHost) {
  Route r = MakeRoute("r");
  r.match.hosts = {"a.com", "*"};
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "b.com", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "", "/")), 0);
}

TEST(RouteTable, Ipv6Hosts) {
  Route r = MakeRoute("r");
  r.match.hosts = {"[::1]"};
  RouteTable t(MakeConfig({r}));
  EXPECT_EQ(MatchOf(t, Req("GET", "[::1]", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "[::1]:8080", "/")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "[::2]:8080", "/")), -1);
  EXPECT_EQ(MatchOf(t, Req("GET", "[::1", "/")), -1);
}

TEST(RouteTable, Headers) {
  Route r = MakeRoute("r");
  r.match.headers = {
      HeaderMatcher{"x-env", "canary", false},
      HeaderMatcher{"x-debug", std::nullopt, false},
      HeaderMatcher{"x-beta", "1", true},
  };
  RouteTable t(MakeConfig({r}));
  Request req = Req("GET", "a", "/");
  req.fields = {{"X-Env", "canary"}, {"x-debug", ""}};
  EXPECT_EQ(MatchOf(t, req), 0);
  req.fields = {{"x-env", "Canary"}, {"x-debug", "1"}};  // values are case-sensitive
  EXPECT_EQ(MatchOf(t, req), -1);
  req.fields = {{"x-env", "canary"}};  // x-debug missing
  EXPECT_EQ(MatchOf(t, req), -1);
  req.fields = {{"x-env", "canary"}, {"X-DEBUG", "yes"}, {"x-beta", "1"}};  // inverted
  EXPECT_EQ(MatchOf(t, req), -1);
  req.fields = {{"x-env", "canary"}, {"X-DEBUG", "yes"}, {"x-beta", "2"}};
  EXPECT_EQ(MatchOf(t, req), 0);
  // Any field of a repeated name may satisfy the matcher.
  req.fields = {{"x-env", "prod"}, {"x-env", "canary"}, {"x-debug", "1"}};
  EXPECT_EQ(MatchOf(t, req), 0);
}

TEST(RouteTable, HeaderAbsence) {
  Route r = MakeRoute("r");
  r.match.headers = {HeaderMatcher{"Authorization", std::nullopt, true}};
  RouteTable t(MakeConfig({r}));
  Request req = Req("GET", "a", "/");
  EXPECT_EQ(MatchOf(t, req), 0);
  req.fields = {{"authorization", "Bearer x"}};
  EXPECT_EQ(MatchOf(t, req), -1);
}

TEST(RouteTable, FirstMatchInConfigOrder) {
  Route health = MakeRoute("health");
  health.match.path = "/healthz";
  Route api_get = MakeRoute("api-get");
  api_get.match.path_prefix = "/api/";
  api_get.match.methods = {"GET"};
  Route api = MakeRoute("api");
  api.match.path_prefix = "/api/";
  Route shop = MakeRoute("shop");
  shop.match.hosts = {"shop.example.com"};
  Route all = MakeRoute("all");
  RouteTable t(MakeConfig({health, api_get, api, shop, all}));
  EXPECT_EQ(t.size(), 5u);
  EXPECT_EQ(MatchOf(t, Req("GET", "shop.example.com", "/healthz")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "shop.example.com", "/api/x")), 1);
  EXPECT_EQ(MatchOf(t, Req("POST", "shop.example.com", "/api/x")), 2);
  EXPECT_EQ(MatchOf(t, Req("POST", "shop.example.com", "/cart")), 3);
  EXPECT_EQ(MatchOf(t, Req("POST", "other.com", "/cart")), 4);
  // Order is config order, not specificity: a catch-all first shadows everything.
  RouteTable shadowed(MakeConfig({all, health}));
  EXPECT_EQ(MatchOf(shadowed, Req("GET", "a", "/healthz")), 0);
}

TEST(RouteTable, AllMatchersCombined) {
  Route r = MakeRoute("r");
  r.match.hosts = {"*.example.com"};
  r.match.path_regex = "/v[0-9]+/items";
  r.match.methods = {"PUT"};
  r.match.headers = {HeaderMatcher{"x-tenant", "t1", false}};
  RouteTable t(MakeConfig({r}));
  Request req = Req("PUT", "api.example.com", "/v2/items");
  req.fields = {{"X-Tenant", "t1"}};
  EXPECT_EQ(MatchOf(t, req), 0);
  for (auto mutate : std::vector<void (*)(Request&)>{
           [](Request& q) { q.host = "example.com"; },
           [](Request& q) { q.path = "/v2/item"; },
           [](Request& q) { q.method = "POST"; },
           [](Request& q) { q.fields.clear(); },
       }) {
    Request bad = req;
    mutate(bad);
    EXPECT_EQ(MatchOf(t, bad), -1);
  }
}

TEST(RouteTable, BuiltFromALoadedConfig) {
  config::LoadOptions o;
  o.resolve = [](const std::string&, std::string* e) -> std::optional<std::string> {
    *e = "no DNS in tests";
    return std::nullopt;
  };
  config::LoadResult loaded = config::LoadString(R"(
listeners: [{ listen: 127.0.0.1:18080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes:
  - { match: { host: "*.Shop.example.com", path_prefix: /api, methods: [get] }, cluster: app }
  - { match: { path_regex: "/p/[a-z]+" }, cluster: app }
  - { match: { headers: [{ name: X-Canary, present: false }] }, cluster: app }
)",
                                                 "route_test", o);
  ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
  RouteTable t(*loaded.config);
  EXPECT_EQ(MatchOf(t, Req("GET", "eu.shop.example.com:443", "/api/x")), 0);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/p/abc")), 1);
  EXPECT_EQ(MatchOf(t, Req("GET", "a", "/other")), 2);
  Request canary = Req("GET", "a", "/other");
  canary.fields = {{"x-canary", "1"}};
  EXPECT_EQ(MatchOf(t, canary), -1);
}

TEST(RouteTable, MoveKeepsRoutes) {
  Route r = MakeRoute("r");
  r.match.path = "/x";
  RouteTable a(MakeConfig({r}));
  RouteTable b(std::move(a));
  EXPECT_EQ(MatchOf(b, Req("GET", "h", "/x")), 0);
  RouteTable c(MakeConfig({}));
  c = std::move(b);
  EXPECT_EQ(MatchOf(c, Req("GET", "h", "/x")), 0);
}

// A realistic table, every kind of matcher, and requests that stop at every route.
TEST(RouteTable, MatchDoesNotAllocate) {
  std::vector<Route> routes;
  for (int i = 0; i < 8; ++i) {
    const std::string n = std::to_string(i);
    Route r = MakeRoute(Cat({"svc", n}));
    r.match.hosts = {Cat({"svc", n, ".example.com"}), "*.svc.example.org"};
    r.match.path_prefix = Cat({"/svc", n, "/"});
    r.match.methods = {"GET", "POST"};
    routes.push_back(r);
  }
  Route regex = MakeRoute("regex");
  regex.match.path_regex = "/(users|teams)/([0-9]+)/(profile|settings)";
  routes.push_back(regex);
  Route headers = MakeRoute("headers");
  headers.match.headers = {HeaderMatcher{"x-env", "canary", false},
                           HeaderMatcher{"x-debug", std::nullopt, true}};
  routes.push_back(headers);
  Route exact = MakeRoute("exact");
  exact.match.path = "/healthz";
  routes.push_back(exact);
  RouteTable t(MakeConfig(routes));

  std::vector<Request> requests = {
      Req("GET", "svc3.example.com", "/svc3/items"),
      Req("POST", "a.svc.example.org:8443", "/svc7/x"),
      Req("GET", "other.com", "/teams/42/settings"),
      Req("GET", "other.com", "/teams/42/nope"),
      Req("GET", "other.com", "/healthz"),
      Req("GET", std::string(400, 'h'), "/healthz"),
      Req("GET", "other.com", Cat({"/a", std::string(RouteTable::kMaxRegexPathBytes, 'x')})),
      Req("DELETE", "", "/nothing"),
  };
  Request canary = Req("GET", "X.COM", "/c");
  canary.fields = {{"X-Env", "canary"}, {"accept", "*/*"}};
  requests.push_back(canary);
  std::vector<http::RequestHead> heads;
  for (Request& r : requests) heads.push_back(r.Head());

  // The first regex match on a thread sizes its per-thread match buffer.
  int warm = 0;
  for (const http::RequestHead& h : heads) warm += t.Match(h);

  const uint64_t before = g_allocations.load();
  int sum = 0;
  for (int round = 0; round < 100; ++round) {
    for (const http::RequestHead& h : heads) sum += t.Match(h);
  }
  const uint64_t after = g_allocations.load();
  EXPECT_EQ(after - before, 0u) << "Match() allocated";
  EXPECT_EQ(sum, warm * 100);
  std::vector<int> got;
  for (const http::RequestHead& h : heads) got.push_back(t.Match(h));
  EXPECT_EQ(got, (std::vector<int>{3, 7, 8, -1, 10, 10, -1, -1, 9}));
}

TEST(RouteTable, ConcurrentMatch) {
  Route regex = MakeRoute("regex");
  regex.match.path_regex = "/r/[0-9]+";
  Route prefix = MakeRoute("prefix");
  prefix.match.path_prefix = "/p/";
  RouteTable t(MakeConfig({regex, prefix}));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      Request a = Req("GET", "h", "/r/123");
      Request b = Req("GET", "h", "/p/x");
      Request c = Req("GET", "h", "/r/x");
      const http::RequestHead ha = a.Head(), hb = b.Head(), hc = c.Head();
      for (int k = 0; k < 2000; ++k) {
        if (t.Match(ha) != 0 || t.Match(hb) != 1 || t.Match(hc) != -1) ++wrong;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace ficus::route
