// Status-code counters, endpoint stats and snapshots; the record rings; the access log writer
// (format, file, rotation, drop counting when the writer is stuck); the tracer (ids, sampling,
// OTLP body, export to a real socket, drops when the collector is down).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "base/base.h"
#include "base/text.h"
#include "observe/observe.h"

namespace ficus::observe {
namespace {

ExchangeRecord MakeRecord(std::string_view path = "/a") {
  ExchangeRecord r;
  r.Begin(MonotonicNanos(), "GET", "rid-1", "10.0.0.1", "example.com", path, "ua/\"1\"");
  r.end_ns = r.start_ns + 1500'000;
  r.status = 200;
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string TempPath(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("ficus-observe-") + std::to_string(getpid()) + "-" + name))
      .string();
}

TEST(CodeCountersTest, SixteenCodesThenOther) {
  CodeCounters c;
  for (int code = 200; code < 217; ++code) c.Add(code);  // 17 distinct codes
  c.Add(200);
  c.Add(0);  // no response: not counted
  std::vector<std::pair<int, uint64_t>> seen;
  c.ForEach([&](int code, uint64_t n) { seen.emplace_back(code, n); });
  ASSERT_EQ(seen.size(), 17u);
  EXPECT_EQ(seen[0], std::make_pair(200, uint64_t{2}));
  EXPECT_EQ(seen[15], std::make_pair(215, uint64_t{1}));
  EXPECT_EQ(seen[16], std::make_pair(0, uint64_t{1}));  // 216 went to "other"
}

TEST(SnapshotTest, MergesWorkersAndRendersEndpointsCodesAndCollectors) {
  Registry reg(2);
  TrafficStats* ep = reg.Endpoint("shop", "127.0.0.1:3000");
  EXPECT_EQ(reg.Endpoint("shop", "127.0.0.1:3000"), ep);
  EXPECT_NE(reg.Endpoint("other", "127.0.0.1:3000"), ep);
  ClusterStats* shop = reg.Cluster("shop");
  for (int w = 0; w < 2; ++w) {
    TrafficCell& c = ep->Cell(w);
    c.requests.Add(3);
    c.codes.Add(200);
    c.codes.Add(503);
    c.upstream_connect.Record(700);
    c.upstream_first_byte.Record(2000);
    c.in_flight.Add(1);
    shop->traffic.Cell(w).requests.Add(5);
    shop->Cell(w).requests.Add(4);
    shop->Cell(w).connections_reused.Add(3);
  }
  reg.AddCollector([](MetricWriter& w) {
    w.Family("ficus_test_total", "counter", "A collector's family.");
    w.Sample("ficus_test_total", {{"k", "v"}}, 42);
  });
  MetricsSnapshot s = reg.Collect();
  ASSERT_EQ(s.endpoints.size(), 2u);
  const TrafficTotals& t = s.endpoints[0];
  EXPECT_EQ(t.cluster, "shop");
  EXPECT_EQ(t.name, "127.0.0.1:3000");
  EXPECT_EQ(t.requests, 6u);
  EXPECT_EQ(t.in_flight, 2);
  EXPECT_EQ(t.codes, (std::vector<std::pair<int, uint64_t>>{{200, 2}, {503, 2}}));
  EXPECT_EQ(t.upstream_connect.Count(), 2u);
  EXPECT_EQ(t.upstream_first_byte.sum_micros, 4000u);
  ASSERT_EQ(s.clusters.size(), 1u);
  EXPECT_EQ(s.clusters[0].traffic.requests, 10u);
  EXPECT_EQ(s.clusters[0].upstream_requests, 8u);

  std::string text = reg.RenderPrometheus();
  EXPECT_NE(
      text.find("ficus_endpoint_requests_total{cluster=\"shop\",endpoint=\"127.0.0.1:3000\"} 6"),
      std::string::npos);
  EXPECT_NE(text.find("ficus_endpoint_responses_by_code_total{cluster=\"shop\",endpoint=\"127.0.0."
                      "1:3000\",code=\"503\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("ficus_endpoint_upstream_first_byte_seconds_sum{cluster=\"shop\",endpoint="
                      "\"127.0.0.1:3000\"} 0.004"),
            std::string::npos);
  EXPECT_NE(text.find("ficus_cluster_upstream_connection_reuse_ratio{cluster=\"shop\"} 0.75"),
            std::string::npos);
  EXPECT_NE(text.find("ficus_test_total{k=\"v\"} 42\n"), std::string::npos);
  EXPECT_NE(text.find("ficus_build_info{version=\""), std::string::npos);
}

TEST(ProcessStatsTest, ReadsThisProcess) {
  ProcessStats p = ReadProcessStats();
  EXPECT_GT(p.resident_bytes, 1u << 20);
  EXPECT_GE(p.virtual_bytes, p.resident_bytes);
  EXPECT_GE(p.open_fds, 3u);
  EXPECT_GT(p.max_fds, p.open_fds);
  EXPECT_GT(p.start_time_seconds, 1.6e9);
}

TEST(RecordRingsTest, FullRingDropsAndCounts) {
  RecordRings rings(2, 4);
  ExchangeRecord r = MakeRecord();
  for (int i = 0; i < 6; ++i) {
    r.status = static_cast<uint16_t>(200 + i);
    EXPECT_EQ(rings.Push(1, r), i < 4);
  }
  EXPECT_EQ(rings.dropped(), 2u);
  EXPECT_EQ(rings.pushed(), 4u);
  std::vector<int> got;
  EXPECT_EQ(rings.Drain(0, 10, [&](const ExchangeRecord& x) { got.push_back(x.status); }), 0u);
  EXPECT_EQ(rings.Drain(1, 3, [&](const ExchangeRecord& x) { got.push_back(x.status); }), 3u);
  EXPECT_TRUE(rings.Push(1, r));  // room again
  EXPECT_EQ(rings.Drain(1, 10, [&](const ExchangeRecord& x) { got.push_back(x.status); }), 2u);
  EXPECT_EQ(got, (std::vector<int>{200, 201, 202, 203, 205}));
}

TEST(AccessLogTest, FormatsEveryFieldAsJson) {
  ExchangeRecord r = MakeRecord("/p\"a\\th\x01\xe9");
  std::string route = "api", cluster = "shop";
  r.route = &route;
  r.cluster = &cluster;
  r.bytes_in = 5;
  r.bytes_out = 12;
  r.sent_ns = r.start_ns + 100'000;
  r.first_byte_ns = r.start_ns + 400'000;
  r.error = "upstream \"x\"";
  r.SetConsumer("mobile-app");
  r.termination = Termination::kUpstreamClosed;
  std::vector<LogField> all;
  for (int i = 0; i < kLogFieldCount; ++i) all.push_back(static_cast<LogField>(i));
  std::string line;
  AccessLog::FormatLine(r, all, 0, line);
  EXPECT_EQ(line.substr(line.find("\"request_id\"")),
            "\"request_id\":\"rid-1\",\"trace_id\":null,\"client\":\"10.0.0.1\",\"method\":\"GET\","
            "\"host\":\"example.com\",\"path\":\"/p\\\"a\\\\th\\u0001\\ufffd\",\"route\":\"api\","
            "\"cluster\":\"shop\",\"endpoint\":null,\"status\":200,\"bytes_in\":5,\"bytes_out\":12,"
            "\"duration_us\":1500,\"connect_us\":null,\"first_byte_us\":300,\"retries\":0,"
            "\"user_agent\":\"ua/\\\"1\\\"\",\"error\":\"upstream \\\"x\\\"\","
            "\"consumer\":\"mobile-app\",\"termination\":\"upstream_closed\"}\n");
  line.clear();
  AccessLog::FormatLine(r, {LogField::kStatus, LogField::kTime},
                        1'700'000'000'000'000'000 - r.start_ns, line);
  EXPECT_EQ(line, "{\"status\":200,\"time\":\"2023-11-14T22:13:20.000000Z\"}\n");
  LogField f;
  EXPECT_TRUE(LogFieldByName("first_byte_us", &f));
  EXPECT_EQ(f, LogField::kFirstByteUs);
  EXPECT_FALSE(LogFieldByName("cookie", &f));
  EXPECT_TRUE(LogFieldByName("termination", &f));
  EXPECT_EQ(f, LogField::kTermination);
  EXPECT_EQ(TerminationName(Termination::kComplete), "complete");
  EXPECT_EQ(TerminationName(Termination::kClientStalled), "client_stalled");
  EXPECT_EQ(TerminationName(Termination::kDrain), "drain");
}

// FormatLine sizes a line once (MaxLineBytes) and writes through a cursor: the bound must hold
// for the worst record there is, every string a run of bytes that each need a 6-byte escape,
// every number at its longest, and fields listed more than once.
TEST(AccessLogTest, LineBoundHoldsForTheWorstRecord) {
  const std::string control(2000, '\x01');
  ExchangeRecord r;
  r.Begin(INT64_MAX / 2, control, control, control, control, control, control);
  r.end_ns = INT64_MAX;
  r.connect_start_ns = r.sent_ns = 1;
  r.connected_ns = r.first_byte_ns = INT64_MAX;
  r.bytes_in = r.bytes_out = UINT64_MAX;
  r.status = UINT16_MAX;
  r.retries = UINT8_MAX;
  r.trace.trace_id.fill(0xff);
  std::string route = control, cluster = control, endpoint = control;
  r.route = &route;
  r.cluster = &cluster;
  r.endpoint = &endpoint;
  r.error = control.c_str();
  r.SetConsumer(control);
  std::vector<LogField> fields;
  for (int twice = 0; twice < 2; ++twice) {
    for (int i = 0; i < kLogFieldCount; ++i) fields.push_back(static_cast<LogField>(i));
  }
  std::string line = "previous line\n";
  AccessLog::FormatLine(r, fields, 0, line);
  const size_t written = line.size() - 14;
  EXPECT_LE(written, AccessLog::MaxLineBytes(r, fields));
  EXPECT_TRUE(line.starts_with("previous line\n{\"time\":\""));
  EXPECT_TRUE(line.ends_with("\"}\n"));
  EXPECT_NE(line.find("\"trace_id\":\"ffffffffffffffffffffffffffffffff\""), std::string::npos);
  EXPECT_NE(line.find("\"bytes_in\":18446744073709551615,"), std::string::npos);

  // An empty error text is written as null: 4 bytes where the string's own bound is 2.
  r.error = "";
  line.clear();
  AccessLog::FormatLine(r, {LogField::kError}, 0, line);
  EXPECT_EQ(line, "{\"error\":null}\n");
  EXPECT_LE(line.size(), AccessLog::MaxLineBytes(r, {LogField::kError}));
}

TEST(AccessLogTest, WritesReopensAndCounts) {
  const std::string path = TempPath("access.log");
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".1");
  AccessLogOptions o;
  o.path = path;
  o.fields = {LogField::kPath};
  std::string error;
  auto log = AccessLog::Open(o, 2, &error);
  ASSERT_TRUE(log) << error;
  log->Submit(0, MakeRecord("/one"));
  log->Submit(1, MakeRecord("/two"));
  log->Flush();
  EXPECT_EQ(log->written(), 2u);
  std::filesystem::rename(path, path + ".1");
  log->Reopen();
  for (int i = 0; i < 200 && log->reopens() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(log->reopens(), 1u);
  log->Submit(0, MakeRecord("/three"));
  log->Flush();
  EXPECT_EQ(ReadFile(path + ".1"), "{\"path\":\"/one\"}\n{\"path\":\"/two\"}\n");
  EXPECT_EQ(ReadFile(path), "{\"path\":\"/three\"}\n");
  log.reset();
  std::filesystem::remove(path);
  std::filesystem::remove(path + ".1");
  o.path = "/nonexistent-dir/x.log";
  EXPECT_FALSE(AccessLog::Open(o, 1, &error));
  EXPECT_NE(error.find("/nonexistent-dir/x.log"), std::string::npos);
}

TEST(AccessLogTest, StuckWriterDropsAndCountsWithoutBlockingWorkers) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  AccessLogOptions o;
  o.path = "/proc/self/fd/" + std::to_string(fds[1]);  // a pipe nobody reads yet
  o.ring_capacity = 16;
  std::string error;
  auto log = AccessLog::Open(o, 1, &error);
  ASSERT_TRUE(log) << error;
  constexpr int kSubmitted = 5000;
  const int64_t t0 = MonotonicNanos();
  for (int i = 0; i < kSubmitted; ++i) log->Submit(0, MakeRecord());
  const int64_t elapsed = MonotonicNanos() - t0;
  EXPECT_LT(elapsed, 1'000'000'000) << "Submit must never wait for the writer";
  // Wait for the writer to block on the full pipe, then check the drops.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GT(log->dropped(), 0u);
  // Unblock: read everything in the background while the log shuts down.
  std::atomic<bool> done{false};
  size_t lines = 0;
  std::thread reader([&] {
    char buf[65536];
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    while (!done.load()) {
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n > 0) {
        for (ssize_t i = 0; i < n; ++i) lines += buf[i] == '\n';
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) {
      for (ssize_t i = 0; i < n; ++i) lines += buf[i] == '\n';
    }
  });
  log->Flush();
  const uint64_t written = log->written(), dropped = log->dropped();
  log.reset();
  done = true;
  reader.join();
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(written + dropped, uint64_t{kSubmitted});
  EXPECT_EQ(lines, written);
}

// A one-shot HTTP server on loopback that answers every request with `status`.
class TinyCollector {
 public:
  explicit TinyCollector(int status) : status_(status) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyCollector() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::string body() {
    std::lock_guard l(mu_);
    return body_;
  }
  int requests() const { return requests_.load(); }

 private:
  void Serve() {
    for (;;) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string data;
      char buf[65536];
      size_t want = std::string::npos;
      while (want == std::string::npos || data.size() < want) {
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        data.append(buf, static_cast<size_t>(n));
        size_t end = data.find("\r\n\r\n");
        size_t cl = data.find("Content-Length: ");
        if (end != std::string::npos && cl != std::string::npos) {
          want = end + 4 + std::stoul(data.substr(cl + 16));
        }
      }
      {
        std::lock_guard l(mu_);
        body_ = data.substr(data.find("\r\n\r\n") + 4);
      }
      ++requests_;
      std::string resp = "HTTP/1.1 " + std::to_string(status_) +
                         " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!write(c, resp.data(), resp.size());
      close(c);
    }
  }
  int status_;
  int fd_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::string body_;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TracerOptions Options(uint16_t port, double sample) {
  TracerOptions o;
  o.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
  o.sample = sample;
  o.flush_interval_ms = 20;
  o.timeout_ms = 500;
  return o;
}

TEST(TracerTest, ParentBasedRatioSampling) {
  std::string error;
  auto none = Tracer::Start(Options(1, 0.0), 1, &error);
  auto all = Tracer::Start(Options(1, 1.0), 1, &error);
  auto half = Tracer::Start(Options(1, 0.5), 1, &error);
  ASSERT_TRUE(none && all && half) << error;
  const uint8_t parent_trace[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const uint8_t parent_span[8] = {8, 7, 6, 5, 4, 3, 2, 1};
  TraceIds ids;
  none->Begin(0, parent_trace, parent_span, true, &ids);
  EXPECT_TRUE(ids.sampled);  // the parent decides
  EXPECT_EQ(0, std::memcmp(ids.trace_id.data(), parent_trace, 16));
  EXPECT_EQ(0, std::memcmp(ids.parent_span_id.data(), parent_span, 8));
  EXPECT_NE(ids.span_id, ids.attempt_span_id);
  all->Begin(0, parent_trace, parent_span, false, &ids);
  EXPECT_FALSE(ids.sampled);
  none->Begin(0, nullptr, nullptr, false, &ids);
  EXPECT_FALSE(ids.sampled);
  EXPECT_EQ(ids.parent_span_id, (std::array<uint8_t, 8>{}));
  int sampled = 0;
  std::set<std::array<uint8_t, 16>> traces;
  for (int i = 0; i < 4000; ++i) {
    half->Begin(0, nullptr, nullptr, false, &ids);
    sampled += ids.sampled;
    traces.insert(ids.trace_id);
  }
  EXPECT_EQ(traces.size(), 4000u);
  EXPECT_NEAR(sampled, 2000, 200);  // ~6.3 sd
  EXPECT_FALSE(Tracer::Start(Options(1, 1), 1, &error) == nullptr);
  TracerOptions bad = Options(1, 1);
  bad.endpoint = "ftp://x:1/";
  EXPECT_EQ(Tracer::Start(bad, 1, &error), nullptr);
  bad.endpoint = "https://x:1/";  // https is fine, an unreadable ca_file is not
  bad.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(Tracer::Start(bad, 1, &error), nullptr);
  EXPECT_NE(error.find("cannot load ca_file /nonexistent/ca.pem"), std::string::npos) << error;
}

TEST(TracerTest, ExportsOtlpJsonBatches) {
  TinyCollector collector(200);
  std::string error;
  auto tracer = Tracer::Start(Options(collector.port(), 1.0), 2, &error);
  ASSERT_TRUE(tracer) << error;
  ExchangeRecord r = MakeRecord("/traced");
  tracer->Begin(1, nullptr, nullptr, false, &r.trace);
  r.upstream_start_ns = r.start_ns + 10'000;
  r.sent_ns = r.start_ns + 20'000;
  r.first_byte_ns = r.start_ns + 900'000;
  r.upstream_status = 200;
  tracer->Submit(1, r);
  tracer->Flush();
  EXPECT_EQ(tracer->exported(), 1u);
  EXPECT_EQ(tracer->dropped(), 0u);
  const std::string body = collector.body();
  char trace_hex[32], span_hex[16], attempt_hex[16];
  WriteHexLower(r.trace.trace_id.data(), 16, trace_hex);
  WriteHexLower(r.trace.span_id.data(), 8, span_hex);
  WriteHexLower(r.trace.attempt_span_id.data(), 8, attempt_hex);
  EXPECT_EQ(body.find("{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\""
                      ",\"value\":{\"stringValue\":\"ficus\"}}]}"),
            0u)
      << body;
  EXPECT_NE(body.find("\"traceId\":\"" + std::string(trace_hex, 32) + "\",\"spanId\":\"" +
                      std::string(span_hex, 16) + "\",\"name\":\"GET\",\"kind\":2"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("\"spanId\":\"" + std::string(attempt_hex, 16) + "\",\"parentSpanId\":\"" +
                      std::string(span_hex, 16) + "\""),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("{\"key\":\"url.path\",\"value\":{\"stringValue\":\"/traced\"}}"),
            std::string::npos);
  EXPECT_NE(body.find("{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}}"),
            std::string::npos);
  EXPECT_NE(body.find("\"name\":\"upstream.first_byte\""), std::string::npos);
}

TEST(TracerTest, CollectorDownOrFailingDropsAndCounts) {
  std::string error;
  {
    auto tracer = Tracer::Start(Options(1, 1.0), 1, &error);  // nothing listens on port 1
    ASSERT_TRUE(tracer);
    const int64_t t0 = MonotonicNanos();
    for (int i = 0; i < 100; ++i) tracer->Submit(0, MakeRecord());
    // Never waits for the exporter (which waits seconds for a collector); a loaded machine may
    // still deschedule this thread for a while.
    EXPECT_LT(MonotonicNanos() - t0, 1'000'000'000);
    tracer->Flush();
    EXPECT_EQ(tracer->dropped(), 100u);
    EXPECT_EQ(tracer->exported(), 0u);
  }
  TinyCollector failing(503);
  auto tracer = Tracer::Start(Options(failing.port(), 1.0), 1, &error);
  tracer->Submit(0, MakeRecord());
  tracer->Flush();
  EXPECT_EQ(failing.requests(), 1);
  EXPECT_EQ(tracer->dropped(), 1u);
  std::string text;
  MetricWriter w(text);
  tracer->Collect(w);
  EXPECT_NE(text.find("ficus_trace_exchanges_dropped_total{reason=\"export_failed\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("ficus_trace_export_failures_total 1"), std::string::npos);
}

}  // namespace
}  // namespace ficus::observe
