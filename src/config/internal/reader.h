// The config reader's shared core: the Loader (one per load: the config being built, the errors
// and warnings with their positions) and its generic readers (reader.cc). Each section of the
// file is read by Loader members in a file of its own: settings.cc (timeouts, limits),
// listeners.cc (listeners, admin), clusters.cc, resilience.cc (a cluster's retry, outlier
// detection, health checks, breakers, hashing, affinity), routes.cc, slos.cc, observe.cc
// (telemetry, access_log, tracing); loader.cc runs them and the cross-field checks.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace ficus::config::internal {

inline constexpr uint32_t kMaxWorkers = 64;
inline const std::vector<std::string> kLoadBalancers = {"round_robin", "least_request", "p2c_ewma"};
// Implemented in upstream/ but not selectable until the config can name a hash key.
inline const std::vector<std::string> kHashBalancers = {"ring_hash", "maglev"};
inline const std::vector<std::string> kLogLevels = {"trace", "debug", "info", "warn", "error"};

// A 1-based position in the file; {0, 0} when unknown.
struct Loc {
  int line = 0;
  int column = 0;
};

Loc LocOf(const YAML::Mark& m);

// SHA-256 of `data`, lower-case hex (API keys are kept as this, never as themselves).
std::string Sha256Hex(std::string_view data);
// A route's rate_limit, concurrency and auth keys, as ToRedactedYaml writes them (protect.cc).
void EmitProtection(YAML::Emitter& out, const Route& r);
void EmitAdaptive(YAML::Emitter& out, const Cluster& c);
void EmitOverload(YAML::Emitter& out, const Overload& o);
void EmitPostgres(YAML::Emitter& out, const Postgres& pg);  // postgres.cc
// `tls: {cert, key[, required]}` when `t` has a certificate (tls_config.cc).
void EmitTlsCertificate(YAML::Emitter& out, const TlsCertificate& t, const bool* required);

// A node to read, where to point at when it is wrong, and its dotted field path.
// `loc` is the key's position for empty values (yaml-cpp marks those at the next token).
struct Value {
  YAML::Node node;
  Loc loc;
  std::string path;
};

std::string Sub(const std::string& path, std::string_view key);
std::string Index(const std::string& path, size_t i);

std::string Quote(std::string_view text);

std::string KindOf(const YAML::Node& n);

std::string ToLower(std::string s);
std::string ToUpper(std::string s);

// The keys of one YAML map, after unknown and duplicate keys were reported.
class Fields {
 public:
  struct Entry {
    std::string key;
    Value value;
  };
  const Value* Get(std::string_view key) const {
    for (const Entry& e : entries_) {
      if (e.key == key) return &e.value;
    }
    return nullptr;
  }
  std::vector<Entry>& entries() { return entries_; }

 private:
  std::vector<Entry> entries_;
};

// Something that binds a socket, for the overlap checks between listeners and admin.
struct Binding {
  std::string what;  // "listener 'public'" or "admin"
  std::string address;
  int family = 0;
  uint16_t port = 0;
  Loc loc;
  std::string path;
};

class Loader {
 public:
  Loader(std::string_view source, const LoadOptions& options) : file_(source), options_(options) {}

  LoadResult Run(std::string_view yaml);

 private:
  void Error(Loc loc, const std::string& path, std::string reason) {
    errors_.push_back(ConfigError{file_, loc.line, loc.column, path, std::move(reason)});
  }
  void Error(const Value& v, std::string reason) { Error(v.loc, v.path, std::move(reason)); }
  void Warn(Loc loc, const std::string& path, std::string reason) {
    warnings_.push_back(ConfigError{file_, loc.line, loc.column, path, std::move(reason)});
  }

  // --- generic readers: report and return nullopt/false on error ---
  bool ReadMap(const Value& v, const std::vector<std::string>& allowed, Fields* out);
  bool ExpectList(const Value& v);
  Value Item(const Value& list, const YAML::Node& item, size_t i) const;
  std::optional<std::string> String(const Value& v);
  std::optional<uint64_t> Integer(const Value& v, uint64_t min, uint64_t max);
  std::optional<Duration> DurationIn(const Value& v, Duration min, Duration max);
  std::optional<uint64_t> SizeIn(const Value& v, uint64_t min, uint64_t max);
  std::optional<bool> Bool(const Value& v);
  std::optional<double> Ratio(const Value& v);
  std::optional<std::string> Name(const Value& v);
  void Require(const Fields& f, const Value& parent, std::string_view key);

