// ficus::load — `ficus load`, the project's own HTTP/1.1 load generator.
//
// Open model by default (as wrk2): each thread schedules requests at fixed intervals on a
// timeline that does not depend on responses, and a request's latency is measured from its
// *intended* send time (coordinated-omission correct); the same latency from the actual send
// time is kept in a second, "uncorrected" histogram. A request finds an idle keep-alive
// connection, or opens one while fewer than the per-thread maximum exist; otherwise it waits
// for a connection in a bounded backlog (sent late: the wait counts in its corrected latency)
// and is dropped — counted, never skipped silently — when the backlog is full or it waited
// longer than the request timeout. --closed is the closed model (as wrk): each connection sends
// its next request as soon as the previous response completes.
//
// Memory stays flat: no per-request records, only log-linear histograms (1 µs .. 100 s,
// 128 sub-buckets per power of two: <= 0.4 % relative error) and counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/outcome.h"

namespace ficus::load {

namespace internal {
struct Scenario;
struct Capture;
}  // namespace internal

// ---- parsing ---------------------------------------------------------------------------------

// http://HOST[:PORT][/PATH[?QUERY]] with HOST an IPv4/IPv6 literal or "localhost"
// (resolved to 127.0.0.1).
struct Url {
  std::string ip;  // "127.0.0.1", "::1"
  uint16_t port = 80;
  std::string host_header;  // HOST[:PORT] as written (the Host field)
  std::string target;       // "/path?query" ("/" when empty)
};
// Returns the URL or nullopt with *error set ("URL must start with http://" ...).
std::optional<Url> ParseUrl(std::string_view text, std::string* error);

// The scenario template text that renders as `text` word for word: each "{{" (a placeholder's
// start in a template) written as "\{{". For recorded paths and bodies put into a scenario.
std::string TemplateLiteral(std::string_view text);

// "250ms", "10s", "1.5s", "1h30m", "500us": base/duration.h's grammar, the config's too (a bare
// number other than 0 is refused). Nanoseconds, or nullopt with *error (when not null) set.
std::optional<int64_t> ParseDuration(std::string_view text, std::string* error = nullptr);

// ---- latency histogram -------------------------------------------------------------------------

// Log-linear histogram of nanosecond values in [1 µs, 100 s] (values outside are clamped to the
// range; max() keeps the exact maximum). Each power of two is split into kSubBuckets linear
// buckets, so a reported percentile is within 1/(2*kSubBuckets) (0.4 %) of a recorded value.
class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr int64_t kSubBuckets = int64_t{1} << kSubBits;  // 128
  static constexpr int64_t kMinNanos = 1000;                      // 1 µs
  static constexpr int64_t kMaxNanos = 100'000'000'000;           // 100 s

  Histogram();
  void Record(int64_t nanos);
  void Reset();  // empty again (keeps the buckets' memory)
  void Merge(const Histogram& other);
  uint64_t count() const { return count_; }
  int64_t max() const { return max_; }
  // Counts per bucket (index as IndexOf), for tests over whole distributions (ficus prove).
  const std::vector<uint64_t>& counts() const { return counts_; }
  int64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0; }
  // The value at quantile q in [0, 1] (0.99 = p99): the middle of the bucket holding the
  // ceil(q * count)-th smallest value, clamped to [min, max]. 0 when empty.
  int64_t Percentile(double q) const;

  // Bucket arithmetic (exposed for tests).
  static size_t IndexOf(int64_t nanos);
  static int64_t LowestOf(size_t index);
  static int64_t WidthOf(size_t index);
  static size_t BucketCount();

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
  double sum_ = 0;
};

// ---- results -----------------------------------------------------------------------------------

enum class ErrorType : uint8_t { kConnect, kTimeout, kReset, kProtocol };
inline constexpr size_t kErrorTypes = 4;
std::string_view ErrorTypeName(ErrorType t);

struct Stats {
  uint64_t scheduled = 0;  // open model: requests whose intended time fell in the run
  uint64_t sent = 0;
  uint64_t completed = 0;  // a full response came back
  uint64_t dropped = 0;    // never sent: no connection free and the backlog full (or too old)
  uint64_t late = 0;       // sent more than 1 ms after its intended time
  uint64_t aborted = 0;    // still in flight when the run ended (not counted as errors)
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::array<uint64_t, kErrorTypes> errors{};
  std::array<uint64_t, 600> status{};     // by status code (100..599)
  std::vector<uint64_t> sent_per_second;  // by actual send time, seconds from the start
  Histogram corrected;                    // from the intended send time
  Histogram uncorrected;                  // from the actual send time
  // Corrected, of the 2xx and 3xx responses only: what the requests a server admitted took
  // (a shedding server's fast 503s would otherwise pull the percentiles down).
  Histogram succeeded;
  void Merge(const Stats& o);
  uint64_t error_count() const;
  uint64_t status_at_least(int code) const;
};

