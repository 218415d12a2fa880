// The offload and job URL policies through the request phases (tests/proxy/phase_harness.h),
// with a real queue service (store in a temporary data_dir, writer, deliverer) and a blocking
// loopback application that records what it is delivered.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "../proxy/phase_harness.h"
#include "queue/internal/service.h"
#include "queue/queue.h"

namespace ficus::queue {
namespace {

using proxy::PhaseTest;

// An application on a thread: answers each request with `status`, one request per connection.
class App {
 public:
  explicit App(int status) : status_(status) {
    fd_ = proxy::phase_test::ListenLoopback(&port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~App() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Waits up to 5 s for `n` requests.
  bool WaitFor(size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (requests().size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string got;
      char buf[4096];
      for (int i = 0; i < 200; ++i) {  // bounded: the whole request within ~2 s
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 10) <= 0) continue;
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
        const size_t end = got.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        const size_t cl = got.find("Content-Length: ");
        const size_t len = cl == std::string::npos ? 0 : std::stoul(got.substr(cl + 16));
        if (got.size() >= end + 4 + len) break;
      }
      {
        std::lock_guard lock(mu_);
        requests_.push_back(got);
      }
      const std::string answer = "HTTP/1.1 " + std::to_string(status_) +
                                 " X\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
                                 "Connection: close\r\n\r\ndone";
      [[maybe_unused]] ssize_t w = ::write(c, answer.data(), answer.size());
      ::close(c);
    }
  }
  int status_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

// A queue service over a temporary data_dir for one test.
class Service {
 public:
  Service(int app_port, const std::string& queue_extra) {
    dir_ = (std::filesystem::temp_directory_path() /
            ("ficus_offload_test_" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
    const std::string yaml =
        "data_dir: " + dir_ +
        "\nlisteners: [{ listen: 127.0.0.1:8080 }]\n"
        "clusters: [{ name: app, endpoints: [127.0.0.1:" +
        std::to_string(app_port) +
        "] }]\n"
        "routes:\n"
        "  - { match: { path: /signup }, cluster: app, offload: { queue: q, max_attempts: 2 } }\n"
        "  - { match: { path_prefix: /jobs/q/ }, cluster: app, jobs: { queue: q } }\n"
        "queues: [{ name: q" +
        (queue_extra.empty() ? std::string(", backoff: 10ms") : queue_extra) + " }]\n";
    config::LoadResult r = config::LoadString(yaml, "offload.yaml");
    EXPECT_TRUE(r.errors.empty()) << r.errors[0].ToString();
    config_ = r.config;
    Start(*config_);
  }
  ~Service() {
    Stop();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<policy::Policy> Offload() const {
    return internal::MakeOffloadPolicy(*config_->routes[0].offload, config_->queues[0], "app",
                                       internal::FindQueue("q"));
  }
  std::unique_ptr<policy::Policy> Jobs() const {
    return internal::MakeJobsPolicy(config_->queues[0], internal::FindQueue("q"));
  }

 private:
  std::string dir_;
  std::shared_ptr<const config::Config> config_;
};

// One request through a fresh session with `policy`: what the client got.
std::string Exchange(std::unique_ptr<policy::Policy> policy, const std::string& request) {
  PhaseTest t(proxy::phase_test::Cluster("127.0.0.1:9"));
  t.AddPolicy(std::move(policy));
  t.ClientSends(request);
  t.Drive([&]() -> net::Task<void> {
    const bool read = co_await t.ReadHead();
    EXPECT_TRUE(read);
    if (read) co_await t.RunExchange();
  });
  return t.ClientReceived();
}

std::string Post(std::string_view body, std::string_view key = "") {
  std::string r = "POST /signup HTTP/1.1\r\nHost: shop\r\nContent-Type: text/plain\r\n";
  if (!key.empty()) r += "Idempotency-Key: " + std::string(key) + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
  return r;
}

std::string JobIdIn(const std::string& answer) {
  const size_t at = answer.find("Location: /jobs/q/");
  return at == std::string::npos ? "" : answer.substr(at + 18, 48);
}

TEST(OffloadPhases, AnOffloadedRequestIsAcceptedThenDeliveredWithItsKeyAndJobId) {
  App app(201);
  Service service(app.port(), "");
  const std::string out = Exchange(service.Offload(), Post("hello", "key-1"));
  ASSERT_EQ(out.rfind("HTTP/1.1 202 Accepted\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Retry-After: 1\r\n"), std::string::npos) << out;
  const std::string id = JobIdIn(out);
  ASSERT_EQ(id.size(), 48u) << out;
  ASSERT_TRUE(app.WaitFor(1));
  const std::string delivered = app.requests()[0];
  EXPECT_EQ(delivered.rfind("POST /signup HTTP/1.1\r\n", 0), 0u) << delivered;
  EXPECT_NE(delivered.find("Idempotency-Key: key-1\r\n"), std::string::npos) << delivered;
  EXPECT_NE(delivered.find("Ficus-Job-Id: " + id + "\r\n"), std::string::npos) << delivered;
  EXPECT_NE(delivered.find("Content-Type: text/plain\r\n"), std::string::npos) << delivered;
  EXPECT_EQ(delivered.substr(delivered.size() - 5), "hello");
  // The job URL shows it succeeded, with the application's answer (the update is a commit
  // behind the delivery: poll briefly).
  std::string job;
  for (int i = 0; i < 200; ++i) {
    job = Exchange(service.Jobs(), "GET /jobs/q/" + id + " HTTP/1.1\r\nHost: shop\r\n\r\n");
    if (job.find("\"state\":\"succeeded\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(job.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << job;
  EXPECT_NE(job.find("\"state\":\"succeeded\""), std::string::npos) << job;
  EXPECT_NE(job.find("\"status\":201"), std::string::npos) << job;
  EXPECT_NE(job.find("\"body\":\"done\""), std::string::npos) << job;
  EXPECT_NE(job.find("\"attempts\":1"), std::string::npos) << job;
  const std::string none = Exchange(
      service.Jobs(), "GET /jobs/q/" + std::string(48, 'a') + " HTTP/1.1\r\nHost: s\r\n\r\n");
  EXPECT_EQ(none.rfind("HTTP/1.1 404 ", 0), 0u) << none;
  const std::string bad = Exchange(service.Jobs(), "GET /jobs/q/xyz HTTP/1.1\r\nHost: s\r\n\r\n");
  EXPECT_EQ(bad.rfind("HTTP/1.1 404 ", 0), 0u) << bad;
}

TEST(OffloadPhases, ARepeatedKeyGetsTheSameJobAndAReusedOneIsRefused) {
  App app(200);
  Service service(app.port(), "");
  const std::string first = Exchange(service.Offload(), Post("same", "k"));
  const std::string again = Exchange(service.Offload(), Post("same", "k"));
  const std::string other = Exchange(service.Offload(), Post("different", "k"));
  ASSERT_EQ(first.rfind("HTTP/1.1 202 ", 0), 0u) << first;
  ASSERT_EQ(again.rfind("HTTP/1.1 202 ", 0), 0u) << again;
  EXPECT_EQ(JobIdIn(first), JobIdIn(again));
  EXPECT_NE(again.find("\"repeated\":true"), std::string::npos) << again;
  EXPECT_EQ(other.rfind("HTTP/1.1 422 ", 0), 0u) << other;
  ASSERT_TRUE(app.WaitFor(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(app.requests().size(), 1u);  // one job, one delivery
}

TEST(OffloadPhases, ARetriedJobKeepsItsKeyAndIsDeadAfterMaxAttempts) {
  App app(503);  // retried (retry_on), twice (max_attempts: 2), 10 ms apart
  Service service(app.port(), "");
  const std::string out = Exchange(service.Offload(), Post("x"));
  const std::string id = JobIdIn(out);
  ASSERT_EQ(id.size(), 48u) << out;
  ASSERT_TRUE(app.WaitFor(2));
  std::string job;
  for (int i = 0; i < 200; ++i) {
    job = Exchange(service.Jobs(), "GET /jobs/q/" + id + " HTTP/1.1\r\nHost: s\r\n\r\n");
    if (job.find("\"state\":\"dead\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(job.find("\"state\":\"dead\""), std::string::npos) << job;
  EXPECT_NE(job.find("\"attempts\":2"), std::string::npos) << job;
  EXPECT_NE(job.find("\"status\":503"), std::string::npos) << job;
  const auto requests = app.requests();
  ASSERT_EQ(requests.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NE(requests[i].find("Idempotency-Key: " + id + "\r\n"), std::string::npos);
    EXPECT_NE(requests[i].find("Ficus-Attempt: " + std::to_string(i + 1) + "\r\n"),
              std::string::npos);
  }
}

TEST(OffloadPhases, ABodyOverMaxBodyIs413AndAFullQueue503) {
  // No application: the job stays queued (retrying), so the queue of one is full.
  Service service(9, ", max_body: 8, max_jobs: 1, backoff: 10s, max_backoff: 10s");
  const std::string big = Exchange(service.Offload(), Post("123456789"));
  EXPECT_EQ(big.rfind("HTTP/1.1 413 ", 0), 0u) << big;
  const std::string chunked = Exchange(service.Offload(),
                                       "POST /signup HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: "
                                       "chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.rfind("HTTP/1.1 413 ", 0), 0u) << chunked;
  const std::string one = Exchange(service.Offload(), Post("1"));
  EXPECT_EQ(one.rfind("HTTP/1.1 202 ", 0), 0u) << one;
  const std::string two = Exchange(service.Offload(), Post("2"));
  EXPECT_EQ(two.rfind("HTTP/1.1 503 ", 0), 0u) << two;
  EXPECT_NE(two.find("Retry-After: 1\r\n"), std::string::npos) << two;
  std::string metrics;
  RenderMetrics(metrics);
  EXPECT_NE(metrics.find("ficus_queue_depth{queue=\"q\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("ficus_queue_full_total{queue=\"q\"} 1"), std::string::npos) << metrics;
}

TEST(OffloadPhases, WithoutAServiceAnOffloadRouteAnswers503) {
  config::Queue q;
  q.name = "q";
  q.jobs_path = "/jobs/q";
  const std::string out =
      Exchange(internal::MakeOffloadPolicy(config::Offload{"q", 5}, q, "app", nullptr), Post("x"));
  EXPECT_EQ(out.rfind("HTTP/1.1 503 ", 0), 0u) << out;
}

}  // namespace
}  // namespace ficus::queue
