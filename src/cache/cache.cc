// The module's interface: the builder (with the store carried across reloads), the /metrics
// families and the admin purge.
#include "cache/cache.h"

#include "cache/internal/cache_policy.h"
#include "observe/observe.h"

namespace ficus::cache {

namespace {

// The cache policies of `chains`, in route order.
template <typename F>
void ForEachCache(std::span<const policy::Chain> chains, F f) {
  for (const policy::Chain& chain : chains) {
    for (const auto& p : chain) {
      if (p->order() != policy::Order::kCache) continue;
      if (const auto* c = dynamic_cast<const CachePolicy*>(p.get())) f(*c);
    }
  }
}

}  // namespace

bool SharedCacheMayReuse(const http::RequestHead& request, const http::ResponseHead& response) {
  const CacheControl cc = ResponseDirectives(response.headers);
  if (cc.no_cache) return false;  // storable, but every reuse asks the origin first
  // A HEAD is judged as the GET it stands for; the route's ttl stands in for a heuristic.
  http::RequestHead get = request;
  get.method = http::Method::kGet;
  const Rules rules{.default_ttl_s = 1, .force_ttl = false, .max_heuristic_s = 86400};
  return Storable(get, CacheControl{}, response.status, response.headers, cc, rules) ==
         Verdict::kStorable;
}

void BuildPolicies(const policy::BuildContext& ctx, policy::Chain& chain) {
  if (!ctx.route.cache) return;
  const config::Cache& config = *ctx.route.cache;
  std::shared_ptr<Store> store;
  if (const auto* prev = dynamic_cast<const CachePolicy*>(ctx.Previous(policy::Order::kCache))) {
    // Same bounds and the same keys: the stored responses stay valid. (Freshness settings may
    // change: they are read per request or were fixed when each response was stored.)
    const config::Cache& old = prev->config();
    if (old.max_size == config.max_size && old.max_object_size == config.max_object_size &&
        old.query_sort == config.query_sort && old.query_ignore == config.query_ignore) {
      store = prev->store();
    }
  }
  if (!store) store = std::make_shared<Store>(config.max_size, config.max_object_size);
  chain.push_back(std::make_unique<CachePolicy>(ctx.route.name, config, std::move(store)));
}

void RenderMetrics(std::span<const policy::Chain> chains, std::string& out) {
  std::vector<const CachePolicy*> caches;
  ForEachCache(chains, [&caches](const CachePolicy& c) { caches.push_back(&c); });
  if (caches.empty()) return;
  observe::MetricWriter w(out);
  auto counter = [&](const char* name, const char* help, std::atomic<uint64_t> Stats::*field) {
    w.Family(name, "counter", help);
    for (const CachePolicy* c : caches) {
      w.Sample(name, {{"route", c->route()}},
               (c->store()->stats().*field).load(std::memory_order_relaxed));
    }
  };
  counter("ficus_cache_hits_total", "Requests answered from the cache while fresh", &Stats::hits);
  counter("ficus_cache_misses_total", "Requests forwarded: nothing usable was stored",
          &Stats::misses);
  counter("ficus_cache_stale_total",
          "Requests answered with a stale stored response (stale-while-revalidate, "
          "stale-if-error)",
          &Stats::stale);
  counter("ficus_cache_revalidated_total", "Stored responses refreshed by a 304",
          &Stats::revalidated);
  counter("ficus_cache_stale_if_error_total",
          "Requests answered with a stale stored response in place of an upstream error (also "
          "in ficus_cache_stale_total and ficus_cache_misses_total)",
          &Stats::stale_errors);
  counter("ficus_cache_coalesced_total",
          "Requests that waited for another request's fill and were answered from it",
          &Stats::coalesced);
  counter("ficus_cache_coalesce_timeouts_total",
          "Requests that stopped waiting for another request's fill after coalesce_timeout and "
          "went to the upstream themselves",
          &Stats::coalesce_timeouts);
  counter("ficus_cache_bypassed_total",
          "Responses not stored (method, directives, status, size) and unsafe requests",
          &Stats::bypassed);
  counter("ficus_cache_stored_total", "Responses stored", &Stats::stored);
  counter("ficus_cache_evictions_total", "Stored responses evicted to stay within max_size",
          &Stats::evictions);
  counter("ficus_cache_invalidated_total",
          "Stored responses invalidated by unsafe requests (RFC 9111 4.4)", &Stats::invalidated);
  counter("ficus_cache_purged_total", "Stored responses removed by admin purges", &Stats::purged);
  auto gauge = [&](const char* name, const char* help, std::atomic<int64_t> Stats::*field) {
    w.Family(name, "gauge", help);
    for (const CachePolicy* c : caches) {
      w.GaugeSample(name, {{"route", c->route()}},
                    (c->store()->stats().*field).load(std::memory_order_relaxed));
    }
  };
  gauge("ficus_cache_bytes", "Bytes stored (bodies, fields and bookkeeping)", &Stats::bytes);
  gauge("ficus_cache_objects", "Responses stored", &Stats::objects);
}

std::vector<RouteCounters> Counters(std::span<const policy::Chain> chains) {
  std::vector<RouteCounters> out;
  ForEachCache(chains, [&out](const CachePolicy& c) {
    const Stats& s = c.store()->stats();
    auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    out.push_back({c.route(), get(s.hits), get(s.misses), get(s.stale), get(s.stale_errors),
                   get(s.revalidated), get(s.coalesced), get(s.bypassed)});
  });
  return out;
}

size_t Purge(std::span<const policy::Chain> chains, const PurgeRequest& request) {
  size_t n = 0;
  std::vector<Store*> done;  // two routes may share nothing, but be safe about duplicates
  ForEachCache(chains, [&](const CachePolicy& c) {
    if (!request.route.empty() && request.route != c.route()) return;
    Store* s = c.store().get();
    for (Store* d : done) {
      if (d == s) return;
    }
    done.push_back(s);
    switch (request.kind) {
      case PurgeRequest::Kind::kKey: {
        // The URL's key as this route computes keys (query normalisation).
        std::string_view url = request.value;
        std::string_view host = url.starts_with("http://") ? url.substr(7) : std::string_view();
        host = host.substr(0, host.find('/'));
        std::string key;
        if (!LocationKey(host, url, c.key_rules(), key)) return;
        const size_t k = s->Invalidate(key);
        s->stats().purged.fetch_add(k, std::memory_order_relaxed);
        n += k;
        break;
      }
      case PurgeRequest::Kind::kPrefix:
        n += s->PurgePrefix(request.value);
        break;
      case PurgeRequest::Kind::kTag:
        n += s->PurgeTag(request.value);
        break;
      case PurgeRequest::Kind::kAll:
        n += s->PurgeAll();
        break;
    }
  });
  return n;
}

}  // namespace ficus::cache
