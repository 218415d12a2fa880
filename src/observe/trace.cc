// Tracing: ids and parent-based sampling on the worker; batching and OTLP/HTTP JSON export on
// the exporter thread (a blocking POST per batch through client::Client, bounded by timeout_ms).
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

#include "base/base.h"
#include "base/json.h"
#include "base/redact.h"
#include "base/text.h"
#include "client/client.h"
#include "http/http.h"
#include "observe/observe.h"

namespace ficus::observe {
namespace {

// Big-endian, as ids are written on the wire.
void PutU64(uint8_t* out, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(out, &v, 8);
}

uint64_t GetU64(const uint8_t* in) {
  uint64_t v;
  std::memcpy(&v, in, 8);
  return __builtin_bswap64(v);
}

template <size_t N>
void AppendHex(std::string& out, const std::array<uint8_t, N>& bytes) {
  char hex[2 * N];
  WriteHexLower(bytes.data(), N, hex);
  out += '"';
  out.append(hex, sizeof hex);
  out += '"';
}

void AppendNanos(std::string& out, int64_t unix_ns) {
  out += '"';
  AppendJsonUint(out, static_cast<uint64_t>(unix_ns));
  out += '"';
}

// Attributes as OTLP KeyValue objects.
class Attributes {
 public:
  explicit Attributes(std::string& out) : out_(out) { out_ += "\"attributes\":["; }
  ~Attributes() { out_ += ']'; }
  void Str(std::string_view key, std::string_view v) {
    Key(key);
    out_ += "{\"stringValue\":";
    AppendJsonString(out_, v);
    out_ += "}}";
  }
  void Int(std::string_view key, uint64_t v) {
    Key(key);
    out_ += "{\"intValue\":\"";
    AppendJsonUint(out_, v);
    out_ += "\"}}";
  }

 private:
  void Key(std::string_view key) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += "{\"key\":";
    AppendJsonString(out_, key);
    out_ += ",\"value\":";
  }
  std::string& out_;
  bool first_ = true;
};

void AppendEvent(std::string& out, bool* first, std::string_view name, int64_t mono_ns,
                 int64_t offset) {
  if (mono_ns == 0) return;
  if (!*first) out += ',';
  *first = false;
  out += "{\"timeUnixNano\":";
  AppendNanos(out, mono_ns + offset);
  out += ",\"name\":";
  AppendJsonString(out, name);
  out += '}';
}

void AppendServerSpan(std::string& out, const ExchangeRecord& r, int64_t offset) {
  static constexpr std::array<uint8_t, 8> kZero{};
  out += "{\"traceId\":";
  AppendHex(out, r.trace.trace_id);
  out += ",\"spanId\":";
  AppendHex(out, r.trace.span_id);
  if (r.trace.parent_span_id != kZero) {
    out += ",\"parentSpanId\":";
    AppendHex(out, r.trace.parent_span_id);
  }
  std::string name(r.Method());
  if (r.route) name.append(" ").append(*r.route);
  out += ",\"name\":";
  AppendJsonString(out, name);
  out += ",\"kind\":2,\"startTimeUnixNano\":";
  AppendNanos(out, r.start_ns + offset);
  out += ",\"endTimeUnixNano\":";
  AppendNanos(out, (r.end_ns ? r.end_ns : r.start_ns) + offset);
  out += ',';
  {
    Attributes a(out);
    a.Str("http.request.method", r.Method());
    // A token in the path never leaves in a span (base/redact.h).
    const std::string redacted = HasJwt(r.Path()) ? RedactJwts(r.Path()) : std::string();
    a.Str("url.path", redacted.empty() ? r.Path() : std::string_view(redacted));
    a.Str("server.address", r.Host());
    a.Str("client.address", r.Client());
    a.Int("http.response.status_code", r.status);
    if (r.route) a.Str("http.route", *r.route);
    if (r.cluster) a.Str("ficus.cluster", *r.cluster);
    if (r.endpoint) a.Str("ficus.endpoint", *r.endpoint);
    a.Str("ficus.request_id", r.RequestId());
    a.Int("http.request.body.size", r.bytes_in);
    a.Int("http.response.body.size", r.bytes_out);
    a.Int("ficus.retries", r.retries);
    if (r.user_agent_len) a.Str("user_agent.original", r.UserAgent());
    if (r.consumer_len) a.Str("enduser.id", r.Consumer());
  }
  out += ",\"events\":[";
  bool first = true;
  AppendEvent(out, &first, "upstream.pick", r.upstream_start_ns, offset);
  AppendEvent(out, &first, "upstream.connect_start", r.connect_start_ns, offset);
  AppendEvent(out, &first, "upstream.connected", r.connected_ns, offset);
  AppendEvent(out, &first, "upstream.request_sent", r.sent_ns, offset);
  AppendEvent(out, &first, "upstream.first_byte", r.first_byte_ns, offset);
  AppendEvent(out, &first, "response.complete", r.end_ns, offset);
  out += "],\"status\":";
  if (r.status >= 500 || r.status == 0) {
    out += "{\"code\":2,\"message\":";
    AppendJsonString(out, r.error ? std::string_view(r.error) : std::string_view("server error"));
    out += '}';
  } else {
    out += "{\"code\":0}";
  }
  out += '}';
}

void AppendAttemptSpan(std::string& out, const ExchangeRecord& r, int64_t offset) {
  out += "{\"traceId\":";
  AppendHex(out, r.trace.trace_id);
  out += ",\"spanId\":";
  AppendHex(out, r.trace.attempt_span_id);
  out += ",\"parentSpanId\":";
  AppendHex(out, r.trace.span_id);
  std::string name("upstream");
  if (r.cluster) name.append(" ").append(*r.cluster);
  out += ",\"name\":";
  AppendJsonString(out, name);
  const int64_t end =
      r.first_byte_ns && !r.upstream_failed ? r.end_ns : (r.end_ns ? r.end_ns : r.start_ns);
  out += ",\"kind\":3,\"startTimeUnixNano\":";
  AppendNanos(out, r.upstream_start_ns + offset);
  out += ",\"endTimeUnixNano\":";
  AppendNanos(out, (end ? end : r.upstream_start_ns) + offset);
  out += ',';
  {
    Attributes a(out);
    a.Str("http.request.method", r.Method());
    if (r.endpoint) a.Str("server.address", *r.endpoint);
    if (r.cluster) a.Str("ficus.cluster", *r.cluster);
    if (r.upstream_status) a.Int("http.response.status_code", r.upstream_status);
    a.Int("ficus.connection_reused", r.connect_start_ns == 0 ? 1 : 0);
  }
  out += ",\"events\":[";
  bool first = true;
  AppendEvent(out, &first, "connect_start", r.connect_start_ns, offset);
  AppendEvent(out, &first, "connected", r.connected_ns, offset);
  AppendEvent(out, &first, "request_sent", r.sent_ns, offset);
  AppendEvent(out, &first, "first_byte", r.first_byte_ns, offset);
  out += "],\"status\":";
  if (r.upstream_failed || r.upstream_status >= 500) {
    out += "{\"code\":2,\"message\":";
    AppendJsonString(out, r.upstream_failed && r.error ? std::string_view(r.error)
                                                       : std::string_view("upstream error"));
    out += '}';
  } else {
    out += "{\"code\":0}";
  }
  out += '}';
}

}  // namespace