struct Summary {
  bool closed = false;
  double target_rate = 0;    // open model
  double elapsed_s = 0;      // the sending phase
  double achieved_rate = 0;  // sent / elapsed_s
  std::string profile;       // as given (--profile / --stage), empty for --rate
  // Per second of the run: requests the profile intends in [t, t+1) s (open model) and
  // requests actually sent in it.
  // Latencies and outcomes by completion time, merged over the threads once a second.
  struct Second {
    double target = 0;
    uint64_t achieved = 0;
    uint64_t completed = 0;  // responses that completed in this second
    uint64_t errors = 0;     // transport errors (connect, timeout, reset, protocol) in it
    int64_t p50_ns = 0;      // of those responses (corrected: from the intended time)
    int64_t p99_ns = 0;
  };
  std::vector<Second> per_second;
  Stats stats;
  // Failed requests (transport errors + status >= 400) over requests that ended.
  double error_ratio() const;
  // Dropped over scheduled (open model; 0 otherwise).
  double dropped_ratio() const;
};

// ---- thresholds --------------------------------------------------------------------------------

// "p99<300ms", "p999<=1s", "errors<1%", "dropped<0.5%", "rate>1000", "max<2s", "mean<10ms".
// Latency thresholds use the corrected histogram.
struct Threshold {
  enum class Metric : uint8_t { kPercentile, kMax, kMean, kErrors, kDropped, kRate };
  enum class Op : uint8_t { kLess, kLessEqual, kGreater, kGreaterEqual };
  std::string text;
  Metric metric = Metric::kPercentile;
  double quantile = 0;  // kPercentile
  Op op = Op::kLess;
  double value = 0;  // nanoseconds for latencies, a ratio (0..1) for errors/dropped, req/s
};
std::optional<Threshold> ParseThreshold(std::string_view text, std::string* error);
// The measured value (same unit as Threshold::value) and whether it passes.
std::pair<double, bool> Evaluate(const Threshold& t, const Summary& s);

// ---- load profiles -----------------------------------------------------------------------------

// A piece of the open model's rate function: the rate goes linearly from `from` to `to` req/s
// over `duration_ns` (from == to: constant).
struct Segment {
  int64_t duration_ns = 0;
  double from = 0;
  double to = 0;
};

// The target rate over the run: consecutive segments. Request n (0-based, over all threads) is
// intended at the time t where the integral of the rate from 0 to t equals n, computed
// analytically per segment (no accumulation, no drift); segments with rate 0 send nothing.
class Profile {
 public:
  Profile() = default;
  explicit Profile(std::vector<Segment> segments);
  static Profile Constant(double rate, int64_t duration_ns);

  const std::vector<Segment>& segments() const { return segments_; }
  int64_t duration_ns() const { return duration_ns_; }
  double total() const { return static_cast<double>(total_); }  // expected requests
  double peak_rate() const;
  bool constant() const;  // one rate throughout
  double RateAt(int64_t t_ns) const;
  // Expected requests in [0, t_ns] (the integral of the rate).
  double CountAt(int64_t t_ns) const;
  // Intended time (ns from the start) of request n; duration_ns() when n >= total().
  int64_t TimeOf(uint64_t n) const;

 private:
  std::vector<Segment> segments_;
  std::vector<int64_t> start_ns_;         // per segment
  std::vector<long double> start_count_;  // integral up to each segment's start
  int64_t duration_ns_ = 0;
  long double total_ = 0;
};

// One profile spread over `duration_ns`:
//   constant:R                             R req/s
//   ramp:A..B                              linear from A to B req/s
//   steps:R1,R2,...                        equal-length constant steps
//   spike:base=B,peak=P,at=DUR,for=DUR     B req/s, P req/s during [at, at+for)
// Rates are numbers >= 0. Returns nullopt with *error set on bad syntax.
std::optional<Profile> ParseProfile(std::string_view text, int64_t duration_ns, std::string* error);
// Stages "DUR:PROFILE" (e.g. "10s:ramp:0..500") run one after the other.
std::optional<Profile> ParseStages(const std::vector<std::string>& stages, std::string* error);

// ---- the scheduler -----------------------------------------------------------------------------

// Intended send time of a thread's k-th request under a profile: thread `thread` of `threads`
// takes the global requests n = k * threads + thread.
int64_t IntendedTime(int64_t start_ns, const Profile& profile, int threads, int thread, uint64_t k);

// Intended send time of a thread's k-th request: thread `thread` of `threads` sends at
// rate/threads, its timeline offset by thread/threads of the global interval so that the
// threads interleave evenly. Computed from k (never accumulated), so it does not drift.
int64_t IntendedTime(int64_t start_ns, double rate, int threads, int thread, uint64_t k);

// ---- the command -------------------------------------------------------------------------------

