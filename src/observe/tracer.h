// Request tracing: spans exported as OTLP/HTTP JSON in batches by one background thread. Part of
// observe.h, the module's interface; include that.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "observe/exchange_record.h"
#include "observe/registry.h"

namespace ficus::client {
class Client;  // client/client.h: the tracer's exporter connection
}  // namespace ficus::client

namespace ficus::observe {

struct TracerOptions {
  std::string endpoint;  // http(s)://host:port/path (OTLP/HTTP JSON, e.g. /v1/traces)
  std::string ca_file;   // https: CAs to trust instead of the system store
  double sample = 0.01;  // ratio for traces ficus starts (parent-based otherwise)
  std::string service_name = "ficus";
  size_t batch_size = 512;           // spans per export request at most
  int64_t flush_interval_ms = 1000;  // a partial batch waits at most this long
  int64_t timeout_ms = 2000;         // per export request (connect + send + response)
  size_t ring_capacity = 1024;       // records per worker (power of two)
};

// Spans for sampled exchanges: one server span per exchange with its phases as events and the
// upstream attempt as a child (client) span, exported as OTLP/HTTP JSON by a background thread.
// When the collector is down or slow, batches are dropped and counted; workers never wait.
class Tracer {
 public:
  // Validates the endpoint URL and starts the exporter thread.
  static std::unique_ptr<Tracer> Start(const TracerOptions& options, int workers,
                                       std::string* error);
  ~Tracer();  // exports what is queued (one attempt) and stops

  // New ids for an exchange: continues `parent` (trace id + span id) when given, else starts a
  // trace. Parent-based sampling: a parent's sampled flag decides; a new trace is sampled with
  // probability options.sample, decided from the trace id (so every hop agrees).
  void Begin(int worker, const uint8_t* parent_trace_id, const uint8_t* parent_span_id,
             bool parent_sampled, TraceIds* out);
  void Submit(int worker, const ExchangeRecord& r) { rings_.Push(worker, r); }
  void Flush();  // waits until what was submitted before has been exported or dropped
  uint64_t exported() const { return exported_.load(std::memory_order_relaxed); }
  uint64_t dropped() const {
    return rings_.dropped() + export_dropped_.load(std::memory_order_relaxed);
  }
  // The OTLP JSON body for a batch (ExportTraceServiceRequest).
  static void FormatBatch(const std::vector<ExchangeRecord>& batch, std::string_view service,
                          int64_t unix_offset_ns, std::string& out);
  // ficus_trace_* families.
  void Collect(MetricWriter& w) const;
  // Traced exchanges' routes, for the PostgreSQL proxy's query-to-route join (pg/). Shared:
  // the join may outlive the tracer by a moment at shutdown.
  const std::shared_ptr<RouteTraceLog>& route_log() const { return route_log_; }
  void NoteRoute(int worker, const char* trace_hex, const std::string* route, uint64_t micros) {
    if (!route_log_->wanted.load(std::memory_order_relaxed)) return;
    RouteTrace t;
    std::memcpy(t.trace_id, trace_hex, sizeof t.trace_id);
    t.route = route;
    t.duration_us = micros;
    route_log_->rings.Push(worker, t);
  }

 private:
  Tracer(const TracerOptions& options, int workers);
  void Run();
  // One POST on the client's kept-alive connection. True when the collector answered 2xx.
  bool Export(const std::string& body);
  struct alignas(64) PaddedRandom {
    FastRandom value{0};
  };
  TracerOptions options_;
  std::unique_ptr<client::Client> client_;  // the exporter thread's only
  uint64_t threshold_ = 0;  // sample a new trace when its low 64 bits are below this
  RecordRings rings_;
  std::unique_ptr<PaddedRandom[]> rng_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> consumed_{0};
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> export_dropped_{0};
  std::atomic<uint64_t> export_failures_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> connections_{0};  // connections opened to the collector
  std::shared_ptr<RouteTraceLog> route_log_;
  std::thread thread_;
};

}  // namespace ficus::observe
