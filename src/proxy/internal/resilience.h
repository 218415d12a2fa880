// Request-side helpers of upstream resilience (issue 3), pure functions over a parsed request
// so that they are unit-tested alone: retry eligibility and back-off, the hash key of
// ring_hash/maglev, and the affinity cookie. No allocation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "config/config.h"
#include "http/http.h"

namespace ficus::proxy {

// A request may be sent again: an idempotent method (RFC 9110 9.2.2), or an Idempotency-Key
// field (the client vouches for it).
bool MayRetry(const http::RequestHead& head);

// Whether a failed upstream connect says the endpoint is down (refused, unreachable, timed
// out) rather than that this process ran short (descriptors, memory, local ports).
bool ConnectErrorMarksEndpoint(const std::error_code& ec);

// The back-off before retry `retry` (1 = the first retry): d = min(max, base x 2^(retry-1)),
// then a random point of [d/2, d] chosen by `random` (uniform 64-bit), in milliseconds.
int64_t BackoffMs(const config::RetryPolicy& policy, uint32_t retry, uint64_t random);

// The value of cookie `name` in the request's Cookie fields ("a=1; b=2"), or empty.
std::string_view CookieValue(const http::RequestHead& head, std::string_view name);
// The raw (not percent-decoded) value of query parameter `name` ("a=1&b=2"), or empty.
std::string_view QueryValue(std::string_view query, std::string_view name);
// The value of the first field `name` (case-insensitive), or empty.
std::string_view FieldValue(const http::RequestHead& head, std::string_view name);

// upstream::HashKey of the request's key for ring_hash/maglev; 0 when the key is absent (the
// balancer then picks at random).
uint64_t RequestHash(const http::RequestHead& head, const config::HashKey& key,
                     std::string_view client_ip);

// Inserts "Set-Cookie: NAME=VALUE; Path=/; HttpOnly[; Max-Age=N]" before the empty line that
// ends `head` (a serialized response head).
void AddAffinityCookie(const config::Affinity& affinity, std::string_view value, std::string& head);

}  // namespace ficus::proxy