// A setting left at its "unset" value (0, -1, empty) takes the scenario file's value, else the
// default named beside it.
struct Options {
  std::string url;      // http://... or a scenario file (FILE.yaml / FILE.yml)
  std::string target;   // http://HOST:PORT: a scenario's target, or where `ficus replay` sends
  double rate = 0;      // total req/s (open model; this, profile or stages is required)
  std::string profile;  // see ParseProfile
  std::vector<std::string> stages;  // see ParseStages
  std::string duration;             // empty: 10s, or the stages' sum
  int connections = -1;             // -1: 64
  int threads = -1;                 // -1: 1
  std::string method = "GET";
  std::vector<std::string> headers;  // "Name: value"
  std::optional<std::string> body;
  std::string timeout;  // empty: 10s
  int backlog = 10000;  // requests waiting for a connection (total), open model
  bool closed = false;
  bool json = false;
  std::string html;  // write a self-contained HTML report to this file
  std::vector<std::string> thresholds;
  // `ficus replay`: a JSON Lines capture written by the gateway's `record:`.
  std::string replay;
  std::string speed = "1x";  // "2x", "0.5x" (or a bare number)
  bool loop = false;         // start over at the end until --duration (none: until SIGINT/SIGTERM)
  std::string host;          // replaces the captured Host header when not empty
  std::string max_wait;      // gaps longer than this (after --speed) are shortened to it
  // method=GET, path=/api (prefix), route=NAME, header:NAME=VALUE; KEY!=VALUE leaves those out.
  // Filters of one key are alternatives; every key must match.
  std::vector<std::string> filters;
  // No summary on stdout and no progress line (a library caller such as `ficus assess` reads
  // the Summary instead; errors still go to stderr).
  bool quiet = false;
  // ficus's own load: the gateway's registered synthetic key (32 hex digits), sent in
  // X-Ficus-Synthetic on every request (URL, scenario or capture) so the gateway keeps the run
  // out of users' figures. Empty: none.
  std::string synthetic_key;
};

// A run, validated and resolved: what Options say once parsed and checked, scenario or capture
// loaded, the request serialized. A run is PlanFrom -> Execute -> Report; a tool that knows its
// numbers (`ficus assess`: a rate and a length per step) sets them on a plan directly.
struct Plan {
  const char* who = "ficus load";  // the messages' prefix: "ficus load" or "ficus replay"
  Url url;                         // where to connect; its host_header is the Host field
  std::string method = "GET";
  std::string request;  // the serialized request when neither scenario nor capture
  // Fields every request carries besides its own ("Name: value\r\n" each): the synthetic key.
  std::string extra_headers;
  std::shared_ptr<const internal::Scenario> scenario;  // requests built from templates
  std::shared_ptr<const internal::Capture> capture;    // replayed on the capture's timeline
  std::optional<uint64_t> seed;  // the scenario's draws; unset: a fresh seed per execution
  bool closed = false;
  Profile profile;           // open model without a capture
  std::string profile_text;  // as given (the summary's `profile`)
  int64_t duration_ns = 0;
  int64_t timeout_ns = 0;
  int connections = 64;
  int threads = 1;  // <= connections
  int backlog = 10000;
  std::vector<Threshold> thresholds;
  // How Report shows the summary (and, with quiet, no progress line and no signal handlers).
  bool json = false;
  std::string html;
  bool quiet = false;
  // When set, a true value ends the run early as a signal does (a caller with its own signal
  // handling: `ficus prove`). Read by the run's front-end loop every 20 ms.
  const std::atomic<bool>* stop = nullptr;

  // Open model at a constant `rate` req/s for `duration_ns`, replacing the load settings; fails
  // (changing nothing) when that sends no request.
  Outcome<> SetConstantRate(double rate, int64_t duration_ns);
};

// Validates every option before any traffic; the message says what is wrong with which one.
Outcome<Plan> PlanFrom(const Options& options);
// Connects once to check the target, then runs the plan on its threads. Unless `quiet`, SIGINT
// or SIGTERM during the run ends it early as if the duration were over (in-flight requests
// finish or time out) and the summary covers what was sent; a second signal has its default
// effect. Fails (nothing sent) when the target cannot be reached.
Outcome<Summary> Execute(const Plan& plan);
// Prints the summary to stdout (text or JSON, unless quiet), writes the HTML report, and checks
// the thresholds. Returns the exit code: 0, 2 (the HTML file cannot be written) or 3 (a
// threshold failed).
int Report(const Plan& plan, const Summary& summary);

// The three steps, errors to stderr. Returns the process exit code: 0, 2 (bad input or
// unreachable target, nothing sent) or 3 (a threshold failed). The run's summary goes into
// *summary when not null and the run happened.
int Run(const Options& options, Summary* summary = nullptr);
int Run(const Plan& plan, Summary* summary = nullptr);

// The report (for tests and Run).
std::string FormatText(const Summary& s, const std::vector<Threshold>& thresholds);
std::string FormatJson(const Summary& s, const std::vector<Threshold>& thresholds);
// A self-contained page (inline SVG and CSS, no script, no network): latency and rate over
// time, and the summary table.
std::string FormatHtml(const Summary& s, const std::vector<Threshold>& thresholds);

}  // namespace ficus::load
