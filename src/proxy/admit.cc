// Phase: admit. The route's policies (policy/policy.h), in their fixed order: each passes (maybe
// adding a field for the upstream), answers the request itself, or refuses it with an Error. The
// runner calls this only for a route that has policies.
#include "proxy/internal/session.h"

namespace ficus::proxy {

net::Task<StepResult> Session::Admit() {
  FICUS_DCHECK(ex_.policies != nullptr && ex_.route != nullptr);
  added_.clear();
  policy::Context ctx(ex_.head, client_ip(), ex_.id(), NowMs(), added_);
  for (const std::unique_ptr<policy::Policy>& p : *ex_.policies) {
    policy::Decision d = p->Admit(ctx);
    if (d.kind == policy::Decision::Kind::kPass) continue;
    mem_.in_begin += ex_.head.head_size;  // the head is consumed; the body is settled by Fail
    if (d.kind == policy::Decision::Kind::kError) co_return Unexpected{d.error};
    co_await Answer(d.answer);
    co_return Step::kAnswered;
  }
  co_return Step::kContinue;
}

}  // namespace ficus::proxy
