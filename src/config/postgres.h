// ficus::config — the `postgres:` section of the config (included by config/config.h; see
// that header for the conventions every config struct follows).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ficus::config {

using Duration = std::chrono::milliseconds;

// `postgres:` the PostgreSQL wire proxy (src/pg; docs/config.md `postgres`). Listeners of kind
// postgres serve these databases to these users.
enum class PgPoolMode : uint8_t { kSession, kTransaction };
// A server certificate and its private key (PEM files, read at load and on reload): what clients
// of a TLS listener see (`postgres.tls`). Empty cert: no TLS.
struct TlsCertificate {
  std::string cert, key;
  bool enabled() const { return !cert.empty(); }
  bool operator==(const TlsCertificate&) const = default;
};
// TLS to servers, as libpq's sslmode: disable (never), allow (plain text, TLS if the server
// refuses it), prefer (TLS if the server offers it), require (TLS, the certificate unchecked),
// verify-ca (and signed by sslrootcert's CAs), verify-full (and naming the host).
enum class PgSslMode : uint8_t { kDisable, kAllow, kPrefer, kRequire, kVerifyCa, kVerifyFull };
const char* PgSslModeName(PgSslMode m);
struct PgServer {        // a replica of a database
  std::string host;      // IP literal, resolved at load
  std::string hostname;  // the DNS name as written, when it was one
  uint16_t port = 5432;
  std::string Address() const;  // host:port ([v6]:port)
  bool operator==(const PgServer&) const = default;
};
struct PgDatabase {
  std::string name;      // what clients ask for (StartupMessage `database`)
  std::string host;      // the primary: IP literal, resolved at load
  std::string hostname;  // the DNS name as written, when it was one
  uint16_t port = 5432;
  std::string dbname;       // on the server; default: name
  uint32_t pool_size = 20;  // server connections per (database, user), whole process
  PgPoolMode pool_mode = PgPoolMode::kTransaction;
  uint32_t max_waiting = 1000;  // clients queued for a server connection; more: 53300 at once
  Duration wait_timeout{5000};  // queued longer: 57014 naming the pool, connection closed
  // Read/write split (pg/replicas.cc): provably read-only transactions go to a replica that is
  // up and within max_replica_lag; a session that wrote reads from the primary until a replica
  // has replayed past its write (read_your_writes). read_only: every transaction is read-only
  // (server connections open with default_transaction_read_only=on).
  std::vector<PgServer> replicas;
  Duration max_replica_lag{1000};
  bool read_your_writes = true;
  bool read_only = false;
  // TLS to its servers (primary and replicas; health checks and EXPLAIN too). sslrootcert: the
  // CAs to trust (empty: the system store); sslcert/sslkey: a client certificate, if the server
  // asks for one.
  PgSslMode sslmode = PgSslMode::kPrefer;
  std::string sslrootcert, sslcert, sslkey;
  int line = 0;
  bool operator==(const PgDatabase&) const = default;
};
struct PgUser {
  std::string name;
  // Plain text (SCRAM to clients and the server), or a stored SCRAM-SHA-256 verifier
  // "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>" (clients only: the server then needs
  // `server_password`). Secret: never logged, redacted in /config.
  std::string password;
  std::string server_password;  // empty: password
  bool from_auth_file = false;
  bool operator==(const PgUser&) const = default;
};
struct Postgres {
  std::vector<PgDatabase> databases;     // names unique
  std::vector<PgUser> users;             // `users:` then the auth file's; names unique
  std::string auth_file;                 // pgbouncer's userlist.txt format: "user" "password"
  Duration connect_timeout{5000};        // to a server, including its authentication
  Duration client_login_timeout{10000};  // startup and authentication of a client
  Duration slow_query{1000};             // slower: sampled (parameters redacted)
  uint32_t max_message = 1u << 24;       // a client message's size bound (bytes, with its header)
  std::string server_reset_query = "DISCARD ALL";  // before a session's server is reused
  // Health and replay-lag checks of every primary and replica (pg/replicas.cc), as this user
  // (empty: the first user).
  Duration health_check_interval{1000};
  Duration health_check_timeout{2000};
  std::string health_check_user;
  // TLS to clients of the postgres listeners: an SSLRequest is answered 'S' when `tls` has a
  // certificate; with tls_required, a client that does not ask for TLS gets FATAL 28000 (as
  // pg_hba.conf's hostssl).
  TlsCertificate tls;
  bool tls_required = false;
  bool operator==(const Postgres&) const = default;
};

}  // namespace ficus::config
