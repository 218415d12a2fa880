// The protection policies' builder and their /metrics families.
#include "policy/protect.h"

#include <algorithm>
#include <vector>

#include "base/redact.h"
#include "observe/observe.h"
#include "policy/internal/auth.h"
#include "policy/internal/concurrency.h"
#include "policy/internal/overload.h"
#include "policy/internal/rate_limit.h"

namespace ficus::policy {

using internal::AuthPolicy;
using internal::ConcurrencyPolicy;
using internal::RateLimitPolicy;

namespace {

// The running chain's policy of type P (several policies may share an Order: the overload
// guard and auth both come first).
template <class P>
const P* Previous(const BuildContext& ctx) {
  if (ctx.previous == nullptr) return nullptr;
  for (const auto& p : *ctx.previous) {
    if (auto* x = dynamic_cast<const P*>(p.get())) return x;
  }
  return nullptr;
}

}  // namespace

void BuildProtectPolicies(const BuildContext& ctx, Chain& chain) {
  const config::Route& r = ctx.route;
  if (ctx.route_index == 0) {
    // Once per snapshot: the process-wide pieces follow the new config.
    internal::OverloadMonitor::Get().Configure(ctx.config.overload);
    std::vector<std::string> fields, params;
    for (const config::Route& route : ctx.config.routes) {
      if (!route.auth || !route.auth->api_keys) continue;
      fields.push_back(route.auth->api_keys->header);
      if (!route.auth->api_keys->query.empty()) params.push_back(route.auth->api_keys->query);
    }
    SetCredentialNames(std::move(fields), std::move(params));
  }
  if (ctx.config.overload.any()) chain.push_back(std::make_unique<internal::OverloadGuard>());
  if (r.auth) chain.push_back(std::make_unique<AuthPolicy>(r, Previous<AuthPolicy>(ctx)));
  if (!r.rate_limits.empty()) {
    chain.push_back(std::make_unique<RateLimitPolicy>(r, Previous<RateLimitPolicy>(ctx)));
  }
  if (r.concurrency || ctx.config.clusters[r.cluster_index].adaptive_concurrency) {
    chain.push_back(
        std::make_unique<ConcurrencyPolicy>(ctx.config, r, Previous<ConcurrencyPolicy>(ctx)));
  }
}

namespace {

template <class Cells, class F>
uint64_t Sum(const Cells& cells, F field) {
  uint64_t n = 0;
  for (const auto& c : cells) n += (c.*field).load(std::memory_order_relaxed);
  return n;
}

template <class P>
const P* Find(const Chain& chain) {
  for (const auto& p : chain) {
    if (auto* x = dynamic_cast<const P*>(p.get())) return x;
  }
  return nullptr;
}

// The verified-token caches and the JWKS sources (one per URL, however many routes share it).
void RenderJwtMetrics(const config::Config& config, std::span<const Chain> chains,
                      observe::MetricWriter& w) {
  const size_t n = std::min(chains.size(), config.routes.size());
  std::vector<const internal::JwksSource*> sources;
  bool any_jwt = false;
  for (size_t i = 0; i < n; ++i) {
    const AuthPolicy* p = Find<AuthPolicy>(chains[i]);
    if (p == nullptr || !p->config().jwt) continue;
    any_jwt = true;
    const internal::JwksSource* s = p->jwks_source();
    if (s != nullptr && std::find(sources.begin(), sources.end(), s) == sources.end())
      sources.push_back(s);
  }
  if (any_jwt) {
    w.Family("ficus_auth_token_cache_hits_total", "counter",
             "JWTs a route accepted from a worker's verified-token cache (no signature check).");
    for (size_t i = 0; i < n; ++i) {
      const AuthPolicy* p = Find<AuthPolicy>(chains[i]);
      if (p == nullptr || !p->config().jwt) continue;
      w.Sample("ficus_auth_token_cache_hits_total", {{"route", config.routes[i].name}},
               Sum(p->counters().cells, &internal::AuthCell::token_cache_hits));
    }
  }
  if (sources.empty()) return;
  auto label = [](const internal::JwksSource* s) {
    return internal::UrlWithoutQuery(s->options().url);
  };
  w.Family("ficus_jwks_fetches_total", "counter",
           "Fetches of a JWKS URL by result: ok (a key set parsed) or failed (no answer, a "
           "non-2xx status, or a set that did not parse; the last good set is kept).");
  for (const auto* s : sources) {
    w.Sample("ficus_jwks_fetches_total", {{"url", label(s)}, {"result", "ok"}},
             s->fetched.load(std::memory_order_relaxed));
    w.Sample("ficus_jwks_fetches_total", {{"url", label(s)}, {"result", "failed"}},
             s->failed.load(std::memory_order_relaxed));
  }
  w.Family("ficus_jwks_kid_refreshes_total", "counter",
           "Early fetches of a JWKS URL asked for by a token with an unknown kid.");
  for (const auto* s : sources)
    w.Sample("ficus_jwks_kid_refreshes_total", {{"url", label(s)}},
             s->kid_refreshes.load(std::memory_order_relaxed));
  w.Family("ficus_jwks_keys", "gauge", "Keys in the current set of a JWKS URL.");
  for (const auto* s : sources)
    w.GaugeSample("ficus_jwks_keys", {{"url", label(s)}},
                  static_cast<int64_t>(s->key_count.load(std::memory_order_relaxed)));
  w.Family("ficus_jwks_last_success_timestamp_seconds", "gauge",
           "When a fetch of a JWKS URL last succeeded (unix seconds; 0: never).");
  for (const auto* s : sources)
    w.GaugeSample("ficus_jwks_last_success_timestamp_seconds", {{"url", label(s)}},
                  s->last_success_unix_s.load(std::memory_order_relaxed));
}

}  // namespace

void RenderProtectMetrics(const config::Config& config, std::span<const Chain> chains,
                          std::string& out) {
  observe::MetricWriter w(out);
  const size_t n = std::min(chains.size(), config.routes.size());
  auto each = [&](auto f) {
    for (size_t i = 0; i < n; ++i) f(config.routes[i].name, chains[i]);
  };
  bool any_rate = false, any_conc = false, any_auth = false;
  each([&](const std::string&, const Chain& c) {
    any_rate = any_rate || Find<RateLimitPolicy>(c);
    const ConcurrencyPolicy* cp = Find<ConcurrencyPolicy>(c);
    any_conc = any_conc || (cp != nullptr && cp->bulkhead() != nullptr);
    any_auth = any_auth || Find<AuthPolicy>(c);
  });
  if (config.overload.any()) {
    const internal::OverloadMonitor& m = internal::OverloadMonitor::Get();
    w.Family("ficus_overload_active", "gauge",
             "1 while the process is over an overload set point and sheds new requests.");
    w.GaugeSample("ficus_overload_active", {}, m.overloaded() ? 1 : 0);
    w.Family("ficus_overload_shed_total", "counter",
             "Requests shed (503) by the process overload guard.");
    w.Sample("ficus_overload_shed_total", {}, m.shed.load(std::memory_order_relaxed));
  }
  if (any_rate) {
    w.Family("ficus_rate_limit_requests_total", "counter",
             "Requests checked by a rate limit, by result (allowed, limited, shadow_limited).");
    each([&](const std::string& route, const Chain& c) {
      const RateLimitPolicy* p = Find<RateLimitPolicy>(c);
      if (p == nullptr) return;
      for (const auto& l : p->limits()) {
        using Cell = internal::LimitCell;
        const auto& cells = l.state->cells;
        w.Sample("ficus_rate_limit_requests_total",
                 {{"route", route}, {"limit", l.config.name}, {"result", "allowed"}},
                 Sum(cells, &Cell::allowed));
        w.Sample("ficus_rate_limit_requests_total",
                 {{"route", route}, {"limit", l.config.name}, {"result", "limited"}},
                 Sum(cells, &Cell::limited));
        w.Sample("ficus_rate_limit_requests_total",
                 {{"route", route}, {"limit", l.config.name}, {"result", "shadow_limited"}},
                 Sum(cells, &Cell::shadow_limited));
      }
    });
    w.Family("ficus_rate_limit_key_evictions_total", "counter",
             "Keys a rate limit forgot before they were idle: its table (max_keys) was full.");
    each([&](const std::string& route, const Chain& c) {
      const RateLimitPolicy* p = Find<RateLimitPolicy>(c);
      if (p == nullptr) return;
      for (const auto& l : p->limits()) {
        w.Sample("ficus_rate_limit_key_evictions_total",
                 {{"route", route}, {"limit", l.config.name}}, l.state->table.evictions());
      }
    });
  }
  std::vector<const internal::AdaptiveLimiter*> adaptive;  // one per cluster
  std::vector<std::string_view> adaptive_cluster;
  for (size_t i = 0; i < n; ++i) {
    const ConcurrencyPolicy* p = Find<ConcurrencyPolicy>(chains[i]);
    if (p == nullptr || p->adaptive() == nullptr) continue;
    if (std::find(adaptive.begin(), adaptive.end(), p->adaptive()) != adaptive.end()) continue;
    adaptive.push_back(p->adaptive());
    adaptive_cluster.push_back(config.routes[i].cluster);
  }
  if (!adaptive.empty()) {
    w.Family("ficus_adaptive_concurrency_limit", "gauge",
             "A cluster's adaptive concurrency limit as learned from latency.");
    for (size_t i = 0; i < adaptive.size(); ++i)
      w.GaugeSample("ficus_adaptive_concurrency_limit", {{"cluster", adaptive_cluster[i]}},
                    adaptive[i]->limit());
    w.Family("ficus_adaptive_concurrency_in_flight", "gauge",
             "Requests of a cluster holding an adaptive concurrency slot.");
    for (size_t i = 0; i < adaptive.size(); ++i)
      w.GaugeSample("ficus_adaptive_concurrency_in_flight", {{"cluster", adaptive_cluster[i]}},
                    adaptive[i]->in_flight());
    w.Family("ficus_adaptive_concurrency_rtt_seconds", "gauge",
             "A cluster's long-term upstream RTT, the adaptive limit's reference.");
    for (size_t i = 0; i < adaptive.size(); ++i)
      w.DoubleSample("ficus_adaptive_concurrency_rtt_seconds", {{"cluster", adaptive_cluster[i]}},
                     adaptive[i]->long_rtt_ns() / 1e9);
    w.Family("ficus_adaptive_concurrency_rejected_total", "counter",
             "Requests refused (503) by a cluster's adaptive concurrency limit, by class.");
    for (size_t i = 0; i < adaptive.size(); ++i) {
      for (int k = 0; k < 3; ++k) {
        w.Sample("ficus_adaptive_concurrency_rejected_total",
                 {{"cluster", adaptive_cluster[i]},
                  {"class", config::PriorityClassName(static_cast<config::PriorityClass>(k))}},
                 adaptive[i]->rejected[k].load(std::memory_order_relaxed));
      }
    }
  }
  if (any_conc) {
    const char* gauges[][2] = {
        {"ficus_concurrency_limit", "A route's concurrency limit (requests in flight at most)."},
        {"ficus_concurrency_in_flight", "Requests of a route holding a concurrency slot."},
        {"ficus_concurrency_queued", "Requests of a route waiting for a concurrency slot."}};
    for (int g = 0; g < 3; ++g) {
      w.Family(gauges[g][0], "gauge", gauges[g][1]);
      each([&](const std::string& route, const Chain& c) {
        const ConcurrencyPolicy* p = Find<ConcurrencyPolicy>(c);
        if (p == nullptr || p->bulkhead() == nullptr) return;
        const internal::Bulkhead& b = *p->bulkhead();
        const int64_t v = g == 0 ? b.config().max : g == 1 ? b.in_flight() : b.queued();
        w.GaugeSample(gauges[g][0], {{"route", route}}, v);
      });
    }
    w.Family("ficus_concurrency_requests_total", "counter",
             "Requests a concurrency limit decided, by priority class and result (admitted, "
             "queued, and the shed ones: no_room, timed_out, displaced).");
    each([&](const std::string& route, const Chain& c) {
      const ConcurrencyPolicy* p = Find<ConcurrencyPolicy>(c);
      if (p == nullptr || p->bulkhead() == nullptr) return;
      for (int k = 0; k < 3; ++k) {
        const auto& ct = p->bulkhead()->by_class[k];
        const char* cls = config::PriorityClassName(static_cast<config::PriorityClass>(k));
        const std::pair<const char*, const std::atomic<uint64_t>*> results[] = {
            {"admitted", &ct.admitted},
            {"queued", &ct.queued},
            {"no_room", &ct.no_room},
            {"timed_out", &ct.timed_out},
            {"displaced", &ct.displaced}};
        for (const auto& [name, v] : results) {
          w.Sample("ficus_concurrency_requests_total",
                   {{"route", route}, {"class", cls}, {"result", name}},
                   v->load(std::memory_order_relaxed));
        }
      }
    });
  }
  if (any_auth) {
    w.Family("ficus_auth_requests_total", "counter",
             "Requests an auth policy decided, by result (ok, missing, invalid, forbidden).");
    each([&](const std::string& route, const Chain& c) {
      const AuthPolicy* p = Find<AuthPolicy>(c);
      if (p == nullptr) return;
      using Cell = internal::AuthCell;
      const auto& cells = p->counters().cells;
      const std::pair<const char*, std::atomic<uint64_t> Cell::*> results[] = {
          {"ok", &Cell::ok},
          {"missing", &Cell::missing},
          {"invalid", &Cell::invalid},
          {"forbidden", &Cell::forbidden}};
      for (const auto& [name, field] : results) {
        w.Sample("ficus_auth_requests_total", {{"route", route}, {"result", name}},
                 Sum(cells, field));
      }
    });
    RenderJwtMetrics(config, chains, w);
  }
}

}  // namespace ficus::policy
