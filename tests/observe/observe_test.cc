// Tests for ficus::observe: histogram bucket layout, BucketFor, merging worker cells, and the
// Prometheus text exposition (parsed back by a small strict parser below).
#include "observe/observe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/base.h"

namespace ficus::observe {
namespace {

// --- Histogram layout ------------------------------------------------------------------------

// The documented edges, written out independently of the implementation: {1, 1.5, ..., 8} x 10^k
// split each decade from 1 µs to 1000 s; a bucket's upper bound is the next edge.
std::vector<double> DocumentedUpperBoundsMicros() {
  const double lower[] = {1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8};
  std::vector<double> edges;
  double p = 1;
  for (int k = 0; k < 9; ++k, p *= 10) {
    for (double m : lower) edges.push_back(m * p);
  }
  edges.push_back(1e9);                     // 1000 s
  return {edges.begin() + 1, edges.end()};  // upper bound of bucket i = edge i + 1
}

TEST(HistogramTest, BucketCountMatchesLayout) {
  EXPECT_EQ(Histogram::kBuckets, 91);
  EXPECT_EQ(DocumentedUpperBoundsMicros().size(), 90u);
}

TEST(HistogramTest, UpperBoundsAreTheDocumentedEdges) {
  std::vector<double> want = DocumentedUpperBoundsMicros();
  for (int i = 0; i < Histogram::kBuckets - 1; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(Histogram::UpperBoundMicros(i), static_cast<uint64_t>(want[i]));  // floor
    EXPECT_DOUBLE_EQ(Histogram::UpperBoundSeconds(i), want[i] / 1e6);
  }
  EXPECT_EQ(Histogram::UpperBoundMicros(0), 1u);  // 1.5 µs, rounded down
  EXPECT_EQ(Histogram::UpperBoundMicros(2), 2u);  // 2.5 µs, rounded down
  EXPECT_EQ(Histogram::UpperBoundMicros(9), 10u);
  EXPECT_EQ(Histogram::UpperBoundMicros(10), 15u);
  EXPECT_EQ(Histogram::UpperBoundMicros(89), 1'000'000'000u);
  EXPECT_EQ(Histogram::UpperBoundMicros(90), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(Histogram::UpperBoundSeconds(90), std::numeric_limits<double>::infinity());
}

TEST(HistogramTest, PrometheusDecimalBoundsAreExactEdges) {
  for (uint64_t us : {500ull, 1'000ull, 2'500ull, 5'000ull, 10'000ull, 25'000ull, 50'000ull,
                      100'000ull, 250'000ull, 500'000ull, 1'000'000ull, 2'500'000ull, 5'000'000ull,
                      10'000'000ull, 30'000'000ull, 60'000'000ull}) {
    SCOPED_TRACE(us);
    EXPECT_EQ(Histogram::UpperBoundMicros(Histogram::BucketFor(us)), us);
    EXPECT_EQ(Histogram::BucketFor(us + 1), Histogram::BucketFor(us) + 1);
  }
}

// The definition of BucketFor: the smallest i with micros <= UpperBoundMicros(i).
int ReferenceBucketFor(uint64_t micros) {
  for (int i = 0; i < Histogram::kBuckets; ++i) {
    if (micros <= Histogram::UpperBoundMicros(i)) return i;
  }
  return -1;
}

TEST(HistogramTest, BucketForAtEveryEdge) {
  for (int i = 0; i < Histogram::kBuckets - 1; ++i) {
    uint64_t ub = Histogram::UpperBoundMicros(i);
    SCOPED_TRACE(ub);
    EXPECT_EQ(Histogram::BucketFor(ub), ReferenceBucketFor(ub));
    EXPECT_EQ(Histogram::BucketFor(ub + 1), ReferenceBucketFor(ub + 1));
    EXPECT_EQ(Histogram::BucketFor(ub - 1), ReferenceBucketFor(ub - 1));
    EXPECT_LE(ub, Histogram::UpperBoundMicros(Histogram::BucketFor(ub)));
  }
  EXPECT_EQ(Histogram::BucketFor(0), 0);
  EXPECT_EQ(Histogram::BucketFor(1), 0);
  EXPECT_EQ(Histogram::BucketFor(2), 1);
  EXPECT_EQ(Histogram::BucketFor(3), 3);
  EXPECT_EQ(Histogram::BucketFor(10), 9);
  EXPECT_EQ(Histogram::BucketFor(11), 10);
  EXPECT_EQ(Histogram::BucketFor(999'999'999), 89);
  EXPECT_EQ(Histogram::BucketFor(1'000'000'000), 89);
  EXPECT_EQ(Histogram::BucketFor(1'000'000'001), 90);
  EXPECT_EQ(Histogram::BucketFor(std::numeric_limits<uint64_t>::max()), 90);
}

TEST(HistogramTest, BucketForMatchesReferenceExhaustivelyBelowTenSeconds) {
  // Every value below 10^7 µs, then every power of ten and its neighbours to 2^64 - 1.
  int want = 0;
  for (uint64_t v = 0; v < 10'000'000; ++v) {
    while (v > Histogram::UpperBoundMicros(want)) ++want;  // ReferenceBucketFor, incrementally
    int got = Histogram::BucketFor(v);
    if (got != want) FAIL() << "BucketFor(" << v << ") = " << got << ", want " << want;
  }
  for (uint64_t p = 1;; p *= 10) {
    for (uint64_t v : {p - 1, p, p + 1}) {
      EXPECT_EQ(Histogram::BucketFor(v), ReferenceBucketFor(v)) << v;
    }
    if (p > std::numeric_limits<uint64_t>::max() / 10) break;
  }
  for (int shift = 0; shift < 64; ++shift) {
    uint64_t v = uint64_t{1} << shift;
    for (uint64_t x : {v - 1, v, v + 1}) {
      EXPECT_EQ(Histogram::BucketFor(x), ReferenceBucketFor(x)) << x;
    }
  }
}

TEST(HistogramTest, BucketForMatchesReferenceOnRandomValues) {
  std::mt19937_64 rng(42);
  for (int n = 0; n < 1'000'000; ++n) {
    uint64_t v = rng() >> (rng() % 64);  // roughly log-uniform over the whole range
    ASSERT_EQ(Histogram::BucketFor(v), ReferenceBucketFor(v)) << v;
  }
}

TEST(HistogramTest, RecordCountsAndSums) {
  Histogram h;
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.SumMicros(), 0u);
  h.Record(0);
  h.Record(1);
  h.Record(500);
  h.Record(501);
  h.Record(2'000'000'000);
  EXPECT_EQ(h.Count(), 5u);
  EXPECT_EQ(h.SumMicros(), 0u + 1 + 500 + 501 + 2'000'000'000);
  EXPECT_EQ(h.Bucket(0), 2u);
  EXPECT_EQ(h.Bucket(Histogram::BucketFor(500)), 1u);
  EXPECT_EQ(h.Bucket(Histogram::BucketFor(500) + 1), 1u);
  EXPECT_EQ(h.Bucket(Histogram::kBuckets - 1), 1u);
}

TEST(StatusClassTest, Index) {
  EXPECT_EQ(StatusClassIndex(100), 0);
  EXPECT_EQ(StatusClassIndex(200), 1);
  EXPECT_EQ(StatusClassIndex(299), 1);
  EXPECT_EQ(StatusClassIndex(304), 2);
  EXPECT_EQ(StatusClassIndex(404), 3);
  EXPECT_EQ(StatusClassIndex(503), 4);
  EXPECT_EQ(StatusClassIndex(0), 0);
  EXPECT_EQ(StatusClassIndex(999), 4);
}

// --- A strict parser for the text exposition format 0.0.4 -----------------------------------

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

struct Family {
  std::string help;
  std::string type;
  std::vector<Sample> samples;
};

struct Exposition {
  std::map<std::string, Family> families;
  std::vector<std::string> order;  // family names in order of appearance

  // The value of the one sample `name` with exactly these labels; "" when absent.
  std::string Value(const std::string& name,
                    const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& [fname, f] : families) {
      for (const Sample& s : f.samples) {
        if (s.name == name && s.labels == labels) return s.value;
      }
    }
    return "";
  }
  uint64_t Uint(const std::string& name,
                const std::map<std::string, std::string>& labels = {}) const {
    std::string v = Value(name, labels);
    EXPECT_FALSE(v.empty()) << name;
    return v.empty() ? 0 : std::stoull(v);
  }
};

bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

// The family a sample belongs to: a histogram's _bucket/_sum/_count samples belong to the base.
std::string FamilyOf(const std::string& sample, const std::map<std::string, Family>& families) {
  for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (sample.size() > suffix.size() && sample.ends_with(suffix)) {
      std::string base = sample.substr(0, sample.size() - suffix.size());
      auto it = families.find(base);
      if (it != families.end() && it->second.type == "histogram") return base;
    }
  }
  return sample;
}

// Parses `text`, recording failures with ADD_FAILURE. Checks: every line is a HELP, TYPE or
// sample line; HELP then TYPE exactly once per family, before its samples; a family's samples
// are contiguous; names and label names are valid; label values use only the allowed escapes;
// values parse as numbers; no duplicate series; the text ends with a newline.
void ParseInto(const std::string& text, Exposition& e) {
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  std::set<std::string> closed;  // families that another family followed
  std::set<std::string> series;
  std::string current;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    SCOPED_TRACE(testing::Message() << "line " << lineno << ": " << line);
    auto switch_to = [&](const std::string& fam) {
      if (fam == current) return;
      EXPECT_FALSE(closed.contains(fam)) << "family " << fam << " is not contiguous";
      if (!current.empty()) closed.insert(current);
      current = fam;
    };
    if (line.starts_with("# HELP ")) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      ASSERT_NE(sp, std::string::npos);
      std::string name = rest.substr(0, sp);
      EXPECT_FALSE(e.families.contains(name)) << "second HELP for " << name;
      switch_to(name);
      e.families[name].help = rest.substr(sp + 1);
      e.order.push_back(name);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      std::string rest = line.substr(7);
      size_t sp = rest.find(' ');
      ASSERT_NE(sp, std::string::npos);
      std::string name = rest.substr(0, sp);
      std::string type = rest.substr(sp + 1);
      EXPECT_EQ(name, current) << "TYPE not right after its HELP";
      ASSERT_TRUE(e.families.contains(name));
      EXPECT_TRUE(e.families[name].type.empty()) << "second TYPE for " << name;
      EXPECT_TRUE(e.families[name].samples.empty()) << "TYPE after samples";
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << type;
      e.families[name].type = type;
      continue;
    }
    ASSERT_FALSE(line.empty());
    ASSERT_NE(line[0], '#');
    Sample s;
    size_t i = 0;
    while (i < line.size() && IsNameChar(line[i], i == 0)) s.name += line[i++];
    ASSERT_FALSE(s.name.empty());
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string lname;
        while (i < line.size() && IsNameChar(line[i], lname.empty())) lname += line[i++];
        ASSERT_FALSE(lname.empty());
        ASSERT_LT(i + 1, line.size());
        ASSERT_EQ(line[i], '=');
        ASSERT_EQ(line[i + 1], '"');
        i += 2;
        std::string value;
        while (true) {
          ASSERT_LT(i, line.size()) << "unterminated label value";
          char c = line[i++];
          if (c == '"') break;
          if (c == '\\') {
            ASSERT_LT(i, line.size());
            char esc = line[i++];
            if (esc == '\\')
              value += '\\';
            else if (esc == '"')
              value += '"';
            else if (esc == 'n')
              value += '\n';
            else
              ADD_FAILURE() << "bad escape \\" << esc;
          } else {
            value += c;
          }
        }
        EXPECT_FALSE(s.labels.contains(lname)) << "duplicate label " << lname;
        s.labels[lname] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ASSERT_LT(i, line.size());
      ++i;  // '}'
    }
    ASSERT_LT(i, line.size());
    ASSERT_EQ(line[i], ' ');
    s.value = line.substr(i + 1);
    ASSERT_FALSE(s.value.empty());
    if (s.value != "+Inf" && s.value != "-Inf" && s.value != "NaN") {
      size_t used = 0;
      std::stod(s.value, &used);
      EXPECT_EQ(used, s.value.size()) << "not a number: " << s.value;
    }
    std::string fam = FamilyOf(s.name, e.families);
    ASSERT_TRUE(e.families.contains(fam)) << "sample without HELP/TYPE: " << s.name;
    EXPECT_FALSE(e.families[fam].type.empty()) << "sample without TYPE: " << s.name;
    EXPECT_EQ(fam, current) << "sample outside its family's block";
    std::ostringstream key;
    key << s.name;
    for (const auto& [k, v] : s.labels) key << '\x1f' << k << '=' << v;
    EXPECT_TRUE(series.insert(key.str()).second) << "duplicate series " << key.str();
    e.families[fam].samples.push_back(std::move(s));
  }
  for (const auto& [name, f] : e.families) {
    EXPECT_FALSE(f.help.empty()) << name;
    EXPECT_FALSE(f.type.empty()) << name;
  }
}

Exposition Parse(const std::string& text) {
  Exposition e;
  ParseInto(text, e);
  return e;
}

const char* const kAllFamilies[] = {
    "ficus_downstream_connections_active",
    "ficus_downstream_connections_total",
    "ficus_downstream_connections_rejected_total",
    "ficus_downstream_requests_total",
    "ficus_downstream_responses_total",
    "ficus_downstream_parse_errors_total",
    "ficus_downstream_head_timeouts_total",
    "ficus_downstream_no_route_total",
    "ficus_route_requests_total",
    "ficus_route_requests_in_flight",
    "ficus_route_responses_total",
    "ficus_route_responses_by_code_total",
    "ficus_route_request_bytes_total",
    "ficus_route_response_bytes_total",
    "ficus_route_request_duration_seconds",
    "ficus_route_upstream_connect_duration_seconds",
    "ficus_route_upstream_first_byte_seconds",
    "ficus_cluster_requests_total",
    "ficus_cluster_requests_in_flight",
    "ficus_cluster_responses_total",
    "ficus_cluster_responses_by_code_total",
    "ficus_cluster_request_bytes_total",
    "ficus_cluster_response_bytes_total",
    "ficus_cluster_request_duration_seconds",
    "ficus_cluster_upstream_connect_duration_seconds",
    "ficus_cluster_upstream_first_byte_seconds",
    "ficus_endpoint_requests_total",
    "ficus_endpoint_requests_in_flight",
    "ficus_endpoint_responses_total",
    "ficus_endpoint_responses_by_code_total",
    "ficus_endpoint_request_bytes_total",
    "ficus_endpoint_response_bytes_total",
    "ficus_endpoint_request_duration_seconds",
    "ficus_endpoint_upstream_connect_duration_seconds",
    "ficus_endpoint_upstream_first_byte_seconds",
    "ficus_cluster_upstream_requests_total",
    "ficus_cluster_upstream_responses_total",
    "ficus_cluster_upstream_connect_failures_total",
    "ficus_cluster_upstream_timeouts_total",
    "ficus_cluster_upstream_connections_opened_total",
    "ficus_cluster_upstream_connections_reused_total",
    "ficus_cluster_upstream_connections_idle",
    "ficus_cluster_upstream_connection_reuse_ratio",
    "ficus_bugs_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "ficus_build_info",
};

const char* const kExportedLe[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                   "0.05",   "0.1",   "0.25",   "0.5",   "1",    "2.5",
                                   "5",      "10",    "30",     "60",    "+Inf"};

// --- Registry --------------------------------------------------------------------------------

TEST(RegistryTest, RouteAndClusterAreFoundByNameAndStable) {
  Registry reg(2);
  RouteStats* a = reg.Route("a");
  RouteStats* b = reg.Route("b");
  for (int i = 0; i < 100; ++i)
    reg.Route(std::string("r").append(std::to_string(i)));  // grow the deque
  EXPECT_NE(a, b);
  EXPECT_EQ(reg.Route("a"), a);
  EXPECT_EQ(reg.Route("b"), b);
  EXPECT_EQ(a->name, "a");
  ClusterStats* c = reg.Cluster("a");
  EXPECT_EQ(reg.Cluster("a"), c);
  EXPECT_EQ(c->name, "a");
  EXPECT_EQ(reg.workers(), 2);
}

TEST(RenderTest, EmptyRegistryHasEveryFamilyWithHelpAndType) {
  Registry reg(1);
  Exposition e = Parse(reg.RenderPrometheus());
  for (const char* f : kAllFamilies) {
    SCOPED_TRACE(f);
    ASSERT_TRUE(e.families.contains(f));
  }
  EXPECT_EQ(e.families.size(), std::size(kAllFamilies));
  EXPECT_EQ(e.families["ficus_downstream_connections_active"].type, "gauge");
  EXPECT_EQ(e.families["ficus_cluster_upstream_connections_idle"].type, "gauge");
  EXPECT_EQ(e.families["ficus_route_request_duration_seconds"].type, "histogram");
  EXPECT_EQ(e.families["ficus_downstream_requests_total"].type, "counter");
  for (const char* cls : {"1xx", "2xx", "3xx", "4xx", "5xx"}) {
    EXPECT_EQ(e.Value("ficus_downstream_responses_total", {{"class", cls}}), "0") << cls;
  }
  EXPECT_EQ(e.Uint("ficus_bugs_total"), BugCount());
}

TEST(RenderTest, SumsServerCellsOverWorkers) {
  Registry reg(3);
  for (int w = 0; w < 3; ++w) {
    ServerCell& s = reg.Server(w);
    s.active_connections.Add(w + 1);  // 1 + 2 + 3
    s.connections_accepted.Add(10);
    s.connections_rejected.Add(w);  // 0 + 1 + 2
    s.requests.Add(100);
    s.responses[StatusClassIndex(200)].Add(90);
    s.responses[StatusClassIndex(404)].Add(7);
    s.responses[StatusClassIndex(502)].Add(3);
    s.parse_errors.Add(1);
    s.head_timeouts.Add(2);
    s.no_route.Add(7);
  }
  reg.Server(3).requests.Add(1000);  // beyond workers(): not part of this registry's view
  reg.Server(1).active_connections.Add(-2);
  Exposition e = Parse(reg.RenderPrometheus());
  EXPECT_EQ(e.Value("ficus_downstream_connections_active"), "4");
  EXPECT_EQ(e.Uint("ficus_downstream_connections_total"), 30u);
  EXPECT_EQ(e.Uint("ficus_downstream_connections_rejected_total"), 3u);
  EXPECT_EQ(e.Uint("ficus_downstream_requests_total"), 300u);
  EXPECT_EQ(e.Uint("ficus_downstream_responses_total", {{"class", "1xx"}}), 0u);
  EXPECT_EQ(e.Uint("ficus_downstream_responses_total", {{"class", "2xx"}}), 270u);
  EXPECT_EQ(e.Uint("ficus_downstream_responses_total", {{"class", "3xx"}}), 0u);
  EXPECT_EQ(e.Uint("ficus_downstream_responses_total", {{"class", "4xx"}}), 21u);
  EXPECT_EQ(e.Uint("ficus_downstream_responses_total", {{"class", "5xx"}}), 9u);
  EXPECT_EQ(e.Uint("ficus_downstream_parse_errors_total"), 3u);
  EXPECT_EQ(e.Uint("ficus_downstream_head_timeouts_total"), 6u);
  EXPECT_EQ(e.Uint("ficus_downstream_no_route_total"), 21u);
}

TEST(RenderTest, MergesRouteAndClusterCellsOverWorkers) {
  Registry reg(4);
  RouteStats* api = reg.Route("api");
  RouteStats* web = reg.Route("web");
  ClusterStats* shop = reg.Cluster("shop");
  for (int w = 0; w < 4; ++w) {
    RouteCell& c = api->Cell(w);
    c.requests.Add(5);
    c.responses[1].Add(4);
    c.responses[4].Add(1);
    c.request_bytes.Add(100);
    c.response_bytes.Add(1000 * (w + 1));
    c.duration.Record(400);         // <= 0.0005
    c.duration.Record(500);         // <= 0.0005 (exact edge)
    c.duration.Record(501);         // <= 0.001
    c.duration.Record(30'000'000);  // <= 30
    c.duration.Record(60'000'001);  // +Inf only
    ClusterCell& k = shop->Cell(w);
    k.requests.Add(6);
    k.responses[1].Add(5);
    k.responses[2].Add(1);
    k.connect_failures.Add(w);
    k.timeouts.Add(1);
    k.connections_opened.Add(2);
    k.connections_reused.Add(4);
    k.idle_connections.Add(w);
  }
  web->Cell(2).requests.Add(1);
  web->Cell(2).duration.Record(1'500'000);
  Exposition e = Parse(reg.RenderPrometheus());

  EXPECT_EQ(e.Uint("ficus_route_requests_total", {{"route", "api"}}), 20u);
  EXPECT_EQ(e.Uint("ficus_route_requests_total", {{"route", "web"}}), 1u);
  EXPECT_EQ(e.Uint("ficus_route_responses_total", {{"route", "api"}, {"class", "2xx"}}), 16u);
  EXPECT_EQ(e.Uint("ficus_route_responses_total", {{"route", "api"}, {"class", "5xx"}}), 4u);
  for (const char* cls : {"1xx", "2xx", "3xx", "4xx", "5xx"}) {
    EXPECT_EQ(e.Uint("ficus_route_responses_total", {{"route", "web"}, {"class", cls}}), 0u);
  }
  EXPECT_EQ(e.Uint("ficus_route_request_bytes_total", {{"route", "api"}}), 400u);
  EXPECT_EQ(e.Uint("ficus_route_response_bytes_total", {{"route", "api"}}), 10'000u);

  // Histogram: every exported bucket present, cumulative and exact.
  const std::string h = "ficus_route_request_duration_seconds";
  std::map<std::string, uint64_t> api_le;
  for (const char* le : kExportedLe) {
    api_le[le] = e.Uint(h + "_bucket", {{"route", "api"}, {"le", le}});
  }
  EXPECT_EQ(e.families[h].samples.size(), 2 * (std::size(kExportedLe) + 2));
  EXPECT_EQ(api_le["0.0005"], 8u);
  EXPECT_EQ(api_le["0.001"], 12u);
  EXPECT_EQ(api_le["10"], 12u);
  EXPECT_EQ(api_le["30"], 16u);
  EXPECT_EQ(api_le["60"], 16u);
  EXPECT_EQ(api_le["+Inf"], 20u);
  uint64_t prev = 0;
  for (const char* le : kExportedLe) {
    EXPECT_GE(api_le[le], prev) << le;
    prev = api_le[le];
  }
  EXPECT_EQ(e.Uint(h + "_count", {{"route", "api"}}), 20u);
  // 4 x (400 + 500 + 501 + 30'000'000 + 60'000'001) µs = 360.005608 s, printed exactly.
  EXPECT_EQ(e.Value(h + "_sum", {{"route", "api"}}), "360.005608");
  EXPECT_EQ(e.Uint(h + "_bucket", {{"route", "web"}, {"le", "1"}}), 0u);
  EXPECT_EQ(e.Uint(h + "_bucket", {{"route", "web"}, {"le", "2.5"}}), 1u);
  EXPECT_EQ(e.Value(h + "_sum", {{"route", "web"}}), "1.5");
  EXPECT_EQ(e.Uint(h + "_count", {{"route", "web"}}), 1u);

  EXPECT_EQ(e.Uint("ficus_cluster_upstream_requests_total", {{"cluster", "shop"}}), 24u);
  EXPECT_EQ(
      e.Uint("ficus_cluster_upstream_responses_total", {{"cluster", "shop"}, {"class", "2xx"}}),
      20u);
  EXPECT_EQ(
      e.Uint("ficus_cluster_upstream_responses_total", {{"cluster", "shop"}, {"class", "3xx"}}),
      4u);
  EXPECT_EQ(
      e.Uint("ficus_cluster_upstream_responses_total", {{"cluster", "shop"}, {"class", "1xx"}}),
      0u);
  EXPECT_EQ(e.Uint("ficus_cluster_upstream_connect_failures_total", {{"cluster", "shop"}}), 6u);
  EXPECT_EQ(e.Uint("ficus_cluster_upstream_timeouts_total", {{"cluster", "shop"}}), 4u);
  EXPECT_EQ(e.Uint("ficus_cluster_upstream_connections_opened_total", {{"cluster", "shop"}}), 8u);
  EXPECT_EQ(e.Uint("ficus_cluster_upstream_connections_reused_total", {{"cluster", "shop"}}), 16u);
  EXPECT_EQ(e.Value("ficus_cluster_upstream_connections_idle", {{"cluster", "shop"}}), "6");
}

TEST(RenderTest, HistogramSumIsExactDecimalSeconds) {
  Registry reg(1);
  RouteStats* r = reg.Route("r");
  r->Cell(0).duration.Record(1);
  Exposition e = Parse(reg.RenderPrometheus());
  EXPECT_EQ(e.Value("ficus_route_request_duration_seconds_sum", {{"route", "r"}}), "0.000001");
  r->Cell(0).duration.Record(2'999'999);
  e = Parse(reg.RenderPrometheus());
  EXPECT_EQ(e.Value("ficus_route_request_duration_seconds_sum", {{"route", "r"}}), "3");
  r->Cell(0).duration.Record(120);
  e = Parse(reg.RenderPrometheus());
  EXPECT_EQ(e.Value("ficus_route_request_duration_seconds_sum", {{"route", "r"}}), "3.00012");
}

TEST(RenderTest, EscapesLabelValues) {
  Registry reg(1);
  const std::string nasty = "a\"b\\c\nd}e,f=g";
  reg.Route(nasty)->Cell(0).requests.Add(3);
  reg.Cluster(nasty)->Cell(0).requests.Add(4);
  std::string text = reg.RenderPrometheus();
  EXPECT_NE(text.find("ficus_route_requests_total{route=\"a\\\"b\\\\c\\nd}e,f=g\"} 3\n"),
            std::string::npos)
      << text;
  Exposition e = Parse(text);
  EXPECT_EQ(e.Uint("ficus_route_requests_total", {{"route", nasty}}), 3u);
  EXPECT_EQ(e.Uint("ficus_cluster_upstream_requests_total", {{"cluster", nasty}}), 4u);
  EXPECT_EQ(e.Uint("ficus_route_request_duration_seconds_count", {{"route", nasty}}), 0u);
}

TEST(RenderTest, EveryFamilyHasAllSeriesForEachRouteAndCluster) {
  Registry reg(2);
  reg.Route("a");
  reg.Route("b");
  reg.Cluster("x");
  Exposition e = Parse(reg.RenderPrometheus());
  EXPECT_EQ(e.order.size(), std::size(kAllFamilies));
  for (size_t i = 0; i < e.order.size(); ++i) EXPECT_EQ(e.order[i], kAllFamilies[i]);
  EXPECT_EQ(e.families["ficus_route_requests_total"].samples.size(), 2u);
  EXPECT_EQ(e.families["ficus_route_responses_total"].samples.size(), 10u);
  EXPECT_EQ(e.families["ficus_cluster_upstream_responses_total"].samples.size(), 5u);
  EXPECT_EQ(e.families["ficus_cluster_upstream_connections_idle"].samples.size(), 1u);
  EXPECT_EQ(e.families["ficus_downstream_responses_total"].samples.size(), 5u);
}

// Each worker thread writes only its own cells while a reader renders; after the joins the
// totals must be exact, and every render in between must parse and never go backwards.
TEST(ConcurrencyTest, WritersAndAReader) {
  constexpr int kWorkers = 4;
  constexpr int kIterations = 200'000;
  Registry reg(kWorkers);
  RouteStats* route = reg.Route("r");
  ClusterStats* cluster = reg.Cluster("c");
  std::atomic<bool> done{false};
  std::atomic<bool> reader_started{false};  // so reads really overlap the writes
  std::vector<std::thread> writers;
  for (int w = 0; w < kWorkers; ++w) {
    writers.emplace_back([&, w] {
      while (!reader_started.load()) std::this_thread::yield();
      ServerCell& s = reg.Server(w);
      RouteCell& rc = route->Cell(w);
      ClusterCell& cc = cluster->Cell(w);
      for (int i = 0; i < kIterations; ++i) {
        s.requests.Add();
        s.active_connections.Add(1);
        rc.requests.Add();
        rc.responses[1].Add();
        rc.duration.Record(static_cast<uint64_t>(i % 2000));
        cc.requests.Add();
        s.active_connections.Add(-1);
      }
    });
  }
  int renders = 0;
  std::thread reader([&] {
    uint64_t last = 0;
    reader_started = true;
    do {
      // Routes registered while rendering must be safe too.
      reg.Route(std::string("late").append(std::to_string(renders % 8)));
      Exposition e = Parse(reg.RenderPrometheus());
      uint64_t n = e.Uint("ficus_route_requests_total", {{"route", "r"}});
      EXPECT_GE(n, last);
      last = n;
      uint64_t count = e.Uint("ficus_route_request_duration_seconds_count", {{"route", "r"}});
      EXPECT_EQ(count, e.Uint("ficus_route_request_duration_seconds_bucket",
                              {{"route", "r"}, {"le", "+Inf"}}));
      ++renders;
    } while (!done.load());
  });
  for (std::thread& t : writers) t.join();
  done = true;
  reader.join();
  EXPECT_GT(renders, 0);

  Exposition e = Parse(reg.RenderPrometheus());
  const uint64_t total = uint64_t{kWorkers} * kIterations;
  EXPECT_EQ(e.Uint("ficus_downstream_requests_total"), total);
  EXPECT_EQ(e.Value("ficus_downstream_connections_active"), "0");
  EXPECT_EQ(e.Uint("ficus_route_requests_total", {{"route", "r"}}), total);
  EXPECT_EQ(e.Uint("ficus_route_responses_total", {{"route", "r"}, {"class", "2xx"}}), total);
  EXPECT_EQ(e.Uint("ficus_route_request_duration_seconds_count", {{"route", "r"}}), total);
  // i % 2000 in [0, 500] falls at or under 0.0005 s: 501 of every 2000 values.
  EXPECT_EQ(
      e.Uint("ficus_route_request_duration_seconds_bucket", {{"route", "r"}, {"le", "0.0005"}}),
      uint64_t{kWorkers} * (kIterations / 2000) * 501);
  EXPECT_EQ(e.Uint("ficus_cluster_upstream_requests_total", {{"cluster", "c"}}), total);
  uint64_t sum_micros = 0;
  for (int i = 0; i < kIterations; ++i) sum_micros += i % 2000;
  sum_micros *= kWorkers;
  std::string want_sum = std::to_string(sum_micros / 1'000'000);
  if (sum_micros % 1'000'000 != 0) {
    std::string frac = std::to_string(1'000'000 + sum_micros % 1'000'000).substr(1);
    while (frac.back() == '0') frac.pop_back();
    want_sum += "." + frac;
  }
  EXPECT_EQ(e.Value("ficus_route_request_duration_seconds_sum", {{"route", "r"}}), want_sum);
}

}  // namespace
}  // namespace ficus::observe

namespace ficus::observe {
namespace {

TEST(KeySketchTest, TracksEveryHeavyKeyAndCountsItsRequests) {
  KeySketch sketch;
  auto add = [&](std::string_view k) { sketch.Add(HashClient(k), k); };
  // One key with 45 % of the requests among 40 light ones (more keys than slots).
  for (int i = 0; i < 4000; ++i) {
    if (i % 20 < 9) {
      add("key:partner-scraper-7");
    } else {
      add("key:user-" + std::to_string(i % 40));
    }
  }
  auto entries = sketch.Take(/*reset=*/true);
  ASSERT_LE(entries.size(), static_cast<size_t>(KeySketch::kSlots));
  const KeySketch::Entry* heavy = nullptr;
  for (const auto& e : entries)
    if (e.key == "key:partner-scraper-7") heavy = &e;
  ASSERT_NE(heavy, nullptr);
  // Space-Saving overestimates by at most n / slots; a key tracked from its first request
  // and never evicted (it is always above the minimum) is exact.
  EXPECT_EQ(heavy->count, 1800u);
  // Take resets at the worker's next Add: only what came after counts.
  EXPECT_TRUE(sketch.Take(true).empty());
  add("addr:10.0.0.1");
  entries = sketch.Take(false);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].key, "addr:10.0.0.1");
  EXPECT_EQ(entries[0].count, 1u);
}

TEST(KeySketchTest, LongKeysAreCut) {
  KeySketch sketch;
  const std::string long_key(100, 'k');
  const std::string_view cut = std::string_view(long_key).substr(0, KeySketch::kKeyBytes);
  sketch.Add(HashClient(cut), long_key);
  auto entries = sketch.Take(false);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].key, cut);
}

}  // namespace
}  // namespace ficus::observe
