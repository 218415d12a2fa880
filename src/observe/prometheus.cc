// The Prometheus text exposition (format 0.0.4) of the registry: the writer every metrics
// family goes through and the rendering of the route, cluster, endpoint and server cells.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "base/base.h"
#include "observe/observe.h"

namespace ficus::observe {

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

}  // namespace

void MetricWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
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

void MetricWriter::Begin(std::string_view name, std::initializer_list<Label> labels,
                         std::string_view suffix, const Label* extra) {
  out_ += name;
  out_ += suffix;
  if (labels.size() != 0 || extra != nullptr) {
    out_ += '{';
    bool first = true;
    auto one = [&](const Label& l) {
      if (!first) out_ += ',';
      first = false;
      out_ += l.name;
      out_ += "=\"";
      AppendEscaped(out_, l.value, /*quote=*/true);
      out_ += '"';
    };
    for (const Label& l : labels) one(l);
    if (extra) one(*extra);
    out_ += '}';
  }
  out_ += ' ';
}

void MetricWriter::Sample(std::string_view name, std::initializer_list<Label> labels, uint64_t v) {
  Begin(name, labels, {});
  AppendUint(out_, v);
  out_ += '\n';
}

void MetricWriter::GaugeSample(std::string_view name, std::initializer_list<Label> labels,
                               int64_t v) {
  Begin(name, labels, {});
  AppendInt(out_, v);
  out_ += '\n';
}

void MetricWriter::DoubleSample(std::string_view name, std::initializer_list<Label> labels,
                                double v) {
  Begin(name, labels, {});
  char buf[32];
  int len = std::isnan(v) ? std::snprintf(buf, sizeof buf, "NaN")
                          : std::snprintf(buf, sizeof buf, "%.17g", v);
  out_.append(buf, static_cast<size_t>(len));
  out_ += '\n';
}

void MetricWriter::HistogramSeries(std::string_view name, std::initializer_list<Label> labels,
                                   const HistogramTotals& h, std::span<const uint64_t> extra_le) {
  uint64_t cumulative = 0;
  int next = 0;  // first bucket not yet added to `cumulative`
  auto bound = [&](uint64_t micros, std::string_view text) {
    int last = Histogram::BucketFor(micros);
    for (; next <= last; ++next) cumulative += h.buckets[next];
    Label le{"le", text};
    Begin(name, labels, "_bucket", &le);
    AppendUint(out_, cumulative);
    out_ += '\n';
  };
  // Merge the two ascending lists; an extra bound that is also a standard one is written once.
  size_t x = 0;
  std::string text;
  auto extras_below = [&](uint64_t limit) {
    for (; x < extra_le.size() && extra_le[x] < limit; ++x) {
      text.clear();
      AppendMicrosAsSeconds(text, extra_le[x]);
      bound(extra_le[x], text);
    }
    if (x < extra_le.size() && extra_le[x] == limit) ++x;
  };
  for (const ExportBound& b : kExportBounds) {
    extras_below(b.micros);
    bound(b.micros, b.le);
  }
  extras_below(UINT64_MAX);
  for (; next < Histogram::kBuckets; ++next) cumulative += h.buckets[next];
  Label inf{"le", "+Inf"};
  Begin(name, labels, "_bucket", &inf);
  AppendUint(out_, cumulative);
  out_ += '\n';
  Begin(name, labels, "_sum");
  AppendMicrosAsSeconds(out_, h.sum_micros);
  out_ += '\n';
  // _count is the same snapshot of the buckets as +Inf, so the two always agree.
  Begin(name, labels, "_count");
  AppendUint(out_, cumulative);
  out_ += '\n';
}

std::string PrometheusLe(uint64_t micros) {
  std::string out;
  AppendMicrosAsSeconds(out, micros);
  return out;
}

