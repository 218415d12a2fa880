// Section: postgres (the PostgreSQL wire proxy, src/pg): databases, users, the auth file, and
// the check that a listener of kind postgres has databases to serve.
#include <sys/socket.h>

#include <fstream>
#include <sstream>

#include "config/internal/reader.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

namespace {

// A PostgreSQL identifier as a client sends it in its StartupMessage: any text without NUL,
// at most 63 bytes (NAMEDATALEN - 1).
std::string CheckPgName(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > 63) return "is longer than 63 bytes (PostgreSQL's NAMEDATALEN - 1)";
  return {};
}

// One line of pgbouncer's userlist.txt: `"user" "password"` (a doubled quote inside a quoted
// field is a quote). Empty lines and lines starting with ';' or '#' are skipped.
bool ParseUserListLine(std::string_view line, PgUser* user, std::string* why) {
  std::string fields[2];
  size_t i = 0;
  for (std::string& field : fields) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size() || line[i] != '"') {
      *why = "expected two quoted fields: \"user\" \"password\"";
      return false;
    }
    ++i;
    for (;;) {
      if (i >= line.size()) {
        *why = "unterminated quoted field";
        return false;
      }
      if (line[i] == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          i += 2;
          continue;
        }
        ++i;
        break;
      }
      field += line[i++];
    }
  }
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
  if (i != line.size()) {
    *why = "unexpected text after the password";
    return false;
  }
  user->name = fields[0];
  user->password = fields[1];
  return true;
}

}  // namespace

void Loader::ReadAuthFile(const Value& v, Postgres* pg) {
  std::optional<std::string> path = String(v);
  if (!path) return;
  pg->auth_file = *path;
  std::ifstream in(*path);
  if (!in) {
    Error(v, "cannot read auth file " + Quote(*path));
    return;
  }
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string_view t = line;
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    if (t.empty() || t == "\r" || t.front() == ';' || t.front() == '#') continue;
    PgUser u;
    std::string why;
    if (!ParseUserListLine(t, &u, &why)) {
      Error(v, *path + ":" + std::to_string(n) + ": " + why);
      continue;
    }
    if (std::string bad = CheckPgName(u.name); !bad.empty()) {
      Error(v, *path + ":" + std::to_string(n) + ": user name " + bad);
      continue;
    }
    bool duplicate = false;
    for (const PgUser& other : pg->users) duplicate |= other.name == u.name;
    if (duplicate) {
      Error(v, *path + ":" + std::to_string(n) + ": user " + Quote(u.name) + " is defined twice");
      continue;
    }
    u.from_auth_file = true;
    pg->users.push_back(std::move(u));
  }
}

bool Loader::ReadPgDatabase(const Value& item, PgDatabase* d) {
  Fields f;
  if (!ReadMap(item,
               {"name", "primary", "dbname", "pool_size", "pool_mode", "max_waiting",
                "wait_timeout", "replicas", "max_replica_lag", "read_your_writes", "read_only",
                "sslmode", "sslrootcert", "sslcert", "sslkey"},
               &f))
    return false;
  d->line = item.loc.line;
  Require(f, item, "name");
  Require(f, item, "primary");
  if (const Value* x = f.Get("name")) {
    if (auto s = String(*x)) {
      if (std::string bad = CheckPgName(*s); !bad.empty()) {
        Error(*x, "database name " + bad);
      } else {
        d->name = *s;
      }
    }
  }
  if (const Value* x = f.Get("primary")) {
    if (std::optional<Endpoint> e = ReadEndpoint(*x)) {
      d->host = e->host;
      d->hostname = e->hostname;
      d->port = e->port;
    }
  }
  d->dbname = d->name;
  if (const Value* x = f.Get("dbname")) {
    if (auto s = String(*x)) {
      if (std::string bad = CheckPgName(*s); !bad.empty()) {
        Error(*x, "dbname " + bad);
      } else {
        d->dbname = *s;
      }
    }
  }
  if (const Value* x = f.Get("pool_size")) {
    if (auto n = Integer(*x, 1, 10000)) d->pool_size = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("pool_mode")) {
    if (auto s = String(*x)) {
      if (*s == "session") {
        d->pool_mode = PgPoolMode::kSession;
      } else if (*s == "transaction") {
        d->pool_mode = PgPoolMode::kTransaction;
      } else {
        Error(*x, "unknown pool mode " + Quote(*s) + "; expected session or transaction");
      }
    }
  }
  if (const Value* x = f.Get("max_waiting")) {
    if (auto n = Integer(*x, 0, 1'000'000)) d->max_waiting = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("wait_timeout")) {
    if (auto t = DurationIn(*x, Duration{1}, std::chrono::hours(1))) d->wait_timeout = *t;
  }
  if (const Value* x = f.Get("replicas"); x && ExpectList(*x)) {
    size_t i = 0;
    for (auto it = x->node.begin(); it != x->node.end(); ++it, ++i) {
      const Value item = Item(*x, *it, i);
      std::optional<Endpoint> e = ReadEndpoint(item);
      if (!e) continue;
      PgServer r{e->host, e->hostname, e->port};
      if (r.host == d->host && r.port == d->port) {
        Error(item, "is the primary's address; a replica must be another server");
        continue;
      }
      bool duplicate = false;
      for (const PgServer& other : d->replicas) duplicate |= other == r;
      if (duplicate) {
        Error(item, "duplicate replica " + JoinHostPort(r.host, r.port));
        continue;
      }
      d->replicas.push_back(std::move(r));
    }
    if (d->replicas.size() > 64) Error(*x, "at most 64 replicas per database");
  }
  if (const Value* x = f.Get("max_replica_lag")) {
    if (auto t = DurationIn(*x, Duration{0}, std::chrono::hours(24))) d->max_replica_lag = *t;
  }
  if (const Value* x = f.Get("read_your_writes")) {
    if (auto b = Bool(*x)) d->read_your_writes = *b;
  }
  if (const Value* x = f.Get("read_only")) {
    if (auto b = Bool(*x)) d->read_only = *b;
  }
  ReadPgServerTls(f, d);
  for (const char* key : {"max_replica_lag", "read_your_writes"}) {
    if (const Value* x = f.Get(key); x && d->replicas.empty())
      Error(*x, "has no effect without replicas");
  }
  return true;
}

