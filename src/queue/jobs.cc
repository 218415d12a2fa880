// The job URL: `GET <jobs_path>/<id>` on a route with `jobs: { queue: ... }` answers the job's
// state, attempts, timestamps and, once it has one, the application's answer (the asynchronous
// request-reply pattern). The id is 128 random bits: knowing the URL is the permission.
#include <string>

#include "base/json.h"
#include "http/http.h"
#include "queue/internal/service.h"

namespace ficus::queue::internal {

namespace {

using policy::Context;
using policy::Decision;

constexpr std::string_view kJson = "application/json";

// A lookup the writer runs between commits (reads see every committed job).
class Lookup final : public Work {
 public:
  Lookup(net::Loop& loop, std::string_view id) : wakeup_(loop), id_(id) {}
  void Run(Store& store) override { found_ = store.Get(id_, &view_); }
  void Done(bool) override { wakeup_.Signal(); }
  net::Wakeup& wakeup() { return wakeup_; }
  bool found() const { return found_; }
  const JobView& view() const { return view_; }
  std::string json;  // the answer's body

 private:
  net::Wakeup wakeup_;
  std::string id_;
  bool found_ = false;
  JobView view_;
};

class JobsPolicy final : public policy::Policy {
 public:
  JobsPolicy(const config::Queue& queue, std::shared_ptr<QueueRuntime> rt)
      : queue_(queue), rt_(std::move(rt)), prefix_(queue.jobs_path + "/") {}

  policy::Order order() const override { return policy::Order::kOffload; }

  Decision Admit(Context& ctx) override {
    const http::RequestHead& head = ctx.request();
    std::string_view path = head.path;
    if (path.substr(0, prefix_.size()) != prefix_ || !IsJobId(path.substr(prefix_.size())))
      return Decision::Respond({404, {}, kJson, kNoJob});
    if (head.method != http::Method::kGet && head.method != http::Method::kHead)
      return Decision::Respond({405, "Allow: GET, HEAD\r\n", kJson, kMethod});
    if (!rt_) return Decision::Respond({503, {}, kJson, kNotRunning});
    return Decision::Wait();
  }

  net::Task<Decision> Wait(Context& ctx) override {
    const std::string_view id = ctx.request().path.substr(prefix_.size());
    auto* l = new Lookup(ctx.loop(), id);
    ctx.state() = reinterpret_cast<uint64_t>(l);
    rt_->writer->Submit(l);
    co_await l->wakeup();
    if (!l->found() || l->view().queue != queue_.name)
      co_return Decision::Respond({404, {}, kJson, kNoJob});
    l->json = JobJson(l->view(), queue_.jobs_path);
    co_return Decision::Respond({200, "Cache-Control: no-store\r\n", kJson, l->json});
  }

  void End(Context& ctx, const policy::Outcome&) override {
    delete reinterpret_cast<Lookup*>(ctx.state());
    ctx.state() = 0;
  }

 private:
  static constexpr std::string_view kNoJob =
      "{\"error\":\"no_such_job\",\"detail\":\"no job with this id (or it is past retention)\"}\n";
  static constexpr std::string_view kMethod =
      "{\"error\":\"method_not_allowed\",\"detail\":\"a job URL answers GET and HEAD\"}\n";
  static constexpr std::string_view kNotRunning =
      "{\"error\":\"queue_unavailable\",\"detail\":\"the job queue is not running\"}\n";

  config::Queue queue_;
  std::shared_ptr<QueueRuntime> rt_;
  std::string prefix_;
};

}  // namespace

std::string JobJson(const JobView& v, const std::string& jobs_path) {
  JsonWriter w;
  w.BeginObject();
  w.Key("id").String(v.id).Key("queue").String(v.queue);
  if (!jobs_path.empty()) w.Key("location").String(jobs_path + "/" + v.id);
  w.Key("state").String(StateName(v.state));
  w.Key("attempts").Uint(v.attempts).Key("max_attempts").Uint(v.max_attempts);
  w.Key("created_ms").Int(v.created_ms).Key("updated_ms").Int(v.updated_ms);
  if (v.state == State::kQueued && v.next_ms != 0) w.Key("next_attempt_ms").Int(v.next_ms);
  w.Key("request").BeginObject().Key("method").String(v.method).Key("target").String(v.target);
  w.EndObject();
  if (v.result_status != 0) {
    w.Key("response").BeginObject().Key("status").Int(v.result_status).Key("headers");
    w.BeginObject();
    ForEachField(v.result_headers, [&w](std::string_view name, std::string_view value) {
      w.Key(name).String(value);
    });
    w.EndObject();
    w.Key("body").String(v.result_body).EndObject();
  }
  if (!v.error.empty()) w.Key("error").String(v.error);
  w.EndObject();
  std::string out = w.Take();
  out += '\n';
  return out;
}

std::unique_ptr<policy::Policy> MakeJobsPolicy(const config::Queue& queue,
                                               std::shared_ptr<QueueRuntime> runtime) {
  return std::make_unique<JobsPolicy>(queue, std::move(runtime));
}

}  // namespace ficus::queue::internal
