// The admin API's job queue endpoints (`ficus jobs`): the queue module answers, this file
// routes, checks the token and audits.
#include <charconv>

#include "base/json.h"
#include "queue/queue.h"
#include "server/internal/admin_api.h"

namespace ficus::server {

namespace {

AdminResponse From(const queue::AdminAnswer& a) {
  AdminResponse r;
  r.status = a.status;
  r.body = a.body;
  return r;
}

AdminResponse NotAllowed(std::string_view allow) {
  AdminResponse r;
  r.status = 405;
  r.allow = std::string(allow);
  r.body = "{\"error\":\"method_not_allowed\"}\n";
  return r;
}

bool IsRead(const AdminRequest& req) { return req.method == "GET" || req.method == "HEAD"; }

// A state-changing job endpoint: the token, then the action, audited with its outcome.
template <class Action>
AdminResponse Changing(const AdminRequest& req, const AdminApiContext& ctx, std::string_view action,
                       std::string detail, Action&& run) {
  if (req.method != "POST") return NotAllowed("POST");
  if (Outcome<> auth = RequireToken(req, ctx, action); !auth) {
    JsonWriter w;
    w.BeginObject().Key("error").String("unauthorized").Key("detail").String(auth.message());
    w.EndObject();
    return From({401, w.Take() + "\n"});
  }
  queue::AdminAnswer a = run();
  AuditAuthorized(req, ctx, action, a.status == 200 ? "ok" : "rejected", std::move(detail));
  return From(a);
}

}  // namespace

AdminResponse HandleJobsApi(const AdminRequest& req, const AdminApiContext& ctx) {
  const std::string& p = req.path;
  const std::string queue_name = QueryParam(req.query, "queue").value_or("");
  if (p == "/jobs" || p == "/jobs/dead") {
    if (!IsRead(req)) return NotAllowed("GET, HEAD");
    size_t limit = 100;
    if (auto text = QueryParam(req.query, "limit")) {
      auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), limit);
      if (ec != std::errc() || end != text->data() + text->size() || limit < 1 || limit > 10000) {
        return From({400, "{\"error\":\"bad_query\",\"detail\":\"limit must be 1..10000\"}\n"});
      }
    }
    const std::string state =
        p == "/jobs/dead" ? std::string("dead") : QueryParam(req.query, "state").value_or("");
    return From(queue::ListJobs(queue_name, state, limit));
  }
  if (p == "/jobs/purge") {
    const std::string state = QueryParam(req.query, "state").value_or("");
    return Changing(req, ctx, "POST /jobs/purge",
                    "queue '" + queue_name + "' state '" + state + "'",
                    [&] { return queue::PurgeJobs(queue_name, state); });
  }
  constexpr std::string_view kRetry = "/retry";
  if (p.size() > 6 + kRetry.size() && p.ends_with(kRetry)) {
    const std::string id = p.substr(6, p.size() - 6 - kRetry.size());
    return Changing(req, ctx, "POST /jobs/ID/retry", "job " + id,
                    [&] { return queue::RetryJob(id); });
  }
  if (!IsRead(req)) return NotAllowed("GET, HEAD");
  return From(queue::ShowJob(p.substr(6)));
}

}  // namespace ficus::server
