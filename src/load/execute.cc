// Execute: the target checked, one Worker per thread, the progress line and early stop on a
// signal, then the workers' counts merged into the Summary.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "base/text.h"
#include "load/internal/engine.h"

namespace ficus::load {
namespace {

using internal::Worker;

// SIGINT / SIGTERM during a run: the front end's progress loop polls it and ends the run.
std::atomic<bool> g_stop_signal{false};
extern "C" void OnStopSignal(int) { g_stop_signal.store(true, std::memory_order_relaxed); }

// Installs the handlers for the length of a run (one-shot: a second signal kills as usual).
class StopSignals {
 public:
  explicit StopSignals(bool install) : installed_(install) {
    g_stop_signal.store(false);
    if (!installed_) return;
    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    if (!installed_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  bool installed_;
  struct sigaction old_int_ {
  }, old_term_{};
};

// One blocking connect with a bounded wait: is anyone listening?
std::string TryConnect(const net::Address& to, int64_t timeout_ns) {
  int fd = ::socket(to.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  std::string error;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to.storage), to.length) != 0) {
    if (errno != EINPROGRESS) {
      error = std::strerror(errno);
    } else {
      pollfd p{fd, POLLOUT, 0};
      int ms = static_cast<int>(std::clamp<int64_t>(timeout_ns / 1'000'000, 1, 3000));
      int n = ::poll(&p, 1, ms);
      if (n == 0) {
        error = "connect timed out";
      } else {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) error = std::strerror(err);
      }
    }
  }
  ::close(fd);
  return error;
}

std::string HumanNs(int64_t ns) {
  char buf[32];
  if (ns < 1'000'000)
    std::snprintf(buf, sizeof buf, "%.0fus", static_cast<double>(ns) / 1e3);
  else if (ns < 1'000'000'000)
    std::snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(ns) / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ns) / 1e9);
  return buf;
}

// Expected requests in [0, t] of the run (open model).
double CountAt(const Plan& plan, int64_t t) {
  return plan.capture ? plan.capture->CountAt(t) : plan.profile.CountAt(t);
}

