// Offline tools (`ficus check`, `ficus report`, `ficus slo rules`) load a config without the
// secrets `ficus run` reads from the environment: an unset variable is a warning there, still an
// error for `ficus run`.
#include <gtest/gtest.h>

#include "config/config.h"

namespace ficus::config {
namespace {

constexpr char kYaml[] = R"(listeners: [{ name: public, listen: 127.0.0.1:8080 }]
clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]
routes: [{ name: all, match: { path_prefix: / }, cluster: app }]
admin: { listen: 0.0.0.0:9901, token: "${FICUS_OFFLINE_TEST_TOKEN}" }
data_dir: "${FICUS_OFFLINE_TEST_DIR:-/tmp/x}"
)";

LoadOptions WithEnv(bool offline) {
  LoadOptions o;
  o.getenv = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  o.offline = offline;
  return o;
}

TEST(OfflineLoad, AnUnsetVariableIsAWarningOffline) {
  LoadResult r = LoadString(kYaml, "ficus.yaml", WithEnv(true));
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].ToString());
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.config->admin.token, "");
  EXPECT_EQ(r.config->data_dir, "/tmp/x");  // a default still applies
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].field, "admin.token");
  EXPECT_EQ(r.warnings[0].line, 4);
  EXPECT_NE(r.warnings[0].reason.find("FICUS_OFFLINE_TEST_TOKEN is not set"), std::string::npos)
      << r.warnings[0].reason;
}

TEST(OfflineLoad, AnUnsetVariableIsStillAnErrorForRun) {
  LoadResult r = LoadString(kYaml, "ficus.yaml", WithEnv(false));
  EXPECT_FALSE(r.config);
  bool named = false;
  for (const ConfigError& e : r.errors)
    named = named || (e.field == "admin.token" &&
                      e.reason == "environment variable FICUS_OFFLINE_TEST_TOKEN is not set");
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace ficus::config
