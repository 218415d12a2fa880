// Job callbacks: the Standard Webhooks signature (the specification's own test vector), the
// message, and which URLs a request may name.
#include "queue/internal/callback.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace ficus::queue::internal {
namespace {

using ::testing::HasSubstr;

TEST(CallbackTest, SignsAsStandardWebhooksSpecify) {
  // The example of the Standard Webhooks specification and its reference libraries.
  EXPECT_EQ(SignWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                        1614265330, "{\"test\": 2432232314}"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // A secret without the prefix is the key itself; another key, another signature.
  EXPECT_NE(SignWebhook("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                        1614265330, "{\"test\": 2432232314}"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(CallbackTest, TheMessageIsTheJobAsItsUrlShowsIt) {
  JobView v;
  v.id = std::string(16, '0') + std::string(32, 'a');
  v.queue = "signup";
  v.state = State::kDead;
  v.attempts = 5;
  v.max_attempts = 5;
  v.created_ms = 1000;
  v.updated_ms = 1614265330123;
  v.method = "POST";
  v.target = "/signup";
  v.result_status = 503;
  const std::string body = CallbackPayload(v, "/jobs/signup", 1614265330123);
  EXPECT_THAT(body, HasSubstr("\"type\":\"job.dead\""));
  EXPECT_THAT(body, HasSubstr("\"timestamp\":\"2021-02-25T15:02:10.123Z\""));
  EXPECT_THAT(body, HasSubstr("\"location\":\"/jobs/signup/" + v.id + "\""));
  EXPECT_THAT(body, HasSubstr("\"status\":503"));
  EXPECT_EQ(body.back(), '}');
  // One id per run of the job: every retry of the message keeps it.
  EXPECT_EQ(CallbackMessageId(v), CallbackMessageId(v));
  JobView again = v;
  again.updated_ms += 1;
  EXPECT_NE(CallbackMessageId(again), CallbackMessageId(v));
}

TEST(CallbackTest, ARequestMayNameOnlyAnAllowedOrigin) {
  config::QueueCallback cb;
  cb.request_header = "callback-url";
  cb.allowed_origins = {"http://127.0.0.1:9000", "https://hooks.example.com:443"};
  EXPECT_EQ(CheckRequestedCallback(cb, "http://127.0.0.1:9000/done?x=1"), "");
  EXPECT_EQ(CheckRequestedCallback(cb, "https://HOOKS.example.com/a"), "");
  EXPECT_THAT(CheckRequestedCallback(cb, "http://127.0.0.1:9001/done"),
              HasSubstr("not in the queue's allowed_origins"));
  EXPECT_THAT(CheckRequestedCallback(cb, "http://hooks.example.com/a"),  // http, not https
              HasSubstr("not in the queue's allowed_origins"));
  EXPECT_THAT(CheckRequestedCallback(cb, "http://user@127.0.0.1:9000/"), HasSubstr("not valid"));
  EXPECT_THAT(CheckRequestedCallback(cb, "gopher://127.0.0.1:9000/"), HasSubstr("not valid"));
}

}  // namespace
}  // namespace ficus::queue::internal