  // --- sections ---
  void ReadTimeouts(const Value& v, Timeouts* t);
  void ReadLimits(const Value& v, Limits* l);
  void ReadTelemetry(const Value& v, Telemetry* t);
  void ReadAdmin(const Value& v, Admin* admin);
  void ReadAccessLog(const Value& v, AccessLog* log);
  void ReadTracing(const Value& v, Tracing* tracing);
  bool ReadListen(const Value& v, std::string* address, uint16_t* port, int* family);
  void ReadListeners(const Value& v);
  void ReadClusters(const Value& v);
  // Upstream resilience (resilience.cc).
  void ReadResilience(const Fields& f, Cluster* c);
  void ReadRetry(const Value& v, RetryPolicy* r);
  void ReadRetryBudget(const Value& b, RetryPolicy* r);
  void ReadOutlier(const Value& v, OutlierDetection* o);
  void ReadHealthCheck(const Value& v, HealthCheck* h);
  void ReadBreakers(const Value& v, CircuitBreakers* b);
  void ReadHashKey(const Value& v, HashKey* k);
  void ReadAffinity(const Value& v, Affinity* a);
  std::optional<Endpoint> ReadEndpoint(const Value& v);
  std::optional<std::string> Resolve(const Value& v, const std::string& name);
  void ReadRoutes(const Value& v);
  void ReadMatch(const Value& v, RouteMatch* m);
  std::optional<std::string> ReadPath(const Value& v);
  void ReadHosts(const Value& v, std::vector<std::string>* hosts);
  void ReadMethods(const Value& v, std::vector<std::string>* methods);
  void ReadHeaders(const Value& v, std::vector<HeaderMatcher>* headers);
  void ReadSlos(const Value& v);  // after ReadRoutes: checks route names
  std::optional<double> Percent(const Value& v);
  void ReadRecord(const Value& v, std::optional<Record>* out);
  // A route's protection policies (protect.cc).
  void ReadRateLimits(const Value& v, std::vector<RateLimit>* out);
  bool ReadRateLimit(const Value& v, RateLimit* r);
  void ReadConcurrency(const Value& v, std::optional<ConcurrencyLimit>* out);
  void ReadAuth(const Value& v, std::optional<Auth>* out);
  bool ReadJwtAuth(const Value& v, JwtAuth* out);                              // jwt_auth.cc
  void ReadAdaptive(const Value& v, std::optional<AdaptiveConcurrency>* out);  // a cluster's
  void ReadOverload(const Value& v, Overload* o);
  void CheckProtection(const Route& r, const Value& route);         // keys that need auth
  void ReadCache(const Value& v, std::optional<Cache>* out);        // cache_config.cc
  void ReadCompress(const Value& v, std::optional<Compress>* out);  // compress_config.cc
  // Job queues and the route keys that use them (queues.cc).
  void ReadQueues(const Value& v);
  void ReadQueueCallback(const Value& v, std::optional<QueueCallback>* out);
  void ReadOffload(const Value& v, std::optional<Offload>* out);
  void ReadJobsApi(const Value& v, std::optional<JobsApi>* out);
  void CheckQueues();
  // The PostgreSQL proxy's section (postgres.cc).
  void ReadPostgres(const Value& v);
  bool ReadPgDatabase(const Value& item, PgDatabase* d);
  void ReadAuthFile(const Value& v, Postgres* pg);
  void CheckPostgres();
  // TLS keys (tls_config.cc): `tls: {cert, key}` (and `required` when `required` is not null),
  // a database's sslmode/sslrootcert/sslcert/sslkey; each file opened and parsed.
  void ReadTlsCertificate(const Value& v, TlsCertificate* out, bool* required);
  void ReadPgServerTls(const Fields& f, PgDatabase* d);
  void CheckCaFile(const Value& v, const std::string& path);
  void CheckCertificateAndKey(const Value& cert, const Value& key, const TlsCertificate& t);

  // --- cross-field checks ---
  void CheckBindings();
  void CheckRoutes();

  std::string file_;
  const LoadOptions& options_;
  Config config_;
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
  // Fields read from an unset `${VAR}` (LoadOptions::offline only), by path.
  std::vector<std::string> unset_env_paths_;
  Loc root_loc_{1, 1};

  std::vector<Binding> bindings_;
  // Where each cluster and route was declared (name position), for messages and checks.
  std::vector<Loc> cluster_locs_;
  std::vector<std::string> declared_clusters_;  // every cluster name read, even if invalid
  std::vector<Loc> route_locs_;
  std::vector<Loc> route_cluster_locs_;
  std::vector<std::string> route_cluster_paths_;
  std::vector<bool> route_cluster_ok_;
  std::map<std::string, std::pair<std::optional<std::string>, std::string>> resolved_;
  // Where each route's offload/jobs queue name was written, for CheckQueues.
  struct QueueRef {
    size_t route;
    std::string queue;
    Loc loc;
    std::string path;
  };
  std::vector<QueueRef> queue_refs_;
  Loc postgres_loc_;
  std::vector<Loc> listener_kind_locs_;  // parallel to config_.listeners
};

}  // namespace ficus::config::internal