namespace {

// The families every TrafficStats kind has, with `prefix` (ficus_route, ficus_cluster,
// ficus_endpoint) and its labels.
template <class LabelsOf>
void RenderTraffic(MetricWriter& w, std::string_view prefix, std::string_view what,
                   const std::vector<const TrafficTotals*>& rows, LabelsOf labels_of,
                   std::span<const uint64_t> duration_le = {}) {
  std::string name;
  auto family = [&](std::string_view suffix, std::string_view type, std::string help) {
    name.assign(prefix).append(suffix);
    w.Family(name, type, help.append(what).append("."));
  };
  family("_requests_total", "counter", "Requests to the ");
  for (const TrafficTotals* t : rows)
    labels_of(*t, [&](Label a, Label b) {
      if (b.name.empty())
        w.Sample(name, {a}, t->requests);
      else
        w.Sample(name, {a, b}, t->requests);
    });
  family("_requests_in_flight", "gauge", "Requests in progress at the ");
  for (const TrafficTotals* t : rows)
    labels_of(*t, [&](Label a, Label b) {
      if (b.name.empty())
        w.GaugeSample(name, {a}, t->in_flight);
      else
        w.GaugeSample(name, {a, b}, t->in_flight);
    });
  family("_responses_total", "counter", "Responses sent downstream, by status class, for the ");
  for (const TrafficTotals* t : rows)
    labels_of(*t, [&](Label a, Label b) {
      for (int k = 0; k < 5; ++k) {
        Label cls{"class", kClassNames[k]};
        if (b.name.empty())
          w.Sample(name, {a, cls}, t->responses[k]);
        else
          w.Sample(name, {a, b, cls}, t->responses[k]);
      }
    });
  family("_responses_by_code_total", "counter",
         "Responses sent downstream, by status code (codes seen; \"other\" past 16 distinct per "
         "worker), for the ");
  for (const TrafficTotals* t : rows)
    labels_of(*t, [&](Label a, Label b) {
      for (const auto& [code, count] : t->codes) {
        char buf[8];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, code);
        Label c{"code", code == 0 ? std::string_view("other") : std::string_view(buf, end - buf)};
        if (b.name.empty())
          w.Sample(name, {a, c}, count);
        else
          w.Sample(name, {a, b, c}, count);
      }
    });
  family("_request_bytes_total", "counter", "Request body bytes received from clients for the ");
  for (const TrafficTotals* t : rows)
    labels_of(*t, [&](Label a, Label b) {
      if (b.name.empty())
        w.Sample(name, {a}, t->request_bytes);
      else
        w.Sample(name, {a, b}, t->request_bytes);
    });
  family("_response_bytes_total", "counter", "Response body bytes sent to clients for the ");
  for (const TrafficTotals* t : rows)
    labels_of(*t, [&](Label a, Label b) {
      if (b.name.empty())
        w.Sample(name, {a}, t->response_bytes);
      else
        w.Sample(name, {a, b}, t->response_bytes);
    });
  auto histogram = [&](std::string_view suffix, std::string help, auto member,
                       std::span<const uint64_t> extra_le) {
    family(suffix, "histogram", std::move(help));
    for (const TrafficTotals* t : rows)
      labels_of(*t, [&](Label a, Label b) {
        if (b.name.empty())
          w.HistogramSeries(name, {a}, t->*member, extra_le);
        else
          w.HistogramSeries(name, {a, b}, t->*member, extra_le);
      });
  };
  histogram("_request_duration_seconds", "Time from request start to response complete at the ",
            &TrafficTotals::duration, duration_le);
  histogram("_upstream_connect_duration_seconds",
            "Time to open each new upstream connection for the ", &TrafficTotals::upstream_connect,
            {});
  histogram("_upstream_first_byte_seconds",
            "Time from the request head sent upstream to the first response byte at the ",
            &TrafficTotals::upstream_first_byte, {});
}

}  // namespace

