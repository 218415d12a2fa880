// The taps' out-of-line parts: the record at the end (metrics cells, access log, trace), the
// per-exchange setup it needs (trace context, sampling), routing's counts and the error samples.
// Everything here runs on the worker and allocates nothing.
#include "proxy/internal/taps.h"

#include <algorithm>
#include <cstring>

namespace ficus::proxy {
namespace {

uint64_t MicrosBetween(int64_t from, int64_t to) {
  return to > from ? static_cast<uint64_t>(to - from) / 1000 : 0;
}

}  // namespace

void Taps::Begin(const Exchange& ex, std::string_view client_ip, char* record_area, bool parsed) {
  route_stats_ = nullptr;
  cluster_traffic_ = nullptr;
  endpoint_stats_ = nullptr;
  record_ = nullptr;
  last_error_ = nullptr;
  upstream_start_ns_ = connect_start_ns_ = connected_ns_ = sent_ns_ = first_byte_ns_ = 0;
  upstream_status_ = 0;
  retries_ = 0;
  trace_this_ = false;
  tracing_ = false;
  repeat_sample_ = false;
  body_sink_ = nullptr;
  synthetic_ = false;
  client_key_hash_ = 0;
  drop_tracestate_ = false;
  observe::AccessLog* log = worker_.access_log();
  observe::Tracer* tracer = worker_.tracer();
  log_this_ = log != nullptr && log->Sample(worker_.id());
  observe::TraceIds ids;
  if (tracer != nullptr && parsed) {
    // Continue a valid parent (exactly one traceparent field), else start a trace. The
    // client's tracestate goes on only with its parent, and only when it is valid.
    http::TraceParent parent;
    const bool continued =
        ex.head.traceparent_count == 1 && http::ParseTraceParent(ex.head.traceparent, &parent);
    if (continued) {
      tracer->Begin(worker_.id(), parent.trace_id, parent.parent_id, parent.sampled(), &ids);
    } else {
      tracer->Begin(worker_.id(), nullptr, nullptr, false, &ids);
    }
    drop_tracestate_ = !continued;
    if (continued && ex.head.tracestate_count != 0) {
      // Several tracestate fields are one list: valid together or dropped together (they are
      // forwarded as they came, which a recipient combines into the same list).
      http::TraceStateList list;
      for (const http::Header& h : ex.head.headers) {
        if (h.role == http::HeaderRole::kTracestate && !list.Add(h.value)) break;
      }
      drop_tracestate_ = !list.valid();
    }
    // The upstream's parent is the attempt span.
    http::FormatTraceParent(ids.trace_id.data(), ids.attempt_span_id.data(), ids.sampled ? 1 : 0,
                            traceparent_);
    tracing_ = true;
    trace_this_ = ids.sampled;
  }
  if ((log_this_ || trace_this_) && record_area != nullptr) {
    record_ = reinterpret_cast<observe::ExchangeRecord*>(record_area);
    if (parsed) {
      record_->Begin(ex.start_ns, ex.head.method_text, ex.id(), client_ip, ex.head.host,
                     ex.head.path, ex.head.user_agent);
    } else {
      record_->Begin(ex.start_ns, {}, ex.id(), client_ip, {}, {}, {});
    }
    record_->trace = ids;
  }
}

void Taps::OnRouted(Exchange& ex, const Snapshot& snap, int route, std::string_view client_ip,
                    std::string_view raw_head) {
  route_stats_ = snap.route_stats[route];
  ex.route_cell = &route_stats_->Cell(worker_.id());
  ex.route_cell->requests.Add();
  ex.route_cell->in_flight.Add(1);
  CountClientKey(ex, client_ip);
  if (--worker_.repeat_countdown() == 0) [[unlikely]] {
    if (synthetic_) {
      worker_.repeat_countdown() = 1;  // ficus's own load is not sampled: the next request is
    } else {
      StartRepeatSample(ex, snap);
    }
  }
  if (const auto& rec = snap.route_records[route]; rec.recorder && record::Sample(rec.sample)) {
    recorder_ = rec.recorder;  // a copy of the head now, body bytes as they pass
    record_slot_ =
        recorder_->Begin(worker_.id(), rec.policy, raw_head,
                         ex.head.framing == http::BodyFraming::kChunked, rec.max_body_bytes);
  }
}

namespace {

// The fields that say who sends a request (one scan of the parsed fields).
struct ClientFields {
  std::string_view api_key, user, synthetic;
};
ClientFields ScanClientFields(const http::RequestHead& head) {
  ClientFields f;
  for (const http::Header& h : head.headers) {
    if (f.api_key.empty() && http::EqualsIgnoreCase(h.name, "x-api-key")) {
      f.api_key = h.value;
    } else if (f.user.empty() && http::EqualsIgnoreCase(h.name, "x-user")) {
      f.user = h.value;
    } else if (h.name.size() == 17 && http::EqualsIgnoreCase(h.name, "x-ficus-synthetic")) {
      // (the inline length test spares most fields the call)
      f.synthetic = h.value;
    }
  }
  return f;
}
// "key:V" (the API key), else "user:V", else "addr:IP", cut to the sketch's key size, in `buf`.
std::string_view ComposeClientKey(const ClientFields& f, std::string_view client_ip,
                                  char (&buf)[observe::KeySketch::kKeyBytes]) {
  auto compose = [&buf](std::string_view prefix, std::string_view value) {
    const size_t p = std::min(prefix.size(), sizeof buf);
    std::memcpy(buf, prefix.data(), p);
    const size_t v = std::min(value.size(), sizeof buf - p);
    std::memcpy(buf + p, value.data(), v);
    return std::string_view(buf, p + v);
  };
  return !f.api_key.empty() ? compose("key:", f.api_key)
         : !f.user.empty()  ? compose("user:", f.user)
                            : compose("addr:", client_ip);
}

}  // namespace

// Who sends this request, for the report's noisy clients and its distinct clients (one
// identity for both, so "active users" behind one NAT or proxy address are still told apart):
// the API key, else the user, else the address. A stack buffer and one scan of the parsed
// fields (~20-40 ns; no allocation).
void Taps::CountClientKey(const Exchange& ex, std::string_view client_ip) {
  const ClientFields f = ScanClientFields(ex.head);
  if (!f.synthetic.empty()) [[unlikely]] {
    synthetic_ = worker_.registry().synthetic().Matches(f.synthetic, MonotonicNanos());
    // ficus's own load is no client: it stays out of the heavy keys and the distinct clients.
    if (synthetic_) return;
  }
  char buf[observe::KeySketch::kKeyBytes];
  const std::string_view key = ComposeClientKey(f, client_ip, buf);
  client_key_hash_ = observe::HashClient(key);
  ex.route_cell->keys.Add(client_key_hash_, key);
}

void Taps::CountLimitedKey(const Exchange& ex, std::string_view client_ip) {
  if (synthetic_ || ex.route_cell == nullptr) return;
  // A refusal's slow path: the key is composed again rather than kept for every request.
  char buf[observe::KeySketch::kKeyBytes];
  const std::string_view key = ComposeClientKey(ScanClientFields(ex.head), client_ip, buf);
  ex.route_cell->limited.Add(observe::HashClient(key), key);
}

void Taps::OnCluster(const Exchange& ex) {
  cluster_traffic_ = &ex.cluster->stats()->traffic.Cell(worker_.id());
  cluster_traffic_->requests.Add();
  cluster_traffic_->in_flight.Add(1);
}

void Taps::OnEndpoint(const Exchange& ex, const Snapshot& snap, size_t endpoint) {
  // Only the record (span start, "upstream.pick") needs this time: a clock read is ~25 ns.
  if (record_ != nullptr && upstream_start_ns_ == 0) upstream_start_ns_ = MonotonicNanos();
  if (endpoint_stats_ != nullptr) {  // a retry: the previous try's endpoint is done with it
    endpoint_stats_->Cell(worker_.id()).in_flight.Add(-1);
    endpoint_stats_ = nullptr;
  }
  const auto& per_cluster = snap.endpoint_stats;
  const size_t c = ex.route ? ex.route->cluster_index : per_cluster.size();
  if (c >= per_cluster.size() || endpoint >= per_cluster[c].size()) return;
  endpoint_stats_ = per_cluster[c][endpoint];
  observe::TrafficCell& cell = endpoint_stats_->Cell(worker_.id());
  cell.requests.Add();
  cell.in_flight.Add(1);
}

void Taps::Record(const Exchange& ex) {
  const int status = ex.status;
  const int64_t now = MonotonicNanos();
  const int cls = observe::StatusClassIndex(status);
  worker_.server_stats().responses[cls].Add();
  // Each value goes to up to three cells (route, cluster, endpoint): bucket it once.
  using observe::Histogram;
  const uint64_t duration_us = MicrosBetween(ex.start_ns, now);
  const int duration_bucket = Histogram::BucketFor(duration_us);
  const bool connected = connected_ns_ != 0;
  const uint64_t connect_us = connected ? MicrosBetween(connect_start_ns_, connected_ns_) : 0;
  const int connect_bucket = connected ? Histogram::BucketFor(connect_us) : 0;
  const bool first_byte = first_byte_ns_ != 0 && sent_ns_ != 0;
  const uint64_t first_byte_us = first_byte ? MicrosBetween(sent_ns_, first_byte_ns_) : 0;
  const int first_byte_bucket = first_byte ? Histogram::BucketFor(first_byte_us) : 0;
  observe::TrafficCell* cells[3] = {
      ex.route_cell, cluster_traffic_,
      endpoint_stats_ ? &endpoint_stats_->Cell(worker_.id()) : nullptr};
  for (observe::TrafficCell* c : cells) {
    if (c == nullptr) continue;
    c->in_flight.Add(-1);
    c->responses[cls].Add();
    c->codes.Add(status);
    c->duration.RecordInBucket(duration_bucket, duration_us);
    c->request_bytes.Add(ex.request_body_bytes);
    c->response_bytes.Add(ex.response_body_bytes);
    if (connected) c->upstream_connect.RecordInBucket(connect_bucket, connect_us);
    if (first_byte) c->upstream_first_byte.RecordInBucket(first_byte_bucket, first_byte_us);
  }
  if (ex.route_cell != nullptr && !synthetic_) ex.route_cell->clients.Add(client_key_hash_);
  // The route of this trace id, for the PostgreSQL proxy's join of queries to routes (the
  // trace id is the hex at offset 3 of the traceparent the upstream got).
  if (tracing_ && route_stats_ != nullptr)
    worker_.tracer()->NoteRoute(worker_.id(), traceparent_ + 3, &route_stats_->name, duration_us);
  if (synthetic_ && ex.route_cell != nullptr) [[unlikely]] {
    ex.route_cell->synthetic.requests.Add();
    if (cls == 4) ex.route_cell->synthetic.errors.Add();
    ex.route_cell->synthetic.duration.Record(duration_us);
    ex.route_cell->synthetic.response_bytes.Add(ex.response_body_bytes);
  }
  if (record_ == nullptr) return;
  observe::ExchangeRecord& r = *record_;
  record_ = nullptr;
  r.end_ns = now;
  r.upstream_start_ns = upstream_start_ns_;
  r.connect_start_ns = connect_start_ns_;
  r.connected_ns = connected_ns_;
  r.sent_ns = sent_ns_;
  r.first_byte_ns = first_byte_ns_;
  r.bytes_in = ex.request_body_bytes;
  r.bytes_out = ex.response_body_bytes;
  r.status = static_cast<uint16_t>(status);
  r.upstream_status = upstream_status_;
  r.upstream_failed = upstream_start_ns_ != 0 && upstream_status_ == 0;
  r.retries = retries_;
  r.route = route_stats_ ? &route_stats_->name : nullptr;
  r.cluster = ex.cluster ? &ex.cluster->stats()->name : nullptr;
  r.endpoint = endpoint_stats_ ? &endpoint_stats_->name : nullptr;
  r.error = last_error_;
  r.termination = ex.termination;
  if (log_this_) worker_.access_log()->Submit(worker_.id(), r);
  if (trace_this_) worker_.tracer()->Submit(worker_.id(), r);
}

void Taps::SampleError(const Exchange& ex, std::string_view request_head,
                       std::string_view response_head) {
  telemetry::ErrorSampler* sampler = worker_.error_sampler();
  if (sampler == nullptr || ex.route == nullptr) return;
  sampler->Push(worker_.id(), WallMicros() / 1000, ex.route->name, ex.status, ex.id(), request_head,
                response_head);
}

}  // namespace ficus::proxy
