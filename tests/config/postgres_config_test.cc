// `postgres:` and listeners of kind postgres: defaults, every key, users from the environment
// and from an auth file, the errors for bad values (file, line, field), the redacted YAML.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "config/config.h"

namespace ficus::config {
namespace {

using ::testing::HasSubstr;

const char* kBase =
    "listeners:\n"
    "  - { listen: 127.0.0.1:8080 }\n"
    "  - { name: db, listen: 127.0.0.1:6432, kind: postgres }\n"
    "clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\n"
    "routes: [{ match: { path_prefix: / }, cluster: app }]\n";

LoadResult Load(const std::string& pg, LoadOptions options = {}) {
  return LoadString(std::string(kBase) + pg, "test.yaml", options);
}

std::string Errors(const LoadResult& r) {
  std::string out;
  for (const auto& e : r.errors) out += e.ToString() + "\n";
  return out;
}

TEST(PostgresConfig, Defaults) {
  LoadResult r = Load(
      "postgres:\n"
      "  databases: [{ name: shop, primary: 127.0.0.1:5432 }]\n"
      "  users: [{ name: app, password: secret }]\n");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  EXPECT_EQ(r.config->listeners[1].kind, ListenerKind::kPostgres);
  EXPECT_EQ(r.config->listeners[0].kind, ListenerKind::kHttp);
  const PgDatabase& d = r.config->postgres.databases.at(0);
  EXPECT_EQ(d.name, "shop");
  EXPECT_EQ(d.dbname, "shop");
  EXPECT_EQ(d.host, "127.0.0.1");
  EXPECT_EQ(d.port, 5432);
  EXPECT_EQ(d.pool_size, 20u);
  EXPECT_EQ(d.pool_mode, PgPoolMode::kTransaction);
  EXPECT_EQ(d.max_waiting, 1000u);
  EXPECT_EQ(d.wait_timeout, Duration(5000));
  EXPECT_EQ(r.config->postgres.users.at(0).password, "secret");
  EXPECT_EQ(r.config->postgres.server_reset_query, "DISCARD ALL");
}

TEST(PostgresConfig, EveryKeyPasswordFromTheEnvironmentAndTheRedactedYaml) {
  LoadOptions o;
  o.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "APP_DB_PASSWORD") return "from-env";
    return std::nullopt;
  };
  LoadResult r = Load(
      "postgres:\n"
      "  databases:\n"
      "    - { name: shop, primary: 127.0.0.1:5433, dbname: shop_prod, pool_size: 5,\n"
      "        pool_mode: session, max_waiting: 10, wait_timeout: 250ms }\n"
      "  users: [{ name: app, password: '${APP_DB_PASSWORD}' }]\n"
      "  connect_timeout: 2s\n"
      "  client_login_timeout: 3s\n"
      "  slow_query: 50ms\n"
      "  max_message: 64KiB\n"
      "  server_reset_query: RESET ALL\n",
      o);
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  const Postgres& pg = r.config->postgres;
  const PgDatabase& d = pg.databases.at(0);
  EXPECT_EQ(d.dbname, "shop_prod");
  EXPECT_EQ(d.port, 5433);
  EXPECT_EQ(d.pool_size, 5u);
  EXPECT_EQ(d.pool_mode, PgPoolMode::kSession);
  EXPECT_EQ(d.max_waiting, 10u);
  EXPECT_EQ(d.wait_timeout, Duration(250));
  EXPECT_EQ(pg.users.at(0).password, "from-env");
  EXPECT_EQ(pg.connect_timeout, Duration(2000));
  EXPECT_EQ(pg.client_login_timeout, Duration(3000));
  EXPECT_EQ(pg.slow_query, Duration(50));
  EXPECT_EQ(pg.max_message, 64u * 1024);
  EXPECT_EQ(pg.server_reset_query, "RESET ALL");
  const std::string yaml = ToRedactedYaml(*r.config);
  EXPECT_THAT(yaml, HasSubstr("kind: postgres"));
  EXPECT_THAT(yaml, HasSubstr("pool_mode: session"));
  EXPECT_THAT(yaml, HasSubstr("<redacted>"));
  EXPECT_EQ(yaml.find("from-env"), std::string::npos);
}

