// Section: a route's cache: (config::Cache, the cache module's policy).
#include "config/internal/reader.h"

namespace ficus::config::internal {

void Loader::ReadCache(const Value& v, std::optional<Cache>* out) {
  Fields f;
  if (!ReadMap(v,
               {"ttl", "stale_while_revalidate", "stale_if_error", "max_size", "max_object_size",
                "query_sort", "query_ignore", "force_ttl", "coalesce_timeout"},
               &f)) {
    return;
  }
  Cache c;
  bool ok = true;
  auto duration = [&](std::string_view key, Duration* d) {
    if (const Value* p = f.Get(key)) {
      if (auto x = DurationIn(*p, Duration{0}, std::chrono::hours(24 * 365)))
        *d = *x;
      else
        ok = false;
    }
  };
  duration("ttl", &c.ttl);
  duration("stale_while_revalidate", &c.stale_while_revalidate);
  duration("stale_if_error", &c.stale_if_error);
  duration("coalesce_timeout", &c.coalesce_timeout);
  if (const Value* p = f.Get("max_size")) {
    if (auto n = SizeIn(*p, 64 * 1024, 1ull << 40))
      c.max_size = *n;
    else
      ok = false;
  }
  if (const Value* p = f.Get("max_object_size")) {
    if (auto n = SizeIn(*p, 1, 1ull << 32))
      c.max_object_size = *n;
    else
      ok = false;
  }
  if (ok && c.max_object_size > c.max_size / 16) {
    // The store is sharded 16 ways: an object must fit one shard.
    Error(f.Get("max_object_size") ? *f.Get("max_object_size") : v,
          "must be at most max_size / 16 (" + FormatSize(c.max_size / 16) + ")");
    ok = false;
  }
  if (const Value* p = f.Get("query_sort")) {
    if (auto b = Bool(*p))
      c.query_sort = *b;
    else
      ok = false;
  }
  if (const Value* p = f.Get("force_ttl")) {
    if (auto b = Bool(*p))
      c.force_ttl = *b;
    else
      ok = false;
  }
  if (c.force_ttl && c.ttl.count() == 0) {
    Error(*f.Get("force_ttl"), "force_ttl needs a ttl above 0");
    ok = false;
  }
  if (const Value* p = f.Get("query_ignore")) {
    if (ExpectList(*p)) {
      size_t i = 0;
      for (auto it = p->node.begin(); it != p->node.end(); ++it, ++i) {
        const Value item = Item(*p, *it, i);
        auto s = String(item);
        if (s && (s->empty() || s->find_first_of("&=# ") != std::string::npos)) {
          Error(item, "expected a query parameter name, got " + Quote(*s));
          ok = false;
        } else if (s) {
          c.query_ignore.push_back(*s);
        }
      }
    } else {
      ok = false;
    }
  }
  if (ok) *out = std::move(c);
}

}  // namespace ficus::config::internal
