#include "record/record.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <system_error>

#include "base/base.h"
#include "base/base64.h"
#include "base/redact.h"
#include "base/text.h"
#include "http/http.h"

namespace ficus::record {
namespace {

constexpr uint64_t kMask = Recorder::kSlotsPerWorker - 1;
static_assert((Recorder::kSlotsPerWorker & kMask) == 0);

// Printable UTF-8 (tabs and line breaks allowed): written as a JSON string, else base64.
bool IsText(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return false;
      ++i;
      continue;
    }
    // Lead byte: how many continuation bytes follow (overlong and out-of-range leads fail).
    size_t n = c >= 0xC2 && c <= 0xDF   ? 1
               : c >= 0xE0 && c <= 0xEF ? 2
               : c >= 0xF0 && c <= 0xF4 ? 3
                                        : 0;
    if (n == 0 || i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace

bool Recorder::Ring::Push(Slot* s) {
  uint64_t t = tail.load(std::memory_order_relaxed);
  if (t - head.load(std::memory_order_acquire) >= kSlotsPerWorker) return false;
  items[t & kMask] = s;
  tail.store(t + 1, std::memory_order_release);
  return true;
}

Slot* Recorder::Ring::Pop() {
  uint64_t h = head.load(std::memory_order_relaxed);
  if (h == tail.load(std::memory_order_acquire)) return nullptr;
  Slot* s = items[h & kMask];
  head.store(h + 1, std::memory_order_release);
  return s;
}

Recorder::Recorder(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
  writer_ = std::thread([this] { WriterLoop(); });
}

Recorder::~Recorder() {
  stop_.store(true);
  writer_.join();
  ::close(fd_);
}

uint32_t Recorder::AddPolicy(Policy policy) {
  std::lock_guard lock(policies_mu_);
  for (size_t i = 0; i < policies_.size(); ++i) {
    if (policies_[i].route == policy.route && policies_[i].redact_headers == policy.redact_headers)
      return static_cast<uint32_t>(i);
  }
  policies_.push_back(std::move(policy));
  return static_cast<uint32_t>(policies_.size() - 1);
}

void Recorder::EnsureWorkers(int n) {
  for (int w = 0; w < n && w < kMaxWorkers; ++w) {
    if (workers_[static_cast<size_t>(w)].load(std::memory_order_acquire)) continue;
    auto pw = std::make_unique<PerWorker>();
    for (size_t i = 0; i < kSlotsPerWorker; ++i) {
      pw->slots.push_back(std::make_unique<Slot>());
      pw->free.Push(pw->slots.back().get());
    }
    workers_[static_cast<size_t>(w)].store(pw.get(), std::memory_order_release);
    owned_.push_back(std::move(pw));
  }
}

Slot* Recorder::Begin(int worker, uint32_t policy, std::string_view head, bool chunked,
                      uint64_t max_body_bytes) {
  PerWorker* pw = workers_[static_cast<size_t>(worker)].load(std::memory_order_acquire);
  Slot* s = pw ? pw->free.Pop() : nullptr;
  if (!s) {
    if (pw) pw->dropped.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  s->Reset(WallMicros(), policy, head, chunked, max_body_bytes);
  return s;
}

void Recorder::Commit(int worker, Slot* slot) {
  PerWorker* pw = workers_[static_cast<size_t>(worker)].load(std::memory_order_acquire);
  // The full ring has room for every slot of the worker, so this cannot fail.
  pw->full.Push(slot);
  committed_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Recorder::dropped() const {
  uint64_t n = 0;
  for (const auto& w : workers_) {
    if (PerWorker* pw = w.load(std::memory_order_acquire))
      n += pw->dropped.load(std::memory_order_relaxed);
  }
  return n;
}

std::string Recorder::Format(const Slot& slot, const Policy& policy) {
  std::string out;
  http::RequestHead head;
  std::vector<http::Header> fields(1000);
  http::RequestHeadParser parser(http::Limits{UINT32_MAX, 1000}, fields);
  auto parsed = parser.Parse(slot.head, head);
  char t[32];
  std::snprintf(t, sizeof t, "%lld.%06lld", static_cast<long long>(slot.time_us / 1'000'000),
                static_cast<long long>(slot.time_us % 1'000'000));
  out.append("{\"t\":").append(t).append(",\"route\":");
  AppendJsonString(out, policy.route);
  if (!parsed || *parsed == 0) {  // cannot happen: the proxy parsed this head already
    out.append(",\"error\":\"unparsable head\"}");
    return out;
  }
  out.append(",\"method\":");
  AppendJsonString(out, head.method_text);
  out.append(",\"target\":");
  AppendJsonString(out, RedactTarget(head.target));
  out.append(",\"headers\":[");
  bool first = true;
  for (const http::Header& h : head.headers) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('[');
    AppendJsonString(out, h.name);
    out.push_back(',');
    // The route's own list, and every credential ficus knows (base/redact.h).
    bool redact = IsCredentialField(h.name);
    for (const auto& r : policy.redact_headers)
      redact = redact || http::EqualsIgnoreCase(h.name, r);
    if (redact) {
      AppendJsonString(out, "REDACTED");
    } else if (HasJwt(h.value)) {
      AppendJsonString(out, RedactJwts(h.value));
    } else {
      AppendJsonString(out, h.value);
    }
    out.push_back(']');
  }
  out.push_back(']');
  const std::string& body = slot.body;  // decoded already (chunked)
  if (!body.empty()) {
    if (IsText(body)) {
      out.append(",\"body\":");
      AppendJsonString(out, HasJwt(body) ? RedactJwts(body) : body);
    } else {
      out.append(",\"body_base64\":");
      out.push_back('"');
      AppendBase64(out, body);
      out.push_back('"');
    }
  }
  out.append(",\"body_bytes\":").append(std::to_string(slot.body_bytes));
  out.append(",\"truncated\":").append(slot.truncated ? "true" : "false").append("}");
  return out;
}

size_t Recorder::Drain(std::string& out) {
  size_t n = 0;
  std::lock_guard lock(policies_mu_);
  for (auto& w : workers_) {
    PerWorker* pw = w.load(std::memory_order_acquire);
    if (!pw) continue;
    while (Slot* s = pw->full.Pop()) {
      out.append(Format(*s, policies_[s->policy])).push_back('\n');
      pw->free.Push(s);
      ++n;
    }
  }
  return n;
}

void Recorder::WriterLoop() {
  std::string out;
  for (;;) {
    const bool stopping = stop_.load();
    out.clear();
    size_t n = Drain(out);
    size_t off = 0;
    while (off < out.size()) {
      ssize_t w = ::write(fd_, out.data() + off, out.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;  // disk full or similar: lines are lost, the proxy is not affected
      off += static_cast<size_t>(w);
    }
    written_.fetch_add(n, std::memory_order_relaxed);
    if (stopping && n == 0) return;
    if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Recorder::Flush() {
  uint64_t target = committed_.load();
  while (written_.load() < target) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

namespace {
// Leaked on purpose: recorders live until the process exits (FlushAll writes what is queued),
// and worker threads may still hold slots then, so nothing is destroyed under them.
std::map<std::string, std::unique_ptr<Recorder>>& Registry() {
  static auto* recorders = new std::map<std::string, std::unique_ptr<Recorder>>();
  return *recorders;
}
}  // namespace

namespace {
// Snapshots may be built on more than one thread (reload paths); scrapes read the list.
std::mutex& RegistryMutex() {
  static auto* mu = new std::mutex();
  return *mu;
}
}  // namespace

Recorder& Open(const std::string& path) {
  std::lock_guard lock(RegistryMutex());
  auto& r = Registry()[path];
  if (!r) r = std::make_unique<Recorder>(path);
  return *r;
}

void FlushAll() {  // after the workers stopped: no Open runs concurrently
  for (auto& [path, r] : Registry()) r->Flush();
}

void ForEachRecorder(const std::function<void(const Recorder&)>& f) {
  std::lock_guard lock(RegistryMutex());
  for (const auto& [path, r] : Registry()) f(*r);
}

bool Sample(double ratio) {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  thread_local uint64_t state = 0x9E3779B97F4A7C15ull ^ reinterpret_cast<uintptr_t>(&state);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<double>(state >> 11) * 0x1.0p-53 < ratio;
}

}  // namespace ficus::record
