// Sections: timeouts, limits.
#include "config/internal/reader.h"

namespace ficus::config::internal {

void Loader::ReadTimeouts(const Value& v, Timeouts* t) {
  Fields f;
  if (!ReadMap(v, {"connect", "request_head", "idle", "upstream_response", "request", "drain"},
               &f)) {
    return;
  }
  using std::chrono::hours;
  using std::chrono::minutes;
  const Duration ms1{1}, zero{0};
  struct Spec {
    const char* key;
    Duration* out;
    Duration min, max;
  };
  const Spec specs[] = {
      {"connect", &t->connect, ms1, minutes(10)},
      {"request_head", &t->request_head, ms1, minutes(10)},
      {"idle", &t->idle, ms1, hours(24)},
      {"upstream_response", &t->upstream_response, ms1, hours(24)},
      {"request", &t->request, zero, hours(24)},
      {"drain", &t->drain, zero, hours(1)},
  };
  for (const Spec& s : specs) {
    if (const Value* x = f.Get(s.key)) {
      if (auto d = DurationIn(*x, s.min, s.max)) *s.out = *d;
    }
  }
}

void Loader::ReadLimits(const Value& v, Limits* l) {
  Fields f;
  if (!ReadMap(v,
               {"max_head_bytes", "max_header_count", "max_body_bytes", "max_connections",
                "headers_with_underscores"},
               &f)) {
    return;
  }
  if (const Value* x = f.Get("headers_with_underscores")) {
    if (auto s = String(*x)) {
      if (*s == "allow") {
        l->headers_with_underscores = UnderscoreAction::kAllow;
      } else if (*s == "drop") {
        l->headers_with_underscores = UnderscoreAction::kDrop;
      } else if (*s == "reject") {
        l->headers_with_underscores = UnderscoreAction::kReject;
      } else {
        Error(*x, "unknown action " + Quote(*s) + "; known: allow, drop, reject");
      }
    }
  }
  if (const Value* x = f.Get("max_head_bytes")) {
    if (auto n = SizeIn(*x, 1024, 1 << 20)) l->max_head_bytes = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("max_header_count")) {
    // The proxy sizes per-connection header storage from this: keep it bounded.
    if (auto n = Integer(*x, 1, 1000)) l->max_header_count = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("max_body_bytes")) {
    if (auto n = SizeIn(*x, 0, 1ull << 40)) l->max_body_bytes = *n;
  }
  if (const Value* x = f.Get("max_connections")) {
    if (auto n = Integer(*x, 1, 10'000'000)) l->max_connections = static_cast<uint32_t>(*n);
  }
}

}  // namespace ficus::config::internal
