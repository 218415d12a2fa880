// RouteTable::Match cost on a 20-route table shaped like a real gateway config: host-scoped
// API routes, prefixes, method filters, a header-gated canary, two regexes and a catch-all.
// Cases: a hit on the first route, hits deep in the table, a regex hit, and a miss (-1).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "route/route.h"

namespace {

using namespace ficus;

config::Route R(std::string name) {
  config::Route r;
  r.name = std::move(name);
  r.cluster = std::string(1, 'c');
  return r;
}

config::Config TwentyRoutes(bool with_catch_all) {
  std::vector<config::Route> routes;
  {
    config::Route r = R("health");
    r.match.path = "/healthz";
    r.match.methods = {"GET", "HEAD"};
    routes.push_back(r);
  }
  {
    config::Route r = R("canary");
    r.match.hosts = {"shop.example.com"};
    r.match.path_prefix = "/api/";
    r.match.headers = {{"x-env", std::string("canary"), false}};
    routes.push_back(r);
  }
  const char* services[] = {"users",   "orders",    "cart",     "search", "payments", "catalog",
                            "reviews", "inventory", "shipping", "auth",   "media",    "reports"};
  for (const char* s : services) {
    config::Route r = R(s);
    r.match.hosts = {"api.example.com", "*.api.example.com"};
    r.match.path_prefix = std::string("/v1/").append(s).append("/");
    r.match.methods = {"GET", "POST", "PUT", "DELETE"};
    routes.push_back(r);
  }
  {
    config::Route r = R("product-id");
    r.match.path_regex = "/products/[0-9]+(/reviews)?";
    routes.push_back(r);
  }
  {
    config::Route r = R("legacy");
    r.match.hosts = {"legacy.example.com"};
    routes.push_back(r);
  }
  {
    config::Route r = R("static");
    r.match.path_prefix = "/static/";
    r.match.methods = {"GET", "HEAD"};
    routes.push_back(r);
  }
  {
    config::Route r = R("user-page");
    r.match.path_regex = "/u/[a-z0-9_-]{1,32}";
    routes.push_back(r);
  }
  {
    config::Route r = R("admin");
    r.match.path_prefix = "/admin/";
    r.match.headers = {{"authorization", std::nullopt, false}};
    routes.push_back(r);
  }
  {
    config::Route r = R("all");
    if (!with_catch_all) r.match.hosts = {"www.example.com"};
    routes.push_back(r);
  }
  config::Config c;
  c.routes = std::move(routes);
  return c;
}

struct Req {
  std::string method, host, path;
  std::vector<http::Header> fields;
};

void Run(benchmark::State& state, const Req& req, int want, bool catch_all = true) {
  route::RouteTable table(TwentyRoutes(catch_all));
  std::vector<http::Header> fields = req.fields;
  http::RequestHead head;
  head.method_text = req.method;
  head.host = req.host;
  head.path = req.path;
  head.target = req.path;
  head.headers = std::span<http::Header>(fields.data(), fields.size());
  if (table.size() != 20 || table.Match(head) != want) {
    state.SkipWithError("unexpected match");
    return;
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(table.Match(head));
  }
}

const std::vector<http::Header> kBrowserFields = {
    {"Accept", "text/html,application/xhtml+xml", http::HeaderRole::kOther},
    {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)", http::HeaderRole::kOther},
    {"Accept-Encoding", "gzip, br", http::HeaderRole::kOther},
    {"Cookie", "session=abc123", http::HeaderRole::kOther},
};

void BM_FirstRoute(benchmark::State& s) { Run(s, {"GET", "shop.example.com", "/healthz", {}}, 0); }
void BM_PrefixMidTable(benchmark::State& s) {
  Run(s, {"POST", "eu.api.example.com:443", "/v1/payments/charge", kBrowserFields}, 6);
}
void BM_PrefixLastService(benchmark::State& s) {
  Run(s, {"GET", "API.example.com", "/v1/reports/daily", kBrowserFields}, 13);
}
void BM_RegexHit(benchmark::State& s) {
  Run(s, {"GET", "shop.example.com", "/products/12345/reviews", kBrowserFields}, 14);
}
void BM_CatchAll(benchmark::State& s) {
  Run(s, {"GET", "www.example.com", "/about/team", kBrowserFields}, 19);
}
void BM_NoMatch(benchmark::State& s) {
  Run(s, {"GET", "other.example.net", "/nothing/here", kBrowserFields}, -1, false);
}

BENCHMARK(BM_FirstRoute);
BENCHMARK(BM_PrefixMidTable);
BENCHMARK(BM_PrefixLastService);
BENCHMARK(BM_RegexHit);
BENCHMARK(BM_CatchAll);
BENCHMARK(BM_NoMatch);

}  // namespace
