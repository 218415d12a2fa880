// Sections: queues[] (durable job queues in data_dir) and the route keys that use them,
// `offload:` and `jobs:`.
#include <algorithm>

#include "base/base64.h"
#include "config/internal/reader.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

namespace {

// A job URL prefix: absolute, no query, no trailing slash (the id follows one).
std::string CheckJobsPath(const std::string& p) {
  if (p.size() < 2 || p[0] != '/') return "must be an absolute path such as /jobs/signup";
  if (p.back() == '/') return "must not end with '/' (the job id follows one)";
  for (char c : p) {
    if (c == '?' || c == '#' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return "must be a plain path (no query, fragment, spaces or control characters)";
  }
  return {};
}

}  // namespace

void Loader::ReadQueues(const Value& v) {
  if (!ExpectList(v)) return;
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item,
                 {"name", "max_jobs", "max_bytes", "max_body", "concurrency", "rate",
                  "attempt_timeout", "backoff", "max_backoff", "retry_on", "retention", "jobs_path",
                  "retry_after", "result_body", "retention_bytes", "callback"},
                 &f))
      continue;
    Queue q;
    q.line = item.loc.line;
    Require(f, item, "name");
    if (const Value* n = f.Get("name")) {
      if (auto s = Name(*n)) {
        q.name = *s;
        for (const Queue& other : config_.queues) {
          if (other.name == q.name)
            Error(*n, "duplicate queue name " + Quote(q.name) + " (also at line " +
                          std::to_string(other.line) + ")");
        }
      }
    }
    if (const Value* x = f.Get("max_jobs")) {
      if (auto n = Integer(*x, 1, 100'000'000)) q.max_jobs = *n;
    }
    if (const Value* x = f.Get("max_bytes")) {
      if (auto n = SizeIn(*x, 1024, 1ull << 40)) q.max_bytes = *n;
    }
    if (const Value* x = f.Get("max_body")) {
      if (auto n = SizeIn(*x, 0, 64ull << 20)) q.max_body = *n;
    }
    if (const Value* x = f.Get("concurrency")) {
      if (auto n = Integer(*x, 1, 1024)) q.concurrency = static_cast<uint32_t>(*n);
    }
    if (const Value* x = f.Get("rate")) {
      // "50/s" or a bare number of attempts per second.
      auto s = String(*x);
      if (s) {
        std::string t = *s;
        if (t.size() > 2 && t.compare(t.size() - 2, 2, "/s") == 0) t.resize(t.size() - 2);
        uint32_t n = 0;
        auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        if (t.empty() || ec != std::errc() || ptr != t.data() + t.size() || n > 1'000'000) {
          Error(*x, "expected deliveries per second such as 50/s (0..1000000), got " + Quote(*s));
        } else {
          q.rate = n;
        }
      }
    }
    if (const Value* x = f.Get("attempt_timeout")) {
      if (auto d = DurationIn(*x, Duration{10}, std::chrono::hours(1))) q.attempt_timeout = *d;
    }
    if (const Value* x = f.Get("backoff")) {
      if (auto d = DurationIn(*x, Duration{1}, std::chrono::hours(1))) q.backoff = *d;
    }
    if (const Value* x = f.Get("max_backoff")) {
      if (auto d = DurationIn(*x, Duration{1}, std::chrono::hours(24))) q.max_backoff = *d;
    }
    if (q.max_backoff < q.backoff) {
      const Value* x = f.Get("max_backoff");
      Error(x ? *x : item, "max_backoff " + FormatDuration(q.max_backoff) +
                               " is shorter than backoff " + FormatDuration(q.backoff));
    }
    if (const Value* x = f.Get("retry_on")) {
      if (ExpectList(*x)) {
        q.retry_on.clear();
        size_t k = 0;
        for (auto s = x->node.begin(); s != x->node.end(); ++s, ++k) {
          const Value status = Item(*x, *s, k);
          if (auto n = Integer(status, 400, 599)) q.retry_on.push_back(static_cast<uint16_t>(*n));
        }
      }
    }
    if (const Value* x = f.Get("retention")) {
      if (auto d = DurationIn(*x, Duration{1000}, std::chrono::hours(24 * 365))) q.retention = *d;
    }
    q.jobs_path = "/jobs/" + q.name;
    if (const Value* x = f.Get("jobs_path")) {
      if (auto s = String(*x)) {
        if (std::string bad = CheckJobsPath(*s); !bad.empty()) {
          Error(*x, bad);
        } else {
          q.jobs_path = *s;
        }
      }
    }
    if (const Value* x = f.Get("retry_after")) {
      if (auto d = DurationIn(*x, Duration{1000}, std::chrono::hours(24))) q.retry_after = *d;
    }
    if (const Value* x = f.Get("result_body")) {
      if (auto n = SizeIn(*x, 0, 16ull << 20)) q.result_body = *n;
    }
    if (const Value* x = f.Get("retention_bytes")) {
      if (auto n = SizeIn(*x, 1 << 20, 1ull << 44)) q.retention_bytes = *n;
    }
    if (const Value* x = f.Get("callback")) ReadQueueCallback(*x, &q.callback);
    config_.queues.push_back(std::move(q));
  }
}