void Tracer::FormatBatch(const std::vector<ExchangeRecord>& batch, std::string_view service,
                         int64_t offset, std::string& out) {
  out += "{\"resourceSpans\":[{\"resource\":{";
  {
    Attributes a(out);
    a.Str("service.name", service);
  }
  out += "},\"scopeSpans\":[{\"scope\":{\"name\":\"ficus\"},\"spans\":[";
  bool first = true;
  for (const ExchangeRecord& r : batch) {
    if (!first) out += ',';
    first = false;
    AppendServerSpan(out, r, offset);
    if (r.upstream_start_ns != 0) {
      out += ',';
      AppendAttemptSpan(out, r, offset);
    }
  }
  out += "]}]}]}";
}

std::unique_ptr<Tracer> Tracer::Start(const TracerOptions& options, int workers,
                                      std::string* error) {
  std::unique_ptr<Tracer> t(new Tracer(options, workers));
  client::Url url;
  if (!client::ParseUrl(options.endpoint, &url, error)) {
    *error = "tracing endpoint: " + *error;
    return nullptr;
  }
  // No path at all: OTLP/HTTP's default (an explicit "/" stays "/").
  const size_t authority = options.endpoint.find("://") + 3;
  if (options.endpoint.find_first_of("/?", authority) == std::string::npos) {
    url.target = "/v1/traces";
  }
  std::shared_ptr<client::TlsContext> tls;
  if (url.https) {
    tls = client::TlsContext::Create({options.ca_file}, error);
    if (tls == nullptr) return nullptr;
  }
  t->client_ = std::make_unique<client::Client>(std::move(url), std::move(tls));
  t->thread_ = std::thread([p = t.get()] { p->Run(); });
  return t;
}

Tracer::Tracer(const TracerOptions& options, int workers)
    : options_(options),
      rings_(workers, options.ring_capacity),
      rng_(new PaddedRandom[workers]),
      route_log_(std::make_shared<RouteTraceLog>(workers, 4096)) {
  const double s = options_.sample;
  threshold_ = s >= 1.0 ? UINT64_MAX : s <= 0.0 ? 0 : static_cast<uint64_t>(s * 0x1.0p64);
  const uint64_t seed = static_cast<uint64_t>(MonotonicNanos()) ^ static_cast<uint64_t>(getpid());
  for (int w = 0; w < workers; ++w) rng_[w].value = FastRandom(seed ^ (uint64_t(w) << 56));
}

