// The access-log field names the config accepts (config cannot depend on observe) are observe's,
// in order: a field the writer knows is one `access_log.fields` may name.
#include "config/internal/access_log_fields.h"

#include <gtest/gtest.h>

#include "observe/observe.h"

namespace ficus {
namespace {

TEST(AccessLogFields, TheConfigListsEveryFieldTheWriterKnowsInOrder) {
  const std::vector<std::string> names = config::internal::AccessLogFieldNames();
  ASSERT_EQ(names.size(), static_cast<size_t>(observe::kLogFieldCount));
  for (int i = 0; i < observe::kLogFieldCount; ++i) {
    EXPECT_EQ(observe::LogFieldName(static_cast<observe::LogField>(i)), names[i]);
  }
}

}  // namespace
}  // namespace ficus
