// Phase: admit. The route's policies (policy/policy.h), in their fixed order: each passes (maybe
// adding a field for the upstream), answers the request itself, or refuses it with an Error; a
// policy may ask to wait (a queue slot, a durable write) and is then awaited. The same policies
// see the upstream's response head (ResponsePolicies) and the end of the exchange (EndPolicies).
// The runner calls these only for a route that has policies.
#include "proxy/internal/session.h"

namespace ficus::proxy {

net::Task<StepResult> Session::Admit() {
  FICUS_DCHECK(ex_.policies != nullptr && ex_.route != nullptr);
  const policy::Chain& chain = *ex_.policies;
  policy::Context& ctx = policy_ctx_.emplace(ex_.head, *ex_.route, client_ip(), ex_.id(), NowMs(),
                                             worker_.id(), worker_.loop(), added_, response_added_,
                                             static_cast<policy::BodyReader*>(this));
  for (size_t i = 0; i < chain.size(); ++i) {
    ctx.set_position(i);
    ex_.policies_admitted = static_cast<uint8_t>(i + 1);
    policy::Decision d = chain[i]->Admit(ctx);
    if (d.kind == policy::Decision::Kind::kWait) {
      if (!deferred_.empty()) [[unlikely]] {
        Status s = co_await FlushDeferred();  // earlier answers do not wait with this one
        if (!s) co_return Unexpected{s.error()};
      }
      d = co_await chain[i]->Wait(ctx);
      FICUS_DCHECK(d.kind != policy::Decision::Kind::kWait);
      ctx.set_now_ms(NowMs());
    }
    if (d.kind == policy::Decision::Kind::kPass) continue;
    // The head is consumed (a body a policy read is consumed too); an unread body is settled by
    // the answer.
    mem_.in_begin += ex_.head.head_size;
    if (d.kind == policy::Decision::Kind::kAnswer) {
      // The report names the keys ficus limited: a rate limit's 429, a concurrency limit's 503.
      if ((d.answer.status == 429 || d.answer.status == 503) &&
          (chain[i]->order() == policy::Order::kRateLimit ||
           chain[i]->order() == policy::Order::kConcurrency)) [[unlikely]] {
        taps_.CountLimitedKey(ex_, client_ip());
      }
      co_await Answer(d.answer);
      if (ctx.refresh_in_background() && ex_.response_complete && ex_.request_body_done &&
          ex_.head.framing == http::BodyFraming::kNone && !closing_) [[unlikely]] {
        mem_.in_begin -= ex_.head.head_size;  // Forward consumes the head itself
        co_return Step::kRefresh;
      }
      co_return Step::kAnswered;
    }
    co_return Unexpected{d.kind == policy::Decision::Kind::kError
                             ? d.error
                             : Error{ErrorKind::kInternal, Side::kInternal, false,
                                     "a policy's Wait asked to wait again"}};
  }
  co_return Step::kContinue;
}

policy::Decision Session::ResponsePolicies(const http::ResponseHead& resp) {
  policy::Context& ctx = *policy_ctx_;
  const policy::Chain& chain = *ex_.policies;
  for (size_t i = 0; i < chain.size(); ++i) {
    ctx.set_position(i);
    policy::Decision d = chain[i]->OnResponse(ctx, resp);
    if (d.kind != policy::Decision::Kind::kPass) return d;
  }
  return policy::Decision::Pass();
}

policy::Decision Session::ErrorPolicies(const Error& error) {
  policy::Context& ctx = *policy_ctx_;
  const policy::Chain& chain = *ex_.policies;
  for (size_t i = 0; i < chain.size(); ++i) {
    ctx.set_position(i);
    policy::Decision d = chain[i]->OnError(ctx, error);
    if (d.kind == policy::Decision::Kind::kAnswer) return d;
  }
  return policy::Decision::Pass();
}

void Session::EndPolicies() {
  policy::Context& ctx = *policy_ctx_;
  const policy::Outcome outcome{ex_.status, taps_.upstream_answered(), ex_.response_complete,
                                taps_.upstream_latency_ns()};
  const policy::Chain& chain = *ex_.policies;
  for (size_t i = ex_.policies_admitted; i-- > 0;) {
    ctx.set_position(i);
    chain[i]->End(ctx, outcome);
  }
  ex_.policies_admitted = 0;
  policy_ctx_.reset();
}

}  // namespace ficus::proxy