void Loader::ReadQueueCallback(const Value& v, std::optional<QueueCallback>* out) {
  Fields f;
  if (!ReadMap(v, {"url", "secret", "request_header", "allowed_origins", "max_attempts", "timeout"},
               &f))
    return;
  QueueCallback cb;
  bool ok = true;
  if (const Value* x = f.Get("url")) {
    if (auto s = String(*x)) {
      Webhook w;
      std::string error;
      if (ParseHttpUrl(*s, &w, &error)) {
        w.url = *s;
        cb.url = std::move(w);
      } else {
        Error(*x, error);
        ok = false;
      }
    }
  }
  Require(f, v, "secret");
  if (const Value* x = f.Get("secret")) {
    if (auto s = String(*x)) {
      cb.secret = *s;
      std::string key;
      if (cb.secret.starts_with("whsec_") &&
          !DecodeBase64(std::string_view(cb.secret).substr(6), &key)) {
        Error(*x, "a secret that starts with whsec_ must be base64 after it (Standard Webhooks)");
        ok = false;
      } else if (cb.secret.size() < 16) {
        Error(*x,
              "too short: use at least 16 characters (such as whsec_ and 24 random bytes in "
              "base64), from the environment: secret: ${SIGNUP_WEBHOOK_SECRET}");
        ok = false;
      }
    }
  }
  if (const Value* x = f.Get("request_header")) {
    if (auto s = String(*x)) {
      if (s->empty() || s->find_first_of(" \t:\r\n") != std::string::npos) {
        Error(*x, "expected a header name such as Callback-Url");
        ok = false;
      } else {
        cb.request_header = ToLower(*s);
      }
    }
  }
  if (const Value* x = f.Get("allowed_origins")) {
    if (ExpectList(*x)) {
      size_t k = 0;
      for (auto it = x->node.begin(); it != x->node.end(); ++it, ++k) {
        const Value item = Item(*x, *it, k);
        auto s = String(item);
        if (!s) continue;
        Webhook w;
        std::string error;
        if (!ParseHttpUrl(*s, &w, &error)) {
          Error(item, error);
        } else if (w.target != "/") {
          Error(item, "an origin is scheme://host[:port], without a path (got " + Quote(*s) + ")");
        } else {
          cb.allowed_origins.push_back(CallbackOrigin(w.https, w.host, w.port));
        }
      }
    }
  }
  if (!cb.request_header.empty() && cb.allowed_origins.empty()) {
    Error(v,
          "request_header lets a request name its callback URL: list the origins it may "
          "name in allowed_origins (ficus would otherwise POST wherever a client asks)");
    ok = false;
  }
  if (!cb.url && cb.request_header.empty()) {
    Error(v, "a callback needs a url, or a request_header the requests name theirs in");
    ok = false;
  }
  if (const Value* x = f.Get("max_attempts")) {
    if (auto n = Integer(*x, 1, 100)) cb.max_attempts = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("timeout")) {
    if (auto d = DurationIn(*x, Duration{10}, std::chrono::minutes(10))) cb.timeout = *d;
  }
  if (ok) *out = std::move(cb);
}

void Loader::ReadOffload(const Value& v, std::optional<Offload>* out) {
  Fields f;
  if (!ReadMap(v, {"queue", "max_attempts"}, &f)) return;
  Offload o;
  bool ok = true;
  Require(f, v, "queue");
  if (const Value* q = f.Get("queue")) {
    if (auto s = String(*q)) {
      o.queue = *s;
      queue_refs_.push_back({config_.routes.size(), *s, q->loc, q->path});
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  if (const Value* x = f.Get("max_attempts")) {
    if (auto n = Integer(*x, 1, 100))
      o.max_attempts = static_cast<uint32_t>(*n);
    else
      ok = false;
  }
  if (ok) *out = std::move(o);
}

void Loader::ReadJobsApi(const Value& v, std::optional<JobsApi>* out) {
  Fields f;
  if (!ReadMap(v, {"queue"}, &f)) return;
  Require(f, v, "queue");
  const Value* q = f.Get("queue");
  if (q == nullptr) return;
  if (auto s = String(*q)) {
    queue_refs_.push_back({config_.routes.size(), *s, q->loc, q->path});
    *out = JobsApi{*s};
  }
}

// Every queue a route names is declared; a route does not both offload and serve jobs.
void Loader::CheckQueues() {
  std::vector<std::string> names;
  for (const Queue& q : config_.queues) names.push_back(q.name);
  for (const QueueRef& ref : queue_refs_) {
    if (std::find(names.begin(), names.end(), ref.queue) == names.end()) {
      Error(ref.loc, ref.path,
            "queue " + Quote(ref.queue) + " is not declared in queues (declared: " +
                (names.empty() ? std::string("none") : JoinNames(names)) + ")");
    }
  }
  for (size_t i = 0; i < config_.routes.size() && i < route_locs_.size(); ++i) {
    const Route& r = config_.routes[i];
    if (r.offload && r.jobs) {
      Error(route_locs_[i], "routes[" + std::to_string(i) + "]",
            "a route cannot both offload requests and serve job URLs: give the job URLs "
            "their own route");
    }
  }
}

}  // namespace ficus::config::internal

namespace ficus::config {

std::string CallbackOrigin(bool https, std::string_view host, uint16_t port) {
  std::string origin = https ? "https://" : "http://";
  const bool v6 = host.find(':') != std::string_view::npos;
  if (v6) origin.push_back('[');
  for (char c : host) origin.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  if (v6) origin.push_back(']');
  origin.append(":").append(std::to_string(port));
  return origin;
}

}  // namespace ficus::config