std::string Registry::RenderPrometheus() const {
  const MetricsSnapshot snap = Collect();
  std::string out;
  out.reserve(32 * 1024);
  MetricWriter w(out);
  const ServerTotals& s = snap.server;

  // Downstream (per server, summed over workers).
  auto server_counter = [&](std::string_view name, std::string_view help, uint64_t v) {
    w.Family(name, "counter", help);
    w.Sample(name, {}, v);
  };
  w.Family("ficus_downstream_connections_active", "gauge",
           "Downstream (client) connections currently open.");
  w.GaugeSample("ficus_downstream_connections_active", {}, s.active_connections);
  server_counter("ficus_downstream_connections_total", "Downstream connections accepted.",
                 s.connections_accepted);
  server_counter("ficus_downstream_connections_rejected_total",
                 "Downstream connections refused over the connection limit.",
                 s.connections_rejected);
  server_counter("ficus_downstream_requests_total",
                 "Downstream requests received (every head parsed or rejected).", s.requests);
  w.Family("ficus_downstream_responses_total", "counter",
           "Responses sent to downstream clients, by status class.");
  for (int k = 0; k < 5; ++k) {
    w.Sample("ficus_downstream_responses_total", {{"class", kClassNames[k]}}, s.responses[k]);
  }
  server_counter("ficus_downstream_parse_errors_total",
                 "Downstream requests answered with an error before routing (malformed heads).",
                 s.parse_errors);
  server_counter("ficus_downstream_head_timeouts_total",
                 "Downstream request heads not complete in time (408).", s.head_timeouts);
  server_counter("ficus_downstream_no_route_total", "Downstream requests that matched no route.",
                 s.no_route);

  // Routes, clusters and endpoints: the same traffic families.
  std::vector<const TrafficTotals*> rows;
  for (const TrafficTotals& r : snap.routes) rows.push_back(&r);
  std::vector<uint64_t> route_le;
  {
    std::lock_guard lock(mu_);
    route_le = route_latency_bounds_;
  }
  RenderTraffic(
      w, "ficus_route", "route", rows,
      [](const TrafficTotals& t, auto emit) {
        emit(Label{"route", t.name}, Label{});
      },
      route_le);
  rows.clear();
  for (const ClusterTotals& c : snap.clusters) rows.push_back(&c.traffic);
  RenderTraffic(w, "ficus_cluster", "cluster", rows, [](const TrafficTotals& t, auto emit) {
    emit(Label{"cluster", t.name}, Label{});
  });
  rows.clear();
  for (const TrafficTotals& e : snap.endpoints) rows.push_back(&e);
  RenderTraffic(w, "ficus_endpoint", "endpoint", rows, [](const TrafficTotals& t, auto emit) {
    emit(Label{"cluster", t.cluster}, Label{"endpoint", t.name});
  });

  // Cluster connection-level counters.
  auto cluster_counter = [&](std::string_view name, std::string_view help, auto field) {
    w.Family(name, "counter", help);
    for (const ClusterTotals& c : snap.clusters) {
      w.Sample(name, {{"cluster", c.traffic.name}}, field(c));
    }
  };
  cluster_counter("ficus_cluster_upstream_requests_total",
                  "Requests sent to the cluster's endpoints (every attempt, retries included).",
                  [](const ClusterTotals& c) { return c.upstream_requests; });
  w.Family("ficus_cluster_upstream_responses_total", "counter",
           "Responses received from the cluster's endpoints, by status class.");
  for (const ClusterTotals& c : snap.clusters) {
    for (int k = 0; k < 5; ++k) {
      w.Sample("ficus_cluster_upstream_responses_total",
               {{"cluster", c.traffic.name}, {"class", kClassNames[k]}}, c.upstream_responses[k]);
    }
  }
  cluster_counter("ficus_cluster_upstream_connect_failures_total",
                  "Failed connection attempts to the cluster's endpoints.",
                  [](const ClusterTotals& c) { return c.connect_failures; });
  cluster_counter("ficus_cluster_upstream_timeouts_total",
                  "Upstream responses from the cluster that did not arrive in time.",
                  [](const ClusterTotals& c) { return c.timeouts; });
  cluster_counter("ficus_cluster_upstream_connections_opened_total",
                  "Connections opened to the cluster's endpoints.",
                  [](const ClusterTotals& c) { return c.connections_opened; });
  cluster_counter("ficus_cluster_upstream_connections_reused_total",
                  "Upstream requests sent on a pooled (reused) connection.",
                  [](const ClusterTotals& c) { return c.connections_reused; });
  w.Family("ficus_cluster_upstream_connections_idle", "gauge",
           "Idle pooled connections to the cluster's endpoints (the pools' size).");
  for (const ClusterTotals& c : snap.clusters) {
    w.GaugeSample("ficus_cluster_upstream_connections_idle", {{"cluster", c.traffic.name}},
                  c.idle_connections);
  }
  w.Family("ficus_cluster_upstream_connection_reuse_ratio", "gauge",
           "Share of upstream requests sent on a pooled connection since start (0 before any).");
  for (const ClusterTotals& c : snap.clusters) {
    w.DoubleSample("ficus_cluster_upstream_connection_reuse_ratio", {{"cluster", c.traffic.name}},
                   c.upstream_requests == 0 ? 0.0
                                            : static_cast<double>(c.connections_reused) /
                                                  static_cast<double>(c.upstream_requests));
  }

  w.Family("ficus_bugs_total", "counter",
           "Internal invariant violations detected (FICUS_BUG); any non-zero value is a bug.");
  w.Sample("ficus_bugs_total", {}, BugCount());

  // Process and build.
  const ProcessStats p = ReadProcessStats();
  w.Family("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
  w.DoubleSample("process_cpu_seconds_total", {}, p.cpu_seconds);
  w.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  w.Sample("process_resident_memory_bytes", {}, p.resident_bytes);
  w.Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  w.Sample("process_virtual_memory_bytes", {}, p.virtual_bytes);
  w.Family("process_open_fds", "gauge", "Number of open file descriptors.");
  w.Sample("process_open_fds", {}, p.open_fds);
  w.Family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
  w.Sample("process_max_fds", {}, p.max_fds);
  w.Family("process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
  w.DoubleSample("process_start_time_seconds", {}, p.start_time_seconds);
  w.Family("ficus_build_info", "gauge", "Always 1; the labels say which ficus this is.");
  w.Sample("ficus_build_info", {{"version", FICUS_VERSION}, {"compiler", "g++ " __VERSION__}}, 1);

  std::lock_guard lock(mu_);
  for (const auto& c : collectors_) c(w);
  return out;
}

}  // namespace ficus::observe
