// ficus::record — traffic capture for routes with `record:`. Workers copy the raw request head
// and up to max_body_bytes of the body into a slot taken from their own bounded pool and hand
// it to one background writer thread per capture file through a lock-free single-producer
// ring; the writer formats JSON Lines (redacting headers) and appends them to the file. A
// worker never blocks, locks, allocates (once the slots have grown) or touches the file: no
// free slot means the request is not recorded and counted as dropped.
//
// Capture format, one JSON object per line (docs/config.md, `ficus replay`):
//   {"t":1700000000.123456,"route":"api","method":"POST","target":"/a?b=1",
//    "headers":[["Host","x"],["Authorization","REDACTED"]],"body":"...","body_bytes":3,
//    "truncated":false}
// `t` is wall-clock seconds at the request head (µs precision); a body that is not printable
// UTF-8 is written as "body_base64"; a chunked body is written decoded, and max_body_bytes
// and "body_bytes" count its payload, not the chunk framing.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/http.h"

namespace ficus::record {

// What a route records; interned by the Recorder (AddPolicy), referred to by index.
struct Policy {
  std::string route;
  std::vector<std::string> redact_headers;  // lower-case names
};

// One captured request on its way from a worker to the writer.
struct Slot {
  int64_t time_us = 0;
  uint32_t policy = 0;
  bool chunked = false;
  bool truncated = false;
  uint64_t max_body = 0;
  uint64_t body_seen = 0;   // bytes that went by on the wire (chunked: framing included)
  uint64_t body_bytes = 0;  // body bytes that went by, kept or not (chunked: decoded payload)
  std::string head;         // the raw request head
  std::string body;         // the first max_body bytes of the body (chunked: decoded)
  // A chunked body is decoded as it passes, so max_body counts payload bytes only, never the
  // chunk-size lines and CRLFs around them. No limits of its own: the proxy has already
  // enforced its own on the same bytes.
  http::ChunkedScanner scanner{http::ChunkedScanner::Limits{UINT64_MAX, UINT32_MAX, UINT32_MAX}};
  bool scan_failed = false;

  // Keeps up to max_body bytes of the body as it passes through the proxy.
  void AppendBody(std::string_view piece) {
    body_seen += piece.size();
    if (!chunked) {
      Keep(piece);
      return;
    }
    if (scan_failed || scanner.done()) return;
    auto keep = [](void* self, std::string_view data) { static_cast<Slot*>(self)->Keep(data); };
    if (!scanner.Scan(piece, keep, this)) {
      scan_failed = true;  // the proxy fails the request too; keep what was decoded
      truncated = true;
    }
  }
  // Starts over for a new request (the slot is reused).
  void Reset(int64_t now_us, uint32_t policy_index, std::string_view raw_head, bool is_chunked,
             uint64_t max_body_bytes) {
    time_us = now_us;
    policy = policy_index;
    chunked = is_chunked;
    truncated = false;
    max_body = max_body_bytes;
    body_seen = body_bytes = 0;
    head.assign(raw_head);
    body.clear();
    scanner.Reset(http::ChunkedScanner::Limits{UINT64_MAX, UINT32_MAX, UINT32_MAX});
    scan_failed = false;
  }

 private:
  void Keep(std::string_view data) {
    body_bytes += data.size();
    if (body.size() < max_body)
      body.append(data.substr(0, static_cast<size_t>(max_body - body.size())));
    if (body_bytes > body.size()) truncated = true;
  }
};

class Recorder {
 public:
  static constexpr int kMaxWorkers = 64;
  static constexpr size_t kSlotsPerWorker = 256;  // a power of two

  // Opens (appends to) `path`; throws std::system_error when it cannot.
  explicit Recorder(const std::string& path);
  ~Recorder();  // writes what is queued, then stops the writer
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Main thread, before workers use them: interns a policy; makes rings for workers [0, n).
  uint32_t AddPolicy(Policy policy);
  void EnsureWorkers(int n);

  // Worker `worker`'s thread only. Begin returns nullptr (and counts a drop) when the worker
  // has no free slot; otherwise the slot holds a copy of `head`. Every slot Begin returns must
  // go back through Commit.
  Slot* Begin(int worker, uint32_t policy, std::string_view head, bool chunked,
              uint64_t max_body_bytes);
  void Commit(int worker, Slot* slot);

  // Any thread.
  uint64_t recorded() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const;
  const std::string& path() const { return path_; }
  // Blocks until everything committed before the call is in the file (tests, shutdown).
  void Flush();

  // Writer-side formatting (exposed for tests): the JSON line for one slot, without newline.
  static std::string Format(const Slot& slot, const Policy& policy);

 private:
  // Single-producer single-consumer ring of slot pointers.
  struct Ring {
    std::array<Slot*, kSlotsPerWorker> items{};
    alignas(64) std::atomic<uint64_t> head{0};  // next to pop (consumer)
    alignas(64) std::atomic<uint64_t> tail{0};  // next to push (producer)
    bool Push(Slot* s);
    Slot* Pop();
  };
  struct PerWorker {
    Ring full;  // worker -> writer
    Ring free;  // writer -> worker
    std::vector<std::unique_ptr<Slot>> slots;
    alignas(64) std::atomic<uint64_t> dropped{0};
  };
  void WriterLoop();
  size_t Drain(std::string& out);

  std::string path_;
  int fd_ = -1;
  std::array<std::atomic<PerWorker*>, kMaxWorkers> workers_{};
  std::vector<std::unique_ptr<PerWorker>> owned_;
  std::mutex policies_mu_;  // main thread adds, writer reads; workers never take it
  std::vector<Policy> policies_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> committed_{0};
  std::atomic<uint64_t> written_{0};
  std::thread writer_;
};

// The process-wide recorder for a capture file, created on first use and kept until exit, so
// a reload that keeps recording to the same file keeps appending in order. Thread-safe.
Recorder& Open(const std::string& path);

// Writes what every recorder has queued (at shutdown, after the workers stopped).
void FlushAll();

// Calls `f` for every recorder opened so far, in path order (metrics: recorded and dropped
// counts). Thread-safe with Open; `f` must not call Open.
void ForEachRecorder(const std::function<void(const Recorder&)>& f);

// A cheap per-thread sampling decision: true with probability `ratio` (1 = always).
bool Sample(double ratio);

}  // namespace ficus::record