TEST(PostgresConfig, UsersFromAnAuthFile) {
  char path[] = "/tmp/ficus-userlist-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream f(path);
    f << "; pgbouncer's format\n\"app\" \"p\"\"w\"\n\n\"reporting\" "
         "\"SCRAM-SHA-256$4096:c2FsdA==$a:b\"\n";
  }
  LoadResult r = Load(std::string("postgres:\n"
                                  "  databases: [{ name: shop, primary: 127.0.0.1:5432 }]\n"
                                  "  auth_file: ") +
                      path + "\n");
  // A verifier authenticates clients only: the file's second user has no server password.
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  ASSERT_EQ(r.config->postgres.users.size(), 2u);
  EXPECT_EQ(r.config->postgres.users[0].name, "app");
  EXPECT_EQ(r.config->postgres.users[0].password, "p\"w");
  EXPECT_TRUE(r.config->postgres.users[0].from_auth_file);
  {
    std::ofstream f(path);
    f << "\"app\" \"pw\"\napp pw\n";
  }
  r = Load(std::string("postgres:\n"
                       "  databases: [{ name: shop, primary: 127.0.0.1:5432 }]\n"
                       "  auth_file: ") +
           path + "\n");
  EXPECT_THAT(Errors(r), HasSubstr(std::string("test.yaml:8:14: postgres.auth_file: ") + path +
                                   ":2: expected two quoted fields"));
  std::remove(path);
}

TEST(PostgresConfig, ErrorsNameFileLineAndField) {
  LoadResult r = Load(
      "postgres:\n"
      "  databases:\n"
      "    - { name: shop, primary: 127.0.0.1:5432, pool_mode: statement, pool_size: 0 }\n"
      "    - { name: shop, primary: 'nohost:x' }\n"
      "  users: [{ name: app, password: '' }]\n");
  const std::string e = Errors(r);
  EXPECT_THAT(e, HasSubstr("test.yaml:8:57: postgres.databases[0].pool_mode: unknown pool mode "
                           "'statement'; expected session or transaction"));
  EXPECT_THAT(
      e, HasSubstr("test.yaml:8:79: postgres.databases[0].pool_size: must be 1..10000, got 0"));
  EXPECT_THAT(e, HasSubstr("postgres.databases[1]: duplicate database name 'shop'"));
  EXPECT_THAT(e, HasSubstr("postgres.databases[1].primary"));
  EXPECT_THAT(e, HasSubstr("postgres.users[0].password: must not be empty"));

  r = LoadString(
      "listeners: [{ listen: 127.0.0.1:6432, kind: postgress }]\n"
      "clusters: [{ name: app, endpoints: [127.0.0.1:3000] }]\n"
      "routes: [{ match: { path_prefix: / }, cluster: app }]\n",
      "test.yaml");
  EXPECT_THAT(Errors(r), HasSubstr("test.yaml:1:45: listeners[0].kind: unknown listener kind "
                                   "'postgress'; expected http or postgres"));
  r = LoadString(std::string(kBase), "test.yaml");
  EXPECT_THAT(Errors(r), HasSubstr("test.yaml:3:47: listeners[1].kind: a postgres listener needs "
                                   "a postgres: section with databases"));
}

