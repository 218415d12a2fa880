// ficus::policy — the unit a route's request path is extended by. A policy runs at admit, after
// route and before the upstream: it lets the request pass, changes it (adds a field sent
// upstream), or answers it itself (401, 429, 503, 304, 202, a cached 200) and ends the chain.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/base.h"
#include "http/http.h"

namespace ficus::policy {

// A route's chain runs in this order, whatever order the config lists them in (docs/
// architecture.md, "How to add a policy"): who may ask, how often, how many at once, which
// variant, whether a stored answer will do, whether the work waits.
enum class Order : uint8_t { kAuth, kRateLimit, kConcurrency, kFlags, kCache, kOffload };

// An answer a policy gives in place of the upstream. Every view must outlive the Admit call that
// returns it (static text, or storage the policy owns).
struct Answer {
  int status = 200;
  std::string_view headers;       // extra fields, raw "Name: value\r\n" lines; may be empty
  std::string_view content_type;  // empty: no Content-Type field
  std::string_view body;
};

// What Admit decides: pass (the next policy, then the upstream), answer, or fail with an Error
// that the fail phase turns into a status and a JSON body like any other.
struct Decision {
  enum class Kind : uint8_t { kPass, kAnswer, kError };
  Kind kind = Kind::kPass;
  Answer answer;  // kAnswer
  Error error;    // kError

  static Decision Pass() { return {}; }
  static Decision Respond(const Answer& a) { return {Kind::kAnswer, a, {}}; }
  static Decision Refuse(const Error& e) { return {Kind::kError, {}, e}; }
};

// The request as the admit phase shows it to a policy. Lives for one admit phase, on the worker
// thread that serves the request.
class Context {
 public:
  Context(const http::RequestHead& request, std::string_view client_ip, std::string_view request_id,
          int64_t now_ms, std::string& added)
      : request_(request),
        client_ip_(client_ip),
        request_id_(request_id),
        now_ms_(now_ms),
        added_(added) {}

  const http::RequestHead& request() const { return request_; }
  std::string_view client_ip() const { return client_ip_; }
  std::string_view request_id() const { return request_id_; }
  int64_t now_ms() const { return now_ms_; }  // the worker's coarse clock

  // Adds a field to the request head sent upstream (after the client's fields). REQUIRES: a
  // valid field name and value (no CR or LF). The text is copied into storage the connection
  // keeps, so adding allocates only the first time a connection needs the room.
  void AddHeader(std::string_view name, std::string_view value) {
    added_.append(name).append(": ").append(value).append("\r\n");
  }

 private:
  const http::RequestHead& request_;
  std::string_view client_ip_;
  std::string_view request_id_;
  int64_t now_ms_;
  std::string& added_;
};

// One configured policy of one route. Built once per config snapshot, shared by every worker:
// Admit and OnResponse may run on several worker threads at once, so per-request state lives in
// the Context, and shared state is the policy's own to synchronize (or keep per worker).
class Policy {
 public:
  virtual ~Policy() = default;
  virtual Order order() const = 0;
  virtual Decision Admit(Context& ctx) = 0;
  // The upstream's response head of a request the whole chain passed (a cache's store
  // decision, a limit's feedback). Not called for answered or failed requests.
  virtual void OnResponse(const http::RequestHead& /*request*/,
                          const http::ResponseHead& /*response*/) {}
};

// A route's policies in Order. Empty for a route without any: the admit phase then costs one
// branch, no virtual call and no allocation.
using Chain = std::vector<std::unique_ptr<Policy>>;

}  // namespace ficus::policy