void Loader::ReadPostgres(const Value& v) {
  Fields f;
  if (!ReadMap(v,
               {"databases", "users", "auth_file", "connect_timeout", "client_login_timeout",
                "slow_query", "max_message", "server_reset_query", "health_check_interval",
                "health_check_timeout", "health_check_user", "tls"},
               &f))
    return;
  Postgres& pg = config_.postgres;
  postgres_loc_ = v.loc;
  Require(f, v, "databases");
  if (const Value* x = f.Get("databases"); x && ExpectList(*x)) {
    size_t i = 0;
    for (auto it = x->node.begin(); it != x->node.end(); ++it, ++i) {
      const Value item = Item(*x, *it, i);
      PgDatabase d;
      if (!ReadPgDatabase(item, &d)) continue;
      for (const PgDatabase& other : pg.databases) {
        if (!d.name.empty() && other.name == d.name)
          Error(item, "duplicate database name " + Quote(d.name) + " (also at line " +
                          std::to_string(other.line) + ")");
      }
      pg.databases.push_back(std::move(d));
    }
    if (x->node.size() == 0) Error(*x, "at least one database is required");
  }
  if (const Value* x = f.Get("users"); x && ExpectList(*x)) {
    size_t i = 0;
    for (auto it = x->node.begin(); it != x->node.end(); ++it, ++i) {
      const Value item = Item(*x, *it, i);
      Fields u;
      if (!ReadMap(item, {"name", "password", "server_password"}, &u)) continue;
      Require(u, item, "name");
      Require(u, item, "password");
      PgUser user;
      if (const Value* n = u.Get("name")) {
        if (auto s = String(*n)) {
          if (std::string bad = CheckPgName(*s); !bad.empty()) {
            Error(*n, "user name " + bad);
          } else {
            user.name = *s;
          }
          for (const PgUser& other : pg.users) {
            if (other.name == user.name) Error(*n, "duplicate user " + Quote(user.name));
          }
        }
      }
      if (const Value* p = u.Get("password")) {
        if (auto s = String(*p)) {
          if (s->empty()) Error(*p, "must not be empty (an unset ${VAR} is an error too)");
          user.password = *s;
        }
      }
      if (const Value* p = u.Get("server_password")) {
        if (auto s = String(*p)) user.server_password = *s;
      }
      if (user.password.starts_with("SCRAM-SHA-256$") && user.server_password.empty()) {
        Error(item,
              "a SCRAM verifier authenticates clients only: set server_password for the "
              "server");
      }
      pg.users.push_back(std::move(user));
    }
  }
  if (const Value* x = f.Get("auth_file")) ReadAuthFile(*x, &pg);
  if (pg.users.empty() && f.Get("databases")) {
    Error(v, "no users: list them under users: or in an auth_file");
  }
  if (const Value* x = f.Get("connect_timeout")) {
    if (auto t = DurationIn(*x, Duration{1}, std::chrono::minutes(10))) pg.connect_timeout = *t;
  }
  if (const Value* x = f.Get("client_login_timeout")) {
    if (auto t = DurationIn(*x, Duration{1}, std::chrono::minutes(10)))
      pg.client_login_timeout = *t;
  }
  if (const Value* x = f.Get("slow_query")) {
    if (auto t = DurationIn(*x, Duration{0}, std::chrono::hours(1))) pg.slow_query = *t;
  }
  if (const Value* x = f.Get("max_message")) {
    if (auto n = SizeIn(*x, 1024, 1ull << 30)) pg.max_message = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("server_reset_query")) {
    if (auto s = String(*x)) pg.server_reset_query = *s;
  }
  if (const Value* x = f.Get("health_check_interval")) {
    if (auto t = DurationIn(*x, Duration{10}, std::chrono::minutes(10)))
      pg.health_check_interval = *t;
  }
  if (const Value* x = f.Get("health_check_timeout")) {
    if (auto t = DurationIn(*x, Duration{10}, std::chrono::minutes(10)))
      pg.health_check_timeout = *t;
  }
  if (const Value* x = f.Get("tls")) ReadTlsCertificate(*x, &pg.tls, &pg.tls_required);
  if (const Value* x = f.Get("health_check_user")) {
    if (auto s = String(*x)) {
      bool known = false;
      for (const PgUser& u : pg.users) known |= u.name == *s;
      if (!known) {
        Error(*x, "unknown user " + Quote(*s) + " (not in users: or the auth_file)");
      } else {
        pg.health_check_user = *s;
      }
    }
  }
}

