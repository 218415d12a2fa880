#include "observe/observe.h"

#include <charconv>
#include <limits>

#include "base/base.h"

namespace ficus::observe {

// ---------------------------------------------------------------------------------------------
// Histogram

uint64_t Histogram::UpperBoundMicros(int i) {
  FICUS_DCHECK(i >= 0 && i < kBuckets);
  if (i >= kBuckets - 1) return std::numeric_limits<uint64_t>::max();
  int k = i / kPerDecade;
  int j = i % kPerDecade;
  return internal::kTwiceMantissa[j] * internal::kPow10[k] / 2;
}

double Histogram::UpperBoundSeconds(int i) {
  FICUS_DCHECK(i >= 0 && i < kBuckets);
  if (i >= kBuckets - 1) return std::numeric_limits<double>::infinity();
  int k = i / kPerDecade;
  int j = i % kPerDecade;
  // One rounding step only: an integer numerator divided by a power of ten.
  return static_cast<double>(internal::kTwiceMantissa[j] * internal::kPow10[k]) / 2e6;
}

uint64_t Histogram::Count() const {
  uint64_t n = 0;
  for (const Counter& b : buckets_) n += b.Get();
  return n;
}

// ---------------------------------------------------------------------------------------------
// Registry

Registry::Registry(int workers) : workers_(workers) {
  FICUS_CHECK(workers >= 1 && workers <= kMaxWorkers);
}

RouteStats* Registry::Route(std::string_view name) {
  std::lock_guard lock(mu_);
  for (RouteStats& r : routes_) {
    if (r.name == name) return &r;
  }
  routes_.emplace_back();  // deque: existing elements never move
  routes_.back().name = name;
  return &routes_.back();
}

ClusterStats* Registry::Cluster(std::string_view name) {
  std::lock_guard lock(mu_);
  for (ClusterStats& c : clusters_) {
    if (c.name == name) return &c;
  }
  clusters_.emplace_back();
  clusters_.back().name = name;
  return &clusters_.back();
}

void Registry::ForEachRoute(const std::function<void(RouteStats&)>& f) {
  std::lock_guard lock(mu_);
  for (RouteStats& r : routes_) f(r);
}

void Registry::ForEachCluster(const std::function<void(ClusterStats&)>& f) {
  std::lock_guard lock(mu_);
  for (ClusterStats& c : clusters_) f(c);
}

uint64_t HashClient(std::string_view address) {
  // FNV-1a, then the splitmix64 finalizer: FNV alone leaves the high bits (the sketch's
  // register index) poorly mixed for short, similar strings such as IP addresses.
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : address) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

// ---------------------------------------------------------------------------------------------
// Prometheus text exposition format 0.0.4

namespace {

constexpr std::string_view kClassNames[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// The `le` bounds exported for duration histograms (seconds, as printed, and in µs). Each one
// is an exact bucket edge (checked below), so the cumulative counts are exact, not estimates.
struct ExportBound {
  std::string_view le;
  uint64_t micros;
};
constexpr ExportBound kExportBounds[] = {
    {"0.0005", 500},   {"0.001", 1'000},   {"0.0025", 2'500},  {"0.005", 5'000},
    {"0.01", 10'000},  {"0.025", 25'000},  {"0.05", 50'000},   {"0.1", 100'000},
    {"0.25", 250'000}, {"0.5", 500'000},   {"1", 1'000'000},   {"2.5", 2'500'000},
    {"5", 5'000'000},  {"10", 10'000'000}, {"30", 30'000'000}, {"60", 60'000'000},
};

constexpr bool ExportBoundsAreBucketEdges() {
  int prev = -1;
  for (const ExportBound& b : kExportBounds) {
    int i = Histogram::BucketFor(b.micros);
    uint64_t ub = internal::kTwiceMantissa[i % Histogram::kPerDecade] *
                  internal::kPow10[i / Histogram::kPerDecade] / 2;
    if (ub != b.micros || i <= prev) return false;
    prev = i;
  }
  return true;
}
static_assert(ExportBoundsAreBucketEdges());

// A label value (or HELP text when `quote` is false) escaped per the text format: backslash,
// newline and (in label values) double quote.
void AppendEscaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (quote) {
          out += "\\\"";
        } else {
          out += c;
        }
        break;
      default:
        out += c;
    }
  }
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Microseconds as seconds, exactly (integer arithmetic, no binary fraction): 1500 -> 0.0015.
void AppendMicrosAsSeconds(std::string& out, uint64_t micros) {
  AppendUint(out, micros / 1'000'000);
  uint64_t frac = micros % 1'000'000;
  if (frac == 0) return;
  char digits[7] = {};
  for (int i = 5; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  int n = 6;
  while (digits[n - 1] == '0') --n;
  out += '.';
  out.append(digits, n);
}

struct Label {
  std::string_view name;
  std::string_view value;
};

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    AppendEscaped(out_, help, /*quote=*/false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  // Starts a sample line up to (and including) the space before the value.
  void Begin(std::string_view name, std::initializer_list<Label> labels,
             std::string_view suffix = {}) {
    out_ += name;
    out_ += suffix;
    if (labels.size() != 0) {
      out_ += '{';
      bool first = true;
      for (const Label& l : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += l.name;
        out_ += "=\"";
        AppendEscaped(out_, l.value, /*quote=*/true);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
  }

  void Sample(std::string_view name, std::initializer_list<Label> labels, uint64_t v) {
    Begin(name, labels);
    AppendUint(out_, v);
    out_ += '\n';
  }
  void GaugeSample(std::string_view name, std::initializer_list<Label> labels, int64_t v) {
    Begin(name, labels);
    AppendInt(out_, v);
    out_ += '\n';
  }

  // One histogram series: cumulative buckets at kExportBounds and +Inf, _sum (s), _count.
  // `bucket_counts` are per-bucket (not cumulative) totals over all workers.
  void HistogramSeries(std::string_view name, Label label,
                       const std::array<uint64_t, Histogram::kBuckets>& bucket_counts,
                       uint64_t sum_micros) {
    uint64_t cumulative = 0;
    int next = 0;  // first bucket not yet added to `cumulative`
    for (const ExportBound& b : kExportBounds) {
      int last = Histogram::BucketFor(b.micros);
      for (; next <= last; ++next) cumulative += bucket_counts[next];
      Begin(name, {label, {"le", b.le}}, "_bucket");
      AppendUint(out_, cumulative);
      out_ += '\n';
    }
    for (; next < Histogram::kBuckets; ++next) cumulative += bucket_counts[next];
    Begin(name, {label, {"le", "+Inf"}}, "_bucket");
    AppendUint(out_, cumulative);
    out_ += '\n';
    Begin(name, {label}, "_sum");
    AppendMicrosAsSeconds(out_, sum_micros);
    out_ += '\n';
    // _count is the same snapshot of the buckets as +Inf, so the two always agree.
    Begin(name, {label}, "_count");
    AppendUint(out_, cumulative);
    out_ += '\n';
  }

 private:
  std::string& out_;
};

template <class Cell, class F>
uint64_t SumCounter(const std::array<Cell, kMaxWorkers>& cells, int workers, F field) {
  uint64_t n = 0;
  for (int w = 0; w < workers; ++w) n += field(cells[w]).Get();
  return n;
}

template <class Cell, class F>
int64_t SumGauge(const std::array<Cell, kMaxWorkers>& cells, int workers, F field) {
  int64_t n = 0;
  for (int w = 0; w < workers; ++w) n += field(cells[w]).Get();
  return n;
}

}  // namespace

std::string Registry::RenderPrometheus() const {
  std::string out;
  out.reserve(16 * 1024);
  Writer w(out);
  const int n = workers_;

  // Downstream (per server, summed over workers).
  auto server_counter = [&](std::string_view name, std::string_view help, auto field) {
    w.Family(name, "counter", help);
    w.Sample(name, {}, SumCounter(server_, n, field));
  };
  w.Family("ficus_downstream_connections_active", "gauge",
           "Downstream (client) connections currently open.");
  w.GaugeSample("ficus_downstream_connections_active", {},
                SumGauge(
                    server_, n, [](const ServerCell& c) -> auto& { return c.active_connections; }));
  server_counter(
      "ficus_downstream_connections_total", "Downstream connections accepted.",
      [](const ServerCell& c) -> auto& { return c.connections_accepted; });
  server_counter(
      "ficus_downstream_connections_rejected_total",
      "Downstream connections refused over the connection limit.",
      [](const ServerCell& c) -> auto& { return c.connections_rejected; });
  server_counter(
      "ficus_downstream_requests_total",
      "Downstream requests received (every head parsed or rejected).",
      [](const ServerCell& c) -> auto& { return c.requests; });
  w.Family("ficus_downstream_responses_total", "counter",
           "Responses sent to downstream clients, by status class.");
  for (int k = 0; k < 5; ++k) {
    w.Sample("ficus_downstream_responses_total", {{"class", kClassNames[k]}},
             SumCounter(
                 server_, n, [k](const ServerCell& c) -> auto& { return c.responses[k]; }));
  }
  server_counter(
      "ficus_downstream_parse_errors_total",
      "Downstream requests answered with an error before routing (malformed heads).",
      [](const ServerCell& c) -> auto& { return c.parse_errors; });
  server_counter(
      "ficus_downstream_head_timeouts_total",
      "Downstream request heads not complete in time (408).",
      [](const ServerCell& c) -> auto& { return c.head_timeouts; });
  server_counter(
      "ficus_downstream_no_route_total", "Downstream requests that matched no route.",
      [](const ServerCell& c) -> auto& { return c.no_route; });

  std::lock_guard lock(mu_);  // the deques' structure; cells are read with relaxed loads

  // Routes.
  auto route_counter = [&](std::string_view name, std::string_view help, auto field) {
    w.Family(name, "counter", help);
    for (const RouteStats& r : routes_) {
      w.Sample(name, {{"route", r.name}}, SumCounter(r.cells, n, field));
    }
  };
  route_counter(
      "ficus_route_requests_total", "Requests matched to the route.",
      [](const RouteCell& c) -> auto& { return c.requests; });
  w.Family("ficus_route_responses_total", "counter",
           "Responses sent for the route, by status class.");
  for (const RouteStats& r : routes_) {
    for (int k = 0; k < 5; ++k) {
      w.Sample("ficus_route_responses_total", {{"route", r.name}, {"class", kClassNames[k]}},
               SumCounter(
                   r.cells, n, [k](const RouteCell& c) -> auto& { return c.responses[k]; }));
    }
  }
  route_counter(
      "ficus_route_request_bytes_total", "Request body bytes received from clients on the route.",
      [](const RouteCell& c) -> auto& { return c.request_bytes; });
  route_counter(
      "ficus_route_response_bytes_total", "Response body bytes sent to clients on the route.",
      [](const RouteCell& c) -> auto& { return c.response_bytes; });
  w.Family("ficus_route_request_duration_seconds", "histogram",
           "Time from request start to response complete on the route.");
  for (const RouteStats& r : routes_) {
    std::array<uint64_t, Histogram::kBuckets> buckets{};
    uint64_t sum = 0;
    for (int wk = 0; wk < n; ++wk) {
      const Histogram& h = r.cells[wk].duration;
      for (int i = 0; i < Histogram::kBuckets; ++i) buckets[i] += h.Bucket(i);
      sum += h.SumMicros();
    }
    w.HistogramSeries("ficus_route_request_duration_seconds", {"route", r.name}, buckets, sum);
  }

  // Clusters.
  auto cluster_counter = [&](std::string_view name, std::string_view help, auto field) {
    w.Family(name, "counter", help);
    for (const ClusterStats& c : clusters_) {
      w.Sample(name, {{"cluster", c.name}}, SumCounter(c.cells, n, field));
    }
  };
  cluster_counter(
      "ficus_cluster_upstream_requests_total",
      "Requests sent to the cluster's endpoints (every attempt, retries included).",
      [](const ClusterCell& c) -> auto& { return c.requests; });
  w.Family("ficus_cluster_upstream_responses_total", "counter",
           "Responses received from the cluster's endpoints, by status class.");
  for (const ClusterStats& cs : clusters_) {
    for (int k = 0; k < 5; ++k) {
      w.Sample("ficus_cluster_upstream_responses_total",
               {{"cluster", cs.name}, {"class", kClassNames[k]}},
               SumCounter(
                   cs.cells, n, [k](const ClusterCell& c) -> auto& { return c.responses[k]; }));
    }
  }
  cluster_counter(
      "ficus_cluster_upstream_connect_failures_total",
      "Failed connection attempts to the cluster's endpoints.",
      [](const ClusterCell& c) -> auto& { return c.connect_failures; });
  cluster_counter(
      "ficus_cluster_upstream_timeouts_total",
      "Upstream responses from the cluster that did not arrive in time.",
      [](const ClusterCell& c) -> auto& { return c.timeouts; });
  cluster_counter(
      "ficus_cluster_upstream_connections_opened_total",
      "Connections opened to the cluster's endpoints.",
      [](const ClusterCell& c) -> auto& { return c.connections_opened; });
  cluster_counter(
      "ficus_cluster_upstream_connections_reused_total",
      "Upstream requests sent on a pooled (reused) connection.",
      [](const ClusterCell& c) -> auto& { return c.connections_reused; });
  w.Family("ficus_cluster_upstream_connections_idle", "gauge",
           "Idle pooled connections to the cluster's endpoints.");
  for (const ClusterStats& cs : clusters_) {
    w.GaugeSample(
        "ficus_cluster_upstream_connections_idle", {{"cluster", cs.name}},
        SumGauge(
            cs.cells, n, [](const ClusterCell& c) -> auto& { return c.idle_connections; }));
  }

  w.Family("ficus_bugs_total", "counter",
           "Internal invariant violations detected (FICUS_BUG); any non-zero value is a bug.");
  w.Sample("ficus_bugs_total", {}, BugCount());
  return out;
}

}  // namespace ficus::observe
