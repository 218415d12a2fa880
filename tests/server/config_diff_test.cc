// The reload diff (POST /config's answer) from the config structs' own equality.
#include "server/internal/config_diff.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

namespace ficus::server {
namespace {

namespace json = boost::json;

const char* kBase = R"(
admin: { listen: 127.0.0.1:9901 }
listeners: [{ name: public, listen: 127.0.0.1:8080 }]
clusters:
  - { name: app, endpoints: [127.0.0.1:3000] }
  - { name: other, endpoints: [127.0.0.1:3001] }
routes:
  - { name: api, match: { path_prefix: /api }, cluster: app }
  - { name: rest, cluster: other }
slos:
  - { name: avail, routes: [api], availability: 99% }
)";

config::Config Load(const std::string& yaml) {
  config::LoadResult r = config::LoadString(yaml, "test.yaml");
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors.front().ToString());
  return r.config ? *r.config : config::Config{};
}

json::object Diff(const std::string& before, const std::string& after) {
  const std::string text = ConfigDiffJson(Load(before), Load(after));
  json::error_code ec;
  json::value v = json::parse(text, ec);
  EXPECT_FALSE(ec) << text;
  return v.is_object() ? v.as_object() : json::object{};
}

json::array Names(const json::object& diff, const char* section, const char* what) {
  return diff.at(section).as_object().at(what).as_array();
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(ConfigDiff, TheSameConfigChangesNothing) {
  json::object d = Diff(kBase, kBase);
  EXPECT_TRUE(d.at("applied").as_bool());
  for (const char* s : {"clusters", "routes", "slos"}) {
    for (const char* w : {"added", "removed", "changed"}) EXPECT_TRUE(Names(d, s, w).empty());
  }
  EXPECT_FALSE(d.at("settings_changed").as_bool());
}

// Where a section is written in the file is not what it does.
TEST(ConfigDiff, MovingItemsInTheFileChangesNothing) {
  json::object d = Diff(kBase, "\n\n# moved down\n" + std::string(kBase));
  EXPECT_TRUE(Names(d, "clusters", "changed").empty());
  EXPECT_TRUE(Names(d, "routes", "changed").empty());
  EXPECT_TRUE(Names(d, "slos", "changed").empty());
  EXPECT_FALSE(d.at("settings_changed").as_bool());
}

TEST(ConfigDiff, AddingRecordToARouteChangesTheRoute) {
  const std::string after =
      Replace(kBase, "cluster: app }", "cluster: app, record: { path: /tmp/ficus-diff.jsonl } }");
  json::object d = Diff(kBase, after);
  EXPECT_EQ(Names(d, "routes", "changed"), json::array{"api"});
}

TEST(ConfigDiff, AnyClusterFieldChangesTheCluster) {
  json::object d = Diff(kBase, Replace(kBase, "endpoints: [127.0.0.1:3001] }",
                                       "endpoints: [127.0.0.1:3001], panic_threshold: 10 }"));
  EXPECT_EQ(Names(d, "clusters", "changed"), json::array{"other"});
  EXPECT_TRUE(Names(d, "routes", "changed").empty());
}

TEST(ConfigDiff, SlosAndTelemetryAreSettings) {
  json::object d = Diff(kBase, Replace(kBase, "availability: 99%", "availability: 99.9%"));
  EXPECT_EQ(Names(d, "slos", "changed"), json::array{"avail"});
  EXPECT_TRUE(d.at("settings_changed").as_bool());
  d = Diff(kBase, std::string(kBase) + "telemetry: { repeat_sample: 8 }\n");
  EXPECT_TRUE(d.at("settings_changed").as_bool());
  d = Diff(kBase, std::string(kBase) + "access_log: { path: stdout }\n");
  EXPECT_TRUE(d.at("settings_changed").as_bool());
  d = Diff(kBase, std::string(kBase) + "timeouts: { idle: 5s }\n");
  EXPECT_TRUE(d.at("settings_changed").as_bool());
}

TEST(ConfigDiff, AddedAndRemovedByName) {
  json::object d = Diff(kBase, Replace(kBase, "name: rest", "name: rest2"));
  EXPECT_EQ(Names(d, "routes", "added"), json::array{"rest2"});
  EXPECT_EQ(Names(d, "routes", "removed"), json::array{"rest"});
  EXPECT_TRUE(Names(d, "listeners", "added").empty());
}

}  // namespace
}  // namespace ficus::server