// The live progress line, on a terminal only: elapsed/total, target and achieved rate over
// the last second, p50/p99 of the last finished second, errors and drops so far.
class Progress {
 public:
  Progress(const Plan& plan, int64_t start_ns)
      : plan_(plan),
        start_ns_(start_ns),
        tty_(!plan.quiet && isatty(STDERR_FILENO) == 1),
        next_ns_(start_ns + 1'000'000'000) {}
  ~Progress() {
    if (tty_) std::fprintf(stderr, "\r\033[K");
  }

  void Show(int64_t now, int64_t run_ns, const std::vector<std::unique_ptr<Worker>>& workers,
            internal::Seconds& seconds) {
    if (!tty_ || now < next_ns_) return;
    uint64_t sent = 0, errors = 0, dropped = 0;
    for (auto& w : workers) {
      sent += w->progress_sent.load(std::memory_order_relaxed);
      errors += w->progress_errors.load(std::memory_order_relaxed);
      dropped += w->progress_dropped.load(std::memory_order_relaxed);
    }
    double t = static_cast<double>(now - start_ns_) / 1e9;
    double achieved = static_cast<double>(sent - last_sent_);
    last_sent_ = sent;
    std::string line = run_ns == internal::kUnboundedNanos
                           ? Format("\r[%5.1fs, until Ctrl-C] ", t)
                           : Format("\r[%5.1fs/%.1fs] ", t, static_cast<double>(run_ns) / 1e9);
    if (!plan_.closed) {
      int64_t from = next_ns_ - start_ns_ - 1'000'000'000;
      line +=
          Format("target %.0f/s  ", CountAt(plan_, from + 1'000'000'000) - CountAt(plan_, from));
    }
    line += Format("achieved %.0f/s", achieved);
    if (auto latest = seconds.Latest()) {
      line += Format("  p50 %s  p99 %s", HumanNs(latest->second.p50).c_str(),
                     HumanNs(latest->second.p99).c_str());
    }
    line += Format("  errors %llu", static_cast<unsigned long long>(errors));
    if (!plan_.closed) line += Format("  dropped %llu", static_cast<unsigned long long>(dropped));
    line += "\033[K";
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    next_ns_ += 1'000'000'000;
  }

 private:
  const Plan& plan_;
  const int64_t start_ns_;
  const bool tty_;
  int64_t next_ns_;
  uint64_t last_sent_ = 0;
};

// The workers' counts, and per second of the run the target, the sends and the latencies.
Summary Summarize(const Plan& plan, int64_t start_ns, int64_t run_ns,
                  const std::vector<std::unique_ptr<Worker>>& workers, internal::Seconds& seconds) {
  Summary s;
  s.closed = plan.closed;
  s.target_rate = plan.closed ? 0 : CountAt(plan, run_ns) / (static_cast<double>(run_ns) / 1e9);
  s.profile = plan.profile_text;
  int64_t last_send = 0;
  for (auto& w : workers) {
    s.stats.Merge(w->stats());
    last_send = std::max(last_send, w->last_send_ns());
  }
  int64_t elapsed = run_ns;
  if (!plan.closed && last_send > start_ns + run_ns) elapsed = last_send - start_ns;
  s.elapsed_s = static_cast<double>(elapsed) / 1e9;
  s.achieved_rate = static_cast<double>(s.stats.sent) / s.elapsed_s;
  size_t n = static_cast<size_t>((run_ns + 999'999'999) / 1'000'000'000);
  n = std::min(std::max(n, s.stats.sent_per_second.size()), internal::kMaxSeconds);
  for (size_t i = 0; i < n; ++i) {
    Summary::Second sec;
    if (i < s.stats.sent_per_second.size()) sec.achieved = s.stats.sent_per_second[i];
    if (!plan.closed) {
      int64_t from = static_cast<int64_t>(i) * 1'000'000'000;
      int64_t to = std::min(from + 1'000'000'000, run_ns);
      if (from < run_ns) sec.target = CountAt(plan, to) - CountAt(plan, from);
    }
    internal::Seconds::Done d = seconds.Get(i);
    sec.completed = d.completed;
    sec.errors = d.errors;
    sec.p50_ns = d.p50;
    sec.p99_ns = d.p99;
    s.per_second.push_back(sec);
  }
  return s;
}

}  // namespace

Outcome<Summary> Execute(const Plan& plan) {
  internal::Execution exec{plan, {}};
  try {
    exec.address = net::MakeAddress(plan.url.ip, plan.url.port);
  } catch (const std::exception& e) {
    return Failed(e.what());
  }
  if (std::string e = TryConnect(exec.address, plan.timeout_ns); !e.empty())
    return Failed(
        std::string("cannot connect to ").append(exec.address.ToString()).append(": ").append(e));
  exec.method = http::ParseMethod(plan.method);
  exec.seed = plan.seed ? *plan.seed : std::random_device{}();
  // Each execution draws a scenario's counters from their start.
  if (plan.scenario) plan.scenario->counter->store(0, std::memory_order_relaxed);
  internal::Seconds seconds(plan.threads);
  exec.seconds = &seconds;
  exec.start_ns = MonotonicNanos() + 20'000'000;  // let the threads start first
  // Split connections and the backlog over the threads.
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < plan.threads; ++i) {
    int conns = plan.connections / plan.threads + (i < plan.connections % plan.threads ? 1 : 0);
    size_t backlog = static_cast<size_t>(plan.backlog / plan.threads +
                                         (i < plan.backlog % plan.threads ? 1 : 0));
    workers.push_back(std::make_unique<Worker>(exec, i, conns, backlog));
  }
  StopSignals signals(!plan.quiet);
  int64_t run_ns = plan.duration_ns;  // shorter when a signal ends the run early
  std::atomic<int> running{plan.threads};
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&running, w = w.get()] {
      w->Run();
      running.fetch_sub(1);
    });
  }
  {
    Progress progress(plan, exec.start_ns);
    while (running.load() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      int64_t now = MonotonicNanos();
      const bool stop = g_stop_signal.load(std::memory_order_relaxed) ||
                        (plan.stop != nullptr && plan.stop->load(std::memory_order_relaxed));
      if (stop && now - exec.start_ns < run_ns) {
        run_ns = std::max<int64_t>(now - exec.start_ns, 1);
        for (auto& w : workers) w->StopAt(exec.start_ns + run_ns);
      }
      progress.Show(now, run_ns, workers, seconds);
    }
    for (auto& t : threads) t.join();
    seconds.FinalizeAll();
  }
  return Summarize(plan, exec.start_ns, run_ns, workers, seconds);
}

}  // namespace ficus::load