void Loader::CheckPostgres() {
  for (size_t i = 0; i < config_.listeners.size(); ++i) {
    if (config_.listeners[i].kind == ListenerKind::kPostgres && config_.postgres.databases.empty())
      Error(listener_kind_locs_[i], "listeners[" + std::to_string(i) + "].kind",
            "a postgres listener needs a postgres: section with databases");
  }
}

void EmitPostgres(YAML::Emitter& out, const Postgres& pg) {
  if (pg.databases.empty()) return;
  out << YAML::Key << "postgres" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "databases" << YAML::Value << YAML::BeginSeq;
  for (const PgDatabase& d : pg.databases) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << d.name;
    out << YAML::Key << "primary" << YAML::Value << JoinHostPort(d.host, d.port);
    if (!d.hostname.empty()) out << YAML::Comment(d.hostname);
    out << YAML::Key << "dbname" << YAML::Value << YAML::DoubleQuoted << d.dbname;
    out << YAML::Key << "pool_size" << YAML::Value << d.pool_size;
    out << YAML::Key << "pool_mode" << YAML::Value
        << (d.pool_mode == PgPoolMode::kSession ? "session" : "transaction");
    out << YAML::Key << "max_waiting" << YAML::Value << d.max_waiting;
    out << YAML::Key << "wait_timeout" << YAML::Value << FormatDuration(d.wait_timeout);
    if (!d.replicas.empty()) {
      out << YAML::Key << "replicas" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const PgServer& r : d.replicas) out << JoinHostPort(r.host, r.port);
      out << YAML::EndSeq;
      out << YAML::Key << "max_replica_lag" << YAML::Value << FormatDuration(d.max_replica_lag);
      out << YAML::Key << "read_your_writes" << YAML::Value << d.read_your_writes;
    }
    if (d.read_only) out << YAML::Key << "read_only" << YAML::Value << true;
    out << YAML::Key << "sslmode" << YAML::Value << PgSslModeName(d.sslmode);
    for (const auto& [k, v] : {std::pair{"sslrootcert", &d.sslrootcert},
                               {"sslcert", &d.sslcert},
                               {"sslkey", &d.sslkey}}) {
      if (!v->empty()) out << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << *v;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  bool listed = false;
  for (const PgUser& u : pg.users) listed |= !u.from_auth_file;
  if (listed) {
    out << YAML::Key << "users" << YAML::Value << YAML::BeginSeq;
    for (const PgUser& u : pg.users) {
      if (u.from_auth_file) continue;
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << u.name;
      out << YAML::Key << "password" << YAML::Value << "<redacted>";
      if (!u.server_password.empty())
        out << YAML::Key << "server_password" << YAML::Value << "<redacted>";
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (!pg.auth_file.empty())
    out << YAML::Key << "auth_file" << YAML::Value << YAML::DoubleQuoted << pg.auth_file;
  out << YAML::Key << "connect_timeout" << YAML::Value << FormatDuration(pg.connect_timeout);
  out << YAML::Key << "client_login_timeout" << YAML::Value
      << FormatDuration(pg.client_login_timeout);
  out << YAML::Key << "slow_query" << YAML::Value << FormatDuration(pg.slow_query);
  out << YAML::Key << "max_message" << YAML::Value << FormatSize(pg.max_message);
  out << YAML::Key << "server_reset_query" << YAML::Value << YAML::DoubleQuoted
      << pg.server_reset_query;
  out << YAML::Key << "health_check_interval" << YAML::Value
      << FormatDuration(pg.health_check_interval);
  out << YAML::Key << "health_check_timeout" << YAML::Value
      << FormatDuration(pg.health_check_timeout);
  if (!pg.health_check_user.empty())
    out << YAML::Key << "health_check_user" << YAML::Value << YAML::DoubleQuoted
        << pg.health_check_user;
  EmitTlsCertificate(out, pg.tls, &pg.tls_required);
  out << YAML::EndMap;
}

}  // namespace ficus::config::internal
