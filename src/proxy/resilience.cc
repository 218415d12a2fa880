#include "proxy/internal/resilience.h"

#include <algorithm>
#include <cerrno>

#include "upstream/upstream.h"

namespace ficus::proxy {

bool MayRetry(const http::RequestHead& head) {
  return http::IsIdempotent(head.method) || !FieldValue(head, "idempotency-key").empty();
}

bool ConnectErrorMarksEndpoint(const std::error_code& ec) {
  if (ec.category() != std::generic_category() && ec.category() != std::system_category()) {
    return true;
  }
  switch (ec.value()) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
    case EADDRNOTAVAIL:  // no local port left
      return false;
    default:
      return true;
  }
}

int64_t BackoffMs(const config::RetryPolicy& policy, uint32_t retry, uint64_t random) {
  const int64_t base = policy.backoff_base.count();
  const int64_t max = policy.backoff_max.count();
  int64_t d = base;
  for (uint32_t i = 1; i < retry && d < max; ++i) d *= 2;
  d = std::min(d, max);
  if (d <= 0) return 0;
  const int64_t half = d / 2;
  return half + static_cast<int64_t>(random % static_cast<uint64_t>(d - half + 1));
}

std::string_view FieldValue(const http::RequestHead& head, std::string_view name) {
  for (const http::Header& h : head.headers) {
    if (http::EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

std::string_view CookieValue(const http::RequestHead& head, std::string_view name) {
  for (const http::Header& h : head.headers) {
    if (!http::EqualsIgnoreCase(h.name, "cookie")) continue;
    std::string_view v = http::CookieValue(h.value, name);
    if (!v.empty()) return v;
  }
  return {};
}

std::string_view QueryValue(std::string_view query, std::string_view name) {
  return http::QueryValue(query, name);
}

uint64_t RequestHash(const http::RequestHead& head, const config::HashKey& key,
                     std::string_view client_ip) {
  std::string_view value;
  switch (key.kind) {
    case config::HashKey::Kind::kNone:
      return 0;
    case config::HashKey::Kind::kHeader:
      value = FieldValue(head, key.name);
      break;
    case config::HashKey::Kind::kCookie:
      value = CookieValue(head, key.name);
      break;
    case config::HashKey::Kind::kQuery:
      value = QueryValue(head.query, key.name);
      break;
    case config::HashKey::Kind::kClientAddress:
      value = client_ip;
      break;
  }
  return value.empty() ? 0 : upstream::HashKey(value);
}

void AddAffinityCookie(const config::Affinity& affinity, std::string_view value,
                       std::string& head) {
  if (head.size() < 2) return;
  head.resize(head.size() - 2);  // the empty line goes back after the new field
  head.append("Set-Cookie: ");
  head.append(affinity.cookie);
  head.push_back('=');
  head.append(value);
  head.append("; Path=/; HttpOnly");
  if (affinity.ttl.count() > 0) {
    head.append("; Max-Age=");
    head.append(std::to_string(affinity.ttl.count() / 1000));
  }
  head.append("\r\n\r\n");
}

}  // namespace ficus::proxy