TEST(PostgresConfig, ReplicasLagReadYourWritesAndHealthChecks) {
  LoadResult r = Load(
      "postgres:\n"
      "  databases:\n"
      "    - { name: shop, primary: 127.0.0.1:5432, replicas: [127.0.0.1:5433, '[::1]:5434'],\n"
      "        max_replica_lag: 250ms, read_your_writes: false }\n"
      "    - { name: reports, primary: 127.0.0.1:5432, replicas: [127.0.0.1:5433],\n"
      "        read_only: true }\n"
      "  users: [{ name: app, password: a }, { name: monitor, password: m }]\n"
      "  health_check_interval: 200ms\n"
      "  health_check_timeout: 1s\n"
      "  health_check_user: monitor\n");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  const Postgres& pg = r.config->postgres;
  const PgDatabase& d = pg.databases.at(0);
  ASSERT_EQ(d.replicas.size(), 2u);
  EXPECT_EQ(d.replicas[0].Address(), "127.0.0.1:5433");
  EXPECT_EQ(d.replicas[1].Address(), "[::1]:5434");
  EXPECT_EQ(d.max_replica_lag, Duration(250));
  EXPECT_FALSE(d.read_your_writes);
  EXPECT_FALSE(d.read_only);
  const PgDatabase& reports = pg.databases.at(1);
  EXPECT_EQ(reports.max_replica_lag, Duration(1000));  // the default
  EXPECT_TRUE(reports.read_your_writes);
  EXPECT_TRUE(reports.read_only);
  EXPECT_EQ(pg.health_check_interval, Duration(200));
  EXPECT_EQ(pg.health_check_timeout, Duration(1000));
  EXPECT_EQ(pg.health_check_user, "monitor");
  const std::string yaml = ToRedactedYaml(*r.config);
  EXPECT_THAT(yaml, HasSubstr("replicas: [127.0.0.1:5433, \"[::1]:5434\"]"));
  EXPECT_THAT(yaml, HasSubstr("max_replica_lag: 250ms"));
  EXPECT_THAT(yaml, HasSubstr("read_only: true"));
  EXPECT_THAT(yaml, HasSubstr("health_check_user: \"monitor\""));
  // Defaults: a database without replicas, checks every second.
  r = Load(
      "postgres:\n"
      "  databases: [{ name: shop, primary: 127.0.0.1:5432 }]\n"
      "  users: [{ name: app, password: a }]\n");
  ASSERT_TRUE(r.errors.empty()) << Errors(r);
  EXPECT_TRUE(r.config->postgres.databases[0].replicas.empty());
  EXPECT_EQ(r.config->postgres.health_check_interval, Duration(1000));
  EXPECT_EQ(r.config->postgres.health_check_timeout, Duration(2000));
}

TEST(PostgresConfig, ReplicaErrorsNameFileLineAndField) {
  LoadResult r = Load(
      "postgres:\n"
      "  databases:\n"
      "    - { name: shop, primary: 127.0.0.1:5432, replicas: [127.0.0.1:5432, 127.0.0.1:5433,\n"
      "        127.0.0.1:5433, 'nohost:x'], max_replica_lag: 2d, read_only: maybe }\n"
      "    - { name: solo, primary: 127.0.0.1:5432, max_replica_lag: 1s }\n"
      "  users: [{ name: app, password: a }]\n"
      "  health_check_interval: 1ms\n"
      "  health_check_user: nobody\n");
  const std::string e = Errors(r);
  EXPECT_THAT(e, HasSubstr("test.yaml:8:57: postgres.databases[0].replicas[0]: is the primary's "
                           "address; a replica must be another server"));
  EXPECT_THAT(e, HasSubstr("test.yaml:9:9: postgres.databases[0].replicas[2]: duplicate replica "
                           "127.0.0.1:5433"));
  EXPECT_THAT(e, HasSubstr("postgres.databases[0].replicas[3]"));
  EXPECT_THAT(e, HasSubstr("test.yaml:9:55: postgres.databases[0].max_replica_lag: must be between "
                           "0s and 24h, got 2d"));
  EXPECT_THAT(e,
              HasSubstr("test.yaml:9:70: postgres.databases[0].read_only: expected true or false"));
  EXPECT_THAT(e, HasSubstr("test.yaml:10:63: postgres.databases[1].max_replica_lag: has no effect "
                           "without replicas"));
  EXPECT_THAT(e, HasSubstr("test.yaml:12:26: postgres.health_check_interval:"));
  EXPECT_THAT(e, HasSubstr("test.yaml:13:22: postgres.health_check_user: unknown user 'nobody' "
                           "(not in users: or the auth_file)"));
}

}  // namespace
}  // namespace ficus::config
