// ficus::config — the YAML config, validated into an immutable snapshot.
// A Config is never mutated after loading; workers read it through shared_ptr<const Config>
// and a reload builds a whole new one (or changes nothing and reports why).
// Every struct here compares with a defaulted operator==: the reload diff (server/config_diff.cc)
// is computed from it, so a field added to any of them takes part without more code.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/postgres.h"  // the `postgres:` section

namespace ficus::config {

using Duration = std::chrono::milliseconds;

struct Endpoint {
  std::string host;  // IPv4/IPv6 literal or a DNS name (resolved at load time)
  uint16_t port = 0;
  uint32_t weight = 1;   // 1..1000
  std::string hostname;  // the DNS name `host` was resolved from at load; empty for a literal
  std::string Address() const;  // "host:port" ("[v6]:port" for IPv6)
  bool operator==(const Endpoint&) const = default;
};

struct Pool {
  uint32_t max_idle = 1024;     // idle keep-alive connections kept per endpoint per worker
  Duration idle_timeout{4000};  // shorter than common upstream keep-alive (Node.js: 5 s)
  bool operator==(const Pool&) const = default;
};

// Upstream resilience settings of a cluster. Each is off unless configured.
struct RetryPolicy {
  uint32_t max_tries = 1;  // tries in total, the first included; 1 = no retries
  bool on_connect_failure = false;
  bool on_reset = false;            // the upstream closed or reset before a response head
  bool on_timeout = false;          // per_try_timeout (or upstream_response) passed before a head
  std::vector<uint16_t> on_status;  // 500..599: retried instead of relayed (not on the last try)
  Duration per_try_timeout{0};      // connect to response head, per try; 0 = none
  Duration backoff_base{25};  // before retry k: random in [d/2, d], d = min(max, base*2^(k-1))
  Duration backoff_max{250};
  // Retry budget (per worker): over the last budget_window, retries <= budget_ratio x
  // requests + budget_min_per_second x the window's seconds (upstream/internal/retry_budget.h).
  double budget_ratio = 0.2;
  uint32_t budget_min_per_second = 10;
  Duration budget_window{10000};
  bool enabled() const { return max_tries > 1; }
  bool operator==(const RetryPolicy&) const = default;
};

struct OutlierDetection {
  bool enabled = false;
  uint32_t consecutive_5xx = 5;               // 5xx responses and gateway failures in a row
  uint32_t consecutive_gateway_failures = 3;  // connect failures, resets, timeouts in a row
  Duration base_ejection_time{30000};         // the n-th ejection lasts n x this ...
  Duration max_ejection_time{300000};         // ... up to this
  uint32_t max_ejection_percent = 10;         // of the cluster's endpoints (at least one)
  bool operator==(const OutlierDetection&) const = default;
};

struct HealthCheck {
  bool enabled = false;
  std::string path = "/";
  std::string host;  // Host header; empty = the endpoint's address
  Duration interval{5000};
  Duration jitter{0};  // each wait is interval + random in [0, jitter]
  Duration timeout{1000};
  std::vector<std::pair<uint16_t, uint16_t>> expected_statuses = {{200, 399}};  // inclusive
  uint32_t healthy_threshold = 2;    // passes in a row to become healthy
  uint32_t unhealthy_threshold = 3;  // failures in a row to become unhealthy
  bool operator==(const HealthCheck&) const = default;
};

// `adaptive_concurrency:` on a cluster: a limit on its requests in flight learned from latency
// (src/policy/protect.h; gradient2-like: the sampled RTT against a long-term RTT).
struct AdaptiveConcurrency {
  uint32_t min_limit = 4;
  uint32_t max_limit = 1000;
  uint32_t initial_limit = 32;
  Duration window{100};    // the limit is recomputed this often (from the samples of the window)
  double tolerance = 1.5;  // sampled RTT / long-term RTT allowed before the limit shrinks
  bool operator==(const AdaptiveConcurrency&) const = default;
};

struct CircuitBreakers {         // 0 = no limit
  uint32_t max_connections = 0;  // upstream connections open (in use and idle), all workers
  uint32_t max_pending = 0;      // requests waiting for a new upstream connection
  uint32_t max_requests = 0;     // requests in flight to the cluster
  uint32_t max_retries = 0;      // retries in flight
  bool any() const { return max_connections || max_pending || max_requests || max_retries; }
  bool operator==(const CircuitBreakers&) const = default;
};

// What ring_hash/maglev hash. Exactly one kind when the balancer is a hashing one.
struct HashKey {
  enum class Kind : uint8_t { kNone, kHeader, kCookie, kQuery, kClientAddress };
  Kind kind = Kind::kNone;
  std::string name;  // header (lower-cased), cookie or query parameter name
  bool operator==(const HashKey&) const = default;
};

struct Affinity {
  std::string cookie;  // empty = no session affinity
  Duration ttl{0};     // Max-Age of the cookie; 0 = a session cookie
  bool operator==(const Affinity&) const = default;
};

struct Cluster {
  std::string name;
  std::vector<Endpoint> endpoints;  // at least one
  std::string load_balancer = "round_robin";
  Duration connect_timeout{2000};  // resolved: Timeouts::connect when the cluster sets none
  Pool pool;
  RetryPolicy retry;
  OutlierDetection outlier_detection;
  HealthCheck health_check;
  CircuitBreakers circuit_breakers;
  HashKey hash_key;
  Affinity affinity;
  // Below this percentage of available (healthy, not ejected) endpoints, all are used.
  uint32_t panic_threshold = 50;
  Duration dns_refresh{0};  // re-resolve endpoints given as DNS names this often; 0 = never
  std::optional<AdaptiveConcurrency> adaptive_concurrency;  // unset = no adaptive limit
  int line = 0;                                             // where it was declared, for messages
  bool operator==(const Cluster&) const = default;
};

struct HeaderMatcher {
  std::string name;                  // case-insensitive (lower-cased at load)
  std::optional<std::string> exact;  // value must equal this; unset = header must be present
  bool invert = false;               // match when the condition is false
  bool operator==(const HeaderMatcher&) const = default;
};

struct RouteMatch {
  std::vector<std::string> hosts;    // lower-case names, "*.example.com", "[v6]", "*"; empty = any
  std::string path;                  // exact path
  std::string path_prefix;           // prefix (at most one of path/path_prefix/path_regex set)
  std::string path_regex;            // ECMAScript (boost::regex), must match the whole path
  std::vector<std::string> methods;  // upper-case; empty = any
  std::vector<HeaderMatcher> headers;
  bool operator==(const RouteMatch&) const = default;
};

// `record:` on a route: capture its requests to a JSON Lines file (`ficus replay` reads it).
struct Record {
  std::string path;                     // capture file, appended to
  double sample = 1.0;                  // share of requests recorded, 0..1
  uint64_t max_body_bytes = 64 * 1024;  // body bytes kept per request (the rest is counted)
  std::vector<std::string> redact_headers = {"authorization", "cookie"};  // lower-case
  bool operator==(const Record&) const = default;
};

// --- Protection policies of a route (src/policy/protect.h; docs/config.md, "Protecting a route").

// `rate_limit:` (one map, or a list of named ones): a GCRA limit of `count` per `period` with a
// burst of `burst`, per key. A request must pass every limit of its route.
struct RateLimit {
  std::string name = "default";  // the RateLimit-Policy item; unique within the route
  // The key's parts, combined: "client_ip", "route", "consumer", "header:<name>" (lower-case),
  // "query:<name>", "jwt_claim:<name>".
  std::vector<std::string> key = {"client_ip"};
  uint32_t ipv4_prefix = 32;  // client_ip: the address masked to this many bits
  uint32_t ipv6_prefix = 128;
  uint64_t count = 0;  // rate: count per period
  Duration period{1000};
  uint64_t burst = 0;           // requests allowed at once; resolved to `count` when not given
  bool shadow = false;          // count and log what would be limited, limit nothing
  bool headers = false;         // allowed responses carry the RateLimit field too
  uint64_t max_keys = 1 << 20;  // keys tracked at once (16 B each, idle keys evicted first)
  int line = 0;
  bool operator==(const RateLimit&) const = default;
};

// `concurrency:`: a bulkhead of at most `max` requests of the route in flight, a wait queue of
// `queue` with `queue_timeout`. Below `max` every class is admitted; at it, priority classes
// decide who waits first and who is shed first (sheddable).
enum class PriorityClass : uint8_t { kCritical, kDefault, kSheddable };
struct ConcurrencyLimit {
  uint32_t max = 0;
  uint32_t queue = 0;
  Duration queue_timeout{1000};
  std::string class_header;  // lower-case; a request's class from this field ("critical", ...)
  PriorityClass default_class = PriorityClass::kDefault;
  int line = 0;
  bool operator==(const ConcurrencyLimit&) const = default;
};
// "critical", "default", "sheddable".
const char* PriorityClassName(PriorityClass c);

// `auth:` API keys and/or JWTs; the consumer a credential maps to may be listed in `consumers`
// (empty: any authenticated consumer).
struct ApiKeyAuth {
  std::string header = "x-api-key";  // lower-case; where the key is sent
  std::string query;                 // also accepted in this query parameter (empty: not)
  std::string file;                  // "<consumer> <key>" lines (or "<consumer> sha256:<hex>")
  // Inline: consumer -> the key's SHA-256, hex (secrets are hashed at load, never kept).
  std::vector<std::pair<std::string, std::string>> keys;
  bool operator==(const ApiKeyAuth&) const = default;
};
struct JwtAuth {
  // The key set, exactly one of: a file (read at every load and reload) or an http(s) URL
  // (fetched by a background thread, never a worker; a failed fetch keeps the last good set).
  std::string jwks_file;
  std::string jwks_url;
  std::string jwks_ca_file;       // https: CAs to trust instead of the system store
  Duration jwks_refresh{300000};  // fetch again after this long
  // A token with an unknown kid (a key rotation) fetches early, at most this often.
  Duration jwks_min_refresh{10000};
  Duration jwks_timeout{5000};  // one fetch, connect to last byte
  // Verified tokens each worker remembers (until their exp), so a repeated token is not
  // verified again; 0 turns the cache off.
  uint32_t token_cache = 4096;
  std::string issuer;                  // empty: not checked
  std::vector<std::string> audiences;  // empty: not checked; else `aud` must name one
  std::vector<std::string> algorithms = {"RS256", "ES256", "HS256"};
  Duration leeway{30000};
  std::string consumer_claim = "sub";
  bool operator==(const JwtAuth&) const = default;
};
struct Auth {
  std::optional<ApiKeyAuth> api_keys;
  std::optional<JwtAuth> jwt;
  std::vector<std::string> consumers;  // allowed consumers; empty = any authenticated one
  int line = 0;
  bool operator==(const Auth&) const = default;
};

// `cache:` on a route: an RFC 9111 shared cache in front of its cluster (src/cache/).
struct Cache {
  Duration ttl{0};  // freshness of responses that carry none of their own; 0 = none
  Duration stale_while_revalidate{0};     // served stale while one request refreshes it
  Duration stale_if_error{0};             // served stale when the upstream fails
  uint64_t max_size = 64ull << 20;        // bytes of the route's store
  uint64_t max_object_size = 1ull << 20;  // larger responses pass through uncached
  bool query_sort = false;                // sort query parameters in the key
  std::vector<std::string> query_ignore;  // query parameters left out of the key
  bool force_ttl = false;  // ttl wins over no-store, private and the upstream's own freshness
  // How long a request waits for another request's fill of the same key before it goes to the
  // upstream itself; 0 = until the fill ends (bounded by the request's own deadline).
  Duration coalesce_timeout{std::chrono::seconds(5)};
  bool operator==(const Cache&) const = default;
};

// `compress:` on a route: responses encoded with gzip, brotli or zstd as the client's
// Accept-Encoding prefers (the compress module's policy).
struct Compress {
  std::vector<std::string> codings = {"zstd", "br", "gzip"};  // offered; ties go in this order
  // Media types compressed ("text/*" allowed).
  std::vector<std::string> types = {"text/html",
                                    "text/plain",
                                    "text/css",
                                    "text/javascript",
                                    "text/xml",
                                    "text/csv",
                                    "text/markdown",
                                    "application/json",
                                    "application/javascript",
                                    "application/xml",
                                    "application/xhtml+xml",
                                    "application/rss+xml",
                                    "application/atom+xml",
                                    "application/ld+json",
                                    "application/problem+json",
                                    "application/manifest+json",
                                    "application/wasm",
                                    "image/svg+xml"};
  uint64_t min_size = 1024;  // bodies of a known smaller length are sent as they are
  int gzip_level = 6;        // 1..9
  int brotli_level = 4;      // 0..11
  int zstd_level = 3;        // 1..19
  bool operator==(const Compress&) const = default;
};

// `offload:` on a route: the request becomes a durable job of `queue` answered 202 Accepted
// (the queue module; docs/config.md `queues[]`).
struct Offload {
  std::string queue;
  uint32_t max_attempts = 5;  // deliveries tried before the job is dead-lettered, 1..100
  bool operator==(const Offload&) const = default;
};

// `jobs:` on a route: GET <the queue's jobs_path>/<id> answers the job's state and result.
struct JobsApi {
  std::string queue;
  bool operator==(const JobsApi&) const = default;
};

struct Route {
  std::string name;  // from config, or "route-<index>" when not given
  RouteMatch match;
  std::string cluster;
  size_t cluster_index = 0;                  // resolved at validation: index into Config::clusters
  std::optional<Duration> timeout;           // request deadline; 0 = none; unset = Timeouts
  std::optional<Duration> upstream_timeout;  // unset = Timeouts::upstream_response
  std::optional<Record> record;              // unset = not recorded
  std::vector<RateLimit> rate_limits;        // protection (src/policy/protect.h)
  std::optional<ConcurrencyLimit> concurrency;
  std::optional<Auth> auth;
  std::optional<Cache> cache;        // unset = not cached
  std::optional<Compress> compress;  // unset = responses relayed as the upstream encoded them
  std::optional<Offload> offload;    // unset = forwarded as usual
  std::optional<JobsApi> jobs;       // unset = no job URL served here
  int line = 0;
  bool operator==(const Route&) const = default;
};

// What a listener speaks: HTTP (the proxy module) or the PostgreSQL wire protocol (src/pg).
enum class ListenerKind : uint8_t { kHttp, kPostgres };

struct Listener {
  std::string name;
  std::string address = "0.0.0.0";  // IP literal (canonical form, IPv6 without brackets)
  uint16_t port = 0;
  ListenerKind kind = ListenerKind::kHttp;
  std::string Address() const;  // "host:port" ("[v6]:port" for IPv6)
  bool operator==(const Listener&) const = default;
};

struct Timeouts {
  Duration connect{2000};             // upstream connect (cluster may override)
  Duration request_head{10000};       // whole request head must arrive within this (else 408)
  Duration idle{60000};               // keep-alive idle between requests
  Duration upstream_response{30000};  // from request sent to upstream response head
  Duration request{0};                // total request deadline; 0 = none
  Duration drain{15000};              // graceful shutdown: max wait for in-flight requests
  bool operator==(const Timeouts&) const = default;
};

// What to do with a request field whose name contains '_' (http::DropUnderscoreFields says why).
enum class UnderscoreAction : uint8_t { kAllow, kDrop, kReject };

struct Limits {
  uint32_t max_head_bytes = 64 * 1024;
  uint32_t max_header_count = 100;       // 1..1000
  uint64_t max_body_bytes = 1ull << 30;  // per request body; 0 = unlimited
  uint32_t max_connections = 10000;      // downstream connections, whole process
  UnderscoreAction headers_with_underscores = UnderscoreAction::kDrop;  // as nginx
  bool operator==(const Limits&) const = default;
};
// "allow", "drop", "reject".
const char* UnderscoreActionName(UnderscoreAction a);

struct Admin {
  std::string address = "127.0.0.1";
  uint16_t port = 9901;
  std::string token;  // secret: never logged; redacted in /config
  // On an address that is not loopback, reads need the token too, except these paths
  // ("/metrics", "/live", "/ready": for scrapers and probes). Loopback: everything is readable.
  std::vector<std::string> public_paths;
  std::string Address() const;  // "host:port" ("[v6]:port" for IPv6)
  bool IsLoopback() const;      // 127.0.0.0/8 or ::1
  bool operator==(const Admin&) const = default;
};

// The telemetry store in data_dir (rollups, events, error samples, audit).
struct Telemetry {
  uint64_t max_size = 256ull << 20;       // database + WAL bound, bytes; pruning keeps under it
  uint32_t error_samples_per_route = 20;  // the newest 5xx samples kept per route
  Duration slo_interval{10'000};          // how often the SLOs are evaluated (GET /slo, webhooks)
  // 1 in N routed requests (per worker) has its GET/HEAD 200 response body hashed for the
  // report's cacheability (repeats per request key); 0 = off.
  uint32_t repeat_sample = 32;
  bool operator==(const Telemetry&) const = default;
};

// A webhook target (`slos[].webhooks[]`): HTTP/1.1, over TLS for https URLs, parsed at load.
struct Webhook {
  std::string url;      // as written (after ${VAR} substitution)
  std::string host;     // IP literal (without brackets) or a DNS name, resolved when sending
  uint16_t port = 80;   // 1..65535 (443 by default for https)
  std::string target;   // origin-form request target: "/path?query", "/" when the URL has none
  bool https = false;   // TLS; the certificate and host name are always verified
  std::string ca_file;  // `slos[].ca_file`: CAs to trust instead of the system store
  bool operator==(const Webhook&) const = default;
};

// A queue's `callback:`: when a job finishes, ficus POSTs its result to `url` (or to the URL the
// request named in `request_header`, when its origin is one of `allowed_origins`), signed as
// Standard Webhooks specify (webhook-id, webhook-timestamp, webhook-signature: HMAC-SHA256).
struct QueueCallback {
  std::optional<Webhook> url;                // none: only URLs the requests name
  std::string secret;                        // secret: "whsec_<base64>" or the raw key
  std::string request_header;                // lower-case; empty: requests cannot name one
  std::vector<std::string> allowed_origins;  // "scheme://host[:port]", lower-case
  uint32_t max_attempts = 8;
  Duration timeout{10'000};
  bool operator==(const QueueCallback&) const = default;
};
// "http://host:port" (the port always written, the host lower-case): how allowed_origins are
// kept and how a request's callback URL is compared with them.
std::string CallbackOrigin(bool https, std::string_view host, uint16_t port);

// A latency objective: `objective` of requests complete within `threshold`.
struct SloLatency {
  Duration threshold{300};
  double objective = 0.99;  // a fraction in (0, 1), from a percentage with up to 4 decimals
  bool operator==(const SloLatency&) const = default;
};

// A service level objective over a group of routes. The slo module computes its
// SLIs, error budget and burn-rate alerts; see docs/config.md `slos[]`.
struct Slo {
  std::string name;
  std::vector<std::string> routes;     // route names; empty = every route ("*" in YAML)
  std::optional<double> availability;  // objective for the share of non-5xx responses
  std::optional<SloLatency> latency;   // at least one of availability and latency is set
  Duration window{std::chrono::hours(24 * 30)};
  // Minimum-traffic guard: a burn-rate window with fewer requests than this never alerts.
  uint64_t min_requests = 100;
  std::vector<Webhook> webhooks;  // JSON POST on every alert state change
  int line = 0;
  bool operator==(const Slo&) const = default;
};

// access_log: JSON Lines, written off the workers (observe::AccessLog).
struct AccessLog {
  bool enabled = false;             // the section is present
  std::string path;                 // a file, or "stdout"
  std::vector<std::string> fields;  // names from kAccessLogFields; empty = all of them
  double sample = 1.0;              // share of requests logged, 0..1
  bool operator==(const AccessLog&) const = default;
};
// Every access-log field, in the order they are written.
inline constexpr const char* kAccessLogFields[] = {
    "time",      "request_id",  "trace_id",   "client",        "method",  "host",
    "path",      "route",       "cluster",    "endpoint",      "status",  "bytes_in",
    "bytes_out", "duration_us", "connect_us", "first_byte_us", "retries", "user_agent",
    "error",     "consumer",    "termination"};

// tracing: W3C Trace Context and OTLP/HTTP JSON export (observe::Tracer).
struct Tracing {
  bool enabled = false;  // the section is present
  std::string endpoint;  // http(s)://host:port/path, e.g. http://127.0.0.1:4318/v1/traces
  std::string ca_file;   // for an https endpoint: CAs to trust instead of the system store
  double sample = 0.01;  // ratio for traces ficus starts; a parent's sampled flag decides otherwise
  std::string service_name = "ficus";
  uint32_t batch_size = 512;      // spans per export request, 1..10000
  Duration flush_interval{1000};  // a partial batch waits at most this long
  Duration timeout{2000};         // per export request
  bool operator==(const Tracing&) const = default;
};

// `overload:` the process's own guard: over a set point, new requests are shed with 503 before
// ficus itself is at risk (src/policy/protect.h). 0 = no set point.
struct Overload {
  uint64_t max_memory = 0;              // resident bytes
  uint64_t max_open_files = 0;          // descriptors open
  uint32_t max_open_files_percent = 0;  // of RLIMIT_NOFILE (when max_open_files is 0)
  bool any() const { return max_memory || max_open_files || max_open_files_percent; }
  bool operator==(const Overload&) const = default;
};

// `queues[]`: a durable job queue in data_dir that offloaded requests wait in until a deliverer
// sends them to the route's cluster (the queue module; docs/config.md `queues[]`).
struct Queue {
  std::string name;
  uint64_t max_jobs = 100'000;        // unfinished jobs; a full queue answers 503
  uint64_t max_bytes = 256ull << 20;  // request bodies of unfinished jobs; over: 503
  uint64_t max_body = 1ull << 20;     // one request's body; larger: 413
  uint32_t concurrency = 4;           // deliveries in flight, 1..1024
  uint32_t rate = 0;                  // delivery attempts started per second; 0 = no limit
  Duration attempt_timeout{30'000};   // one delivery, connect to the whole response
  Duration backoff{500};              // the first retry's delay; doubles, with jitter
  Duration max_backoff{60'000};
  std::vector<uint16_t> retry_on = {429, 502, 503, 504};  // besides connect failures, timeouts
  Duration retention{std::chrono::hours(24)};  // finished jobs (and idempotency keys) kept
  uint64_t retention_bytes = 1ull << 30;       // and at most this much of them; the oldest go first
  std::optional<QueueCallback> callback;
  std::string jobs_path;             // the job URL prefix; default "/jobs/<name>"
  Duration retry_after{1000};        // Retry-After of the 202 and of a full queue's 503
  uint64_t result_body = 64 * 1024;  // the application's answer body kept per job
  int line = 0;
  bool operator==(const Queue&) const = default;
};

struct Config {
  std::string source;    // file path or a name for in-memory configs
  uint32_t workers = 0;  // resolved: never 0 after loading (0 in YAML = number of cores)
  std::string data_dir = "./ficus-data";
  std::string log_level = "info";
  Admin admin;
  std::vector<Listener> listeners;
  std::vector<Cluster> clusters;
  std::vector<Route> routes;
  Timeouts timeouts;
  Limits limits;
  Telemetry telemetry;
  std::vector<Slo> slos;      // in config order; names unique
  std::vector<Queue> queues;  // in config order; names unique
  AccessLog access_log;
  Tracing tracing;
  Overload overload;
  Postgres postgres;  // databases empty: no postgres listener allowed
  bool operator==(const Config&) const = default;
};

// One problem in a config file: rendered as "FILE:LINE:COL: field.path: reason".
struct ConfigError {
  std::string file;
  int line = 0;       // 1-based; 0 when unknown
  int column = 0;     // 1-based
  std::string field;  // dotted path, e.g. "clusters[0].endpoints[1]"
  std::string reason;
  std::string ToString() const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  std::vector<ConfigError> errors;       // every problem found, in file order
  // Legal but probably unintended (a cluster no route uses, a route that can never match).
  // Set whether or not there are errors; `ficus check` prints them.
  std::vector<ConfigError> warnings;
};

// Seams for tests, fuzzing and tools; the defaults are what `ficus run` uses.
struct LoadOptions {
  // Resolves an endpoint's DNS name to one IP literal; on failure returns nullopt and sets
  // *error. Empty = getaddrinfo (first IPv4 address, else first IPv6 address). Blocking.
  std::function<std::optional<std::string>(const std::string& name, std::string* error)> resolve;
  // Looks up an environment variable for `${VAR}`; nullopt = unset. Empty = ::getenv.
  std::function<std::optional<std::string>(const std::string& name)> getenv;
  // For offline tools (`ficus check`, `ficus report`, `ficus slo rules`), which use no secret: an
  // unset `${VAR}` without a default reads as empty, with a warning, instead of failing the load.
  bool offline = false;
};
inline LoadOptions OfflineLoad() {
  LoadOptions o;
  o.offline = true;
  return o;
}

// Parses and validates. Unknown keys and wrong types are errors; `${VAR}` (and `${VAR:-dflt}`)
// in scalar values is replaced from the environment, an unset VAR without default is an error.
// Never throws. Blocks on DNS when endpoints name hosts: call it off the worker threads.
LoadResult LoadFile(const std::string& path);
LoadResult LoadString(std::string_view yaml, std::string_view source_name);
LoadResult LoadFile(const std::string& path, const LoadOptions& options);
LoadResult LoadString(std::string_view yaml, std::string_view source_name,
                      const LoadOptions& options);

// Human-readable summary for `ficus check`: listeners, routes (match -> cluster), clusters.
std::string Describe(const Config& config);
// The running config as YAML with secrets (admin.token) redacted, for GET /config.
std::string ToRedactedYaml(const Config& config);

// "1.5s", "250ms", "2m", "1h30m" -> Duration: base/duration.h's grammar (the command line's
// too), and a whole number of milliseconds. On failure *error (when not null) says why.
std::optional<Duration> ParseDuration(std::string_view text, std::string* error = nullptr);
// "64KiB", "1MiB", "1GiB", "1000" -> bytes. Units B, KB, MB, GB, TB (powers of 1000) and
// KiB, MiB, GiB, TiB (powers of 1024); one space before the unit is allowed.
std::optional<uint64_t> ParseSize(std::string_view text);
// The inverses, in the largest exact unit: 1500ms -> "1500ms", 60000ms -> "1m", 65536 -> "64KiB".
std::string FormatDuration(Duration d);
std::string FormatSize(uint64_t bytes);

}  // namespace ficus::config
