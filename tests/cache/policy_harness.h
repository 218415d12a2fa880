// The cache policy's test harness: a request and a response parsed from text, and a fixture that
// runs one exchange through the policy's phases (Admit, OnResponse, the body sink, End) on a
// hand-made Context. Shared by policy_test.cc and serve_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cache/internal/cache_policy.h"

namespace ficus::cache {

struct Request {
  explicit Request(std::string text) : raw(std::move(text)), fields(100) {
    http::RequestHeadParser p({}, fields);
    auto n = p.Parse(raw, head);
    EXPECT_TRUE(n && *n > 0) << raw;
  }
  std::string raw;
  std::vector<http::Header> fields;
  http::RequestHead head;
};

struct Response {
  explicit Response(std::string text, http::Method m = http::Method::kGet)
      : raw(std::move(text)), fields(100) {
    http::ResponseHeadParser p({}, fields);
    auto n = p.Parse(raw, m, head);
    EXPECT_TRUE(n && *n > 0) << raw;
  }
  std::string raw;
  std::vector<http::Header> fields;
  http::ResponseHead head;
};

class PolicyTest : public ::testing::Test {
 protected:
  PolicyTest() {
    config::Cache c;
    c.stale_if_error = std::chrono::seconds(60);
    policy_ = std::make_unique<CachePolicy>("r", c, std::make_shared<Store>(1 << 20, 1 << 16));
  }

  // One exchange: Admit, then (when it passes) the upstream's response and body.
  struct Result {
    policy::Decision decision;
    std::string added;           // fields sent upstream
    std::string response_added;  // fields the client gets
    std::string body;            // the answer's body when answered
    std::string headers;         // ... its fields and Content-Type (views End may free)
    std::string content_type;
  };
  Result Exchange(const std::string& request, const std::string& response = "",
                  const std::string& body = "", int64_t now_ms = 1'000'000'000'000) {
    Request req(request);
    Result out;
    policy::Context ctx(req.head, route_, "127.0.0.1", "id", now_ms, 0, loop_, out.added,
                        out.response_added, nullptr);
    out.decision = policy_->Admit(ctx);
    EXPECT_NE(out.decision.kind, policy::Decision::Kind::kWait);
    if (out.decision.kind == policy::Decision::Kind::kPass && !response.empty()) {
      Response resp(response, req.head.method);
      out.decision = policy_->OnResponse(ctx, resp.head);
      if (ctx.response_body_sink()) {
        ctx.response_body_sink()->Body(body);
        ctx.response_body_sink()->Done(true);
      }
    }
    if (out.decision.kind == policy::Decision::Kind::kAnswer) {
      out.body = std::string(out.decision.answer.body);  // before End unpins it
      out.headers = std::string(out.decision.answer.headers);
      out.content_type = std::string(out.decision.answer.content_type);
    }
    policy_->End(ctx, {});
    return out;
  }

  config::Route route_;
  net::Loop loop_;
  std::unique_ptr<CachePolicy> policy_;
};

}  // namespace ficus::cache