Tracer::~Tracer() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

void Tracer::Begin(int worker, const uint8_t* parent_trace_id, const uint8_t* parent_span_id,
                   bool parent_sampled, TraceIds* out) {
  FastRandom& rng = rng_[worker].value;
  if (parent_trace_id != nullptr) {
    std::memcpy(out->trace_id.data(), parent_trace_id, 16);
    std::memcpy(out->parent_span_id.data(), parent_span_id, 8);
    out->sampled = parent_sampled;
  } else {
    uint64_t hi = rng.Next(), lo = rng.Next();
    if ((hi | lo) == 0) lo = 1;  // an all-zero trace id is invalid
    PutU64(out->trace_id.data(), hi);
    PutU64(out->trace_id.data() + 8, lo);
    out->parent_span_id = {};
    out->sampled = threshold_ == UINT64_MAX || GetU64(out->trace_id.data() + 8) < threshold_;
  }
  PutU64(out->span_id.data(), rng.Next() | 1);  // never all zero
  PutU64(out->attempt_span_id.data(), rng.Next() | 1);
}

bool Tracer::Export(const std::string& body) {
  // Keep-alive: one connection carries every batch while the collector keeps it open; a reused
  // connection found closed gets one retry on a fresh one (at worst a batch is delivered twice,
  // never lost silently).
  client::Request req;
  req.method = "POST";
  req.target = client_->url().target;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = body;
  const client::Response r =
      client_->Send(std::move(req), std::chrono::milliseconds(options_.timeout_ms));
  connections_.store(client_->connections(), std::memory_order_relaxed);
  return r.ok();
}

void Tracer::Run() {
  std::vector<ExchangeRecord> batch;
  batch.reserve(options_.batch_size);
  std::string body;
  int64_t batch_started = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    body.clear();
    FormatBatch(batch, options_.service_name, UnixMinusMonotonicNanos(), body);
    batches_.fetch_add(1, std::memory_order_relaxed);
    if (Export(body)) {
      exported_.fetch_add(batch.size(), std::memory_order_relaxed);
    } else {
      export_failures_.fetch_add(1, std::memory_order_relaxed);
      export_dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
    }
    consumed_.fetch_add(batch.size(), std::memory_order_release);
    batch.clear();
  };
  for (;;) {
    const bool stopping = stop_.load(std::memory_order_acquire);
    size_t n = 0;
    for (int w = 0; w < rings_.workers(); ++w) {
      n += rings_.Drain(w, options_.batch_size - batch.size(), [&](const ExchangeRecord& r) {
        if (batch.empty()) batch_started = MonotonicNanos();
        batch.push_back(r);
      });
      if (batch.size() >= options_.batch_size) flush();
    }
    if (!batch.empty() &&
        (stopping || MonotonicNanos() - batch_started >= options_.flush_interval_ms * 1'000'000)) {
      flush();
    }
    if (n == 0) {
      if (stopping) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  flush();
}

void Tracer::Flush() {
  const uint64_t target = rings_.pushed();
  const int64_t deadline =
      MonotonicNanos() + (options_.flush_interval_ms + 2 * options_.timeout_ms + 1000) * 1'000'000;
  while (consumed_.load(std::memory_order_acquire) < target && MonotonicNanos() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Tracer::Collect(MetricWriter& w) const {
  w.Family("ficus_trace_exchanges_exported_total", "counter",
           "Sampled exchanges whose spans the collector accepted.");
  w.Sample("ficus_trace_exchanges_exported_total", {}, exported());
  w.Family("ficus_trace_exchanges_dropped_total", "counter",
           "Sampled exchanges whose spans were dropped: a worker's queue was full, or the "
           "export failed (collector down or slow).");
  w.Sample("ficus_trace_exchanges_dropped_total", {{"reason", "queue_full"}}, rings_.dropped());
  w.Sample("ficus_trace_exchanges_dropped_total", {{"reason", "export_failed"}},
           export_dropped_.load(std::memory_order_relaxed));
  w.Family("ficus_trace_export_batches_total", "counter", "OTLP export requests made.");
  w.Sample("ficus_trace_export_batches_total", {}, batches_.load(std::memory_order_relaxed));
  w.Family("ficus_trace_export_connections_total", "counter",
           "Connections opened to the OTLP collector (kept alive between export requests).");
  w.Sample("ficus_trace_export_connections_total", {},
           connections_.load(std::memory_order_relaxed));
  w.Family("ficus_trace_export_failures_total", "counter", "OTLP export requests that failed.");
  w.Sample("ficus_trace_export_failures_total", {},
           export_failures_.load(std::memory_order_relaxed));
}

}  // namespace ficus::observe
