// The report's job-queue section: what each queue took in and gave out over the period, whether
// its backlog grew (the application, or the deliverers' share of it, cannot keep up), and what
// to do about it. Reads the telemetry store's queue minutes (one row per queue and minute:
// enqueued, finished by outcome, attempts; depth, oldest job's age and dead letters as the
// minute's last tick saw them).
#include "advisor/internal/queues.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "base/json.h"
#include "base/text.h"

namespace ficus::advisor::internal {

namespace {

uint64_t Finished(const QueueReport& q) { return q.succeeded + q.failed + q.dead; }

std::string Age(int64_t ms) {
  if (ms <= 0) return "-";
  if (ms < 120'000) return Format("%.1f s", static_cast<double>(ms) / 1000);
  if (ms < 7'200'000) return Format("%.1f min", static_cast<double>(ms) / 60'000);
  return Format("%.1f h", static_cast<double>(ms) / 3'600'000);
}

// One line of the section: the queue's figures in words.
std::string Line(const QueueReport& q) {
  return Format(
      "%.1f jobs/s in, %.1f jobs/s delivered; backlog %lld -> %lld (peak %lld); oldest job "
      "%s (longest %s); %llu failed, %llu dead (%lld dead letters kept); %.2f attempts per "
      "finished job%s",
      q.enqueue_rps, q.delivery_rps, static_cast<long long>(q.backlog_start),
      static_cast<long long>(q.backlog_end), static_cast<long long>(q.backlog_peak),
      Age(q.oldest_age_ms).c_str(), Age(q.oldest_age_peak_ms).c_str(),
      static_cast<unsigned long long>(q.failed), static_cast<unsigned long long>(q.dead),
      static_cast<long long>(q.dead_letters),
      Finished(q) ? static_cast<double>(q.attempts) / static_cast<double>(Finished(q)) : 0.0,
      q.growing ? "; the backlog grows: delivery is slower than enqueue" : "");
}

}  // namespace

std::vector<QueueReport> ReadQueues(const config::Config* config, telemetry::Store& store,
                                    int64_t from_ms, int64_t to_ms) {
  std::map<std::string, std::vector<telemetry::QueueMinute>> by_queue;
  for (telemetry::QueueMinute& m : store.QueueMinutes(from_ms, to_ms))
    by_queue[m.queue].push_back(std::move(m));
  std::vector<QueueReport> out;
  for (auto& [name, minutes] : by_queue) {
    QueueReport q;
    q.name = name;
    for (const telemetry::QueueMinute& m : minutes) {  // oldest first
      q.enqueued += m.enqueued;
      q.succeeded += m.succeeded;
      q.failed += m.failed;
      q.dead += m.dead;
      q.attempts += m.attempts;
      q.backlog_peak = std::max(q.backlog_peak, m.depth);
      q.oldest_age_peak_ms = std::max(q.oldest_age_peak_ms, m.oldest_age_ms);
    }
    const telemetry::QueueMinute& first = minutes.front();
    const telemetry::QueueMinute& last = minutes.back();
    // The backlog before the first minute: its depth less what that minute added to it.
    q.backlog_start = std::max<int64_t>(
        0, first.depth - (static_cast<int64_t>(first.enqueued) -
                          static_cast<int64_t>(first.succeeded + first.failed + first.dead)));
    q.backlog_end = last.depth;
    q.oldest_age_ms = last.oldest_age_ms;
    q.dead_letters = last.dead_letters;
    const double secs = static_cast<double>(last.ts_ms - first.ts_ms + 60'000) / 1000.0;
    q.enqueue_rps = static_cast<double>(q.enqueued) / secs;
    q.delivery_rps = static_cast<double>(Finished(q)) / secs;
    const int64_t grew = q.backlog_end - q.backlog_start;
    q.growing = Finished(q) < q.enqueued && grew >= kBacklogMinJobs &&
                static_cast<double>(grew) >= kBacklogMinShare * static_cast<double>(q.enqueued);
    if (config) {
      for (const config::Queue& c : config->queues) {
        if (c.name != name) continue;
        q.concurrency = c.concurrency;
        q.rate = c.rate;
      }
      for (const config::Route& r : config->routes) {
        if (r.offload && r.offload->queue == name && q.route.empty()) {
          q.route = r.name;
          q.cluster = r.cluster;
        }
      }
    }
    out.push_back(std::move(q));
  }
  return out;
}

bool QueueBacklog(const Facts& facts) { return facts.queue->growing; }

Finding QueueBacklogFinding(const Facts& facts) {
  const QueueReport& q = *facts.queue;
  Finding f;
  f.kind = "queue_backlog";
  // A route the finding can be tied to (and `ficus prove` can load): the offload route.
  f.route = q.route.empty() ? "queue:" + q.name : q.route;
  f.summary = Format(
      "queue %s: %.1f jobs/s enqueued but %.1f jobs/s delivered; the backlog grew from %lld to "
      "%lld jobs and the oldest job has waited %s",
      q.name.c_str(), q.enqueue_rps, q.delivery_rps, static_cast<long long>(q.backlog_start),
      static_cast<long long>(q.backlog_end), Age(q.oldest_age_ms).c_str());
  const uint64_t finished = Finished(q);
  const double tries = finished ? static_cast<double>(q.attempts) / static_cast<double>(finished)
                                : static_cast<double>(q.attempts);
  // Deliveries held back by the queue's own rate: the rate is what to raise.
  const bool rate_bound = q.rate > 0 && q.delivery_rps >= 0.9 * q.rate;
  const double need = q.delivery_rps > 0 ? q.enqueue_rps / q.delivery_rps : 2.0;
  const std::string origin = q.cluster.empty() ? "the application" : "cluster " + q.cluster;
  if (rate_bound) {
    const double rate = std::ceil(q.enqueue_rps * 1.2);
    f.remedy = Format(
        "deliveries are held at the queue's rate (%u/s) below the enqueue rate: raise `rate` to "
        "%.0f/s if %s can take it, else add capacity to %s",
        q.rate, rate, origin.c_str(), origin.c_str());
    f.snippet = Format("queues:\n  - name: %s\n    rate: %.0f\n", q.name.c_str(), rate);
  } else {
    const uint32_t now = q.concurrency ? q.concurrency : 4;  // the default
    const uint32_t more = static_cast<uint32_t>(
        std::min(1024.0, std::max<double>(now + 1, std::ceil(now * std::min(need, 8.0) * 1.2))));
    f.remedy = Format(
        "add deliverers: raise the queue's `concurrency` from %u to %u (deliveries in flight) "
        "if %s has headroom; if it is already at its capacity, add capacity there (instances or "
        "a faster handler): more deliverers would only queue inside the application",
        now, more, origin.c_str());
    f.snippet = Format("queues:\n  - name: %s\n    concurrency: %u\n", q.name.c_str(), more);
  }
  if (tries >= 1.5) {
    f.remedy += Format(
        "; %.1f attempts per finished job: failing deliveries (retries) take the deliverers' "
        "time, see the dead letters (`ficus jobs dead`)",
        tries);
  }
  f.in_ficus = true;
  f.impact = 2;  // acknowledged work is late, not lost
  f.likelihood = q.backlog_end > 2 * std::max<int64_t>(q.backlog_start, kBacklogMinJobs) ? 3 : 2;
  return f;
}

std::string QueuesText(const Report& r) {
  if (r.queues.empty()) return "";
  std::string o = "\nJob queues (async offload)\n";
  for (const QueueReport& q : r.queues) o += Format("  %-14s ", q.name.c_str()) + Line(q) + "\n";
  return o;
}

std::string QueuesMarkdown(const Report& r) {
  if (r.queues.empty()) return "";
  std::string o =
      "\n## Job queues\n\n| queue | enqueued/s | delivered/s | backlog start | backlog end | "
      "backlog peak | oldest job | failed | dead | dead letters | attempts/job | keeps up "
      "|\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const QueueReport& q : r.queues) {
    const uint64_t finished = Finished(q);
    o += Format("| %s | %.1f | %.1f | %lld | %lld | %lld | %s | %llu | %llu | %lld | %.2f | %s |\n",
                q.name.c_str(), q.enqueue_rps, q.delivery_rps,
                static_cast<long long>(q.backlog_start), static_cast<long long>(q.backlog_end),
                static_cast<long long>(q.backlog_peak), Age(q.oldest_age_ms).c_str(),
                static_cast<unsigned long long>(q.failed), static_cast<unsigned long long>(q.dead),
                static_cast<long long>(q.dead_letters),
                finished ? static_cast<double>(q.attempts) / static_cast<double>(finished) : 0.0,
                q.growing ? "**no: the backlog grows**" : "yes");
  }
  return o;
}

std::string QueuesJson(const Report& r) {
  JsonWriter w;
  w.BeginArray();
  for (const QueueReport& q : r.queues) {
    w.BeginObject().Key("name").String(q.name).Key("route").String(q.route);
    w.Key("cluster").String(q.cluster).Key("concurrency").Uint(q.concurrency);
    w.Key("rate").Uint(q.rate).Key("enqueued").Uint(q.enqueued);
    w.Key("succeeded").Uint(q.succeeded).Key("failed").Uint(q.failed).Key("dead").Uint(q.dead);
    w.Key("attempts").Uint(q.attempts).Key("enqueue_rps").Number(q.enqueue_rps);
    w.Key("delivery_rps").Number(q.delivery_rps).Key("backlog_start").Int(q.backlog_start);
    w.Key("backlog_end").Int(q.backlog_end).Key("backlog_peak").Int(q.backlog_peak);
    w.Key("oldest_age_ms").Int(q.oldest_age_ms).Key("oldest_age_peak_ms").Int(q.oldest_age_peak_ms);
    w.Key("dead_letters").Int(q.dead_letters).Key("growing").Bool(q.growing);
    w.EndObject();
  }
  w.EndArray();
  return "\"queues\":" + w.Take();
}

std::string QueuesHtml(const Report& r) {
  if (r.queues.empty()) return "";
  std::string o =
      "<section id=\"queues\"><h2>Job queues</h2><p>Offloaded requests answered 202 and delivered "
      "later: a backlog that grows means delivery is slower than enqueue.</p><table><tr>"
      "<th>queue</th><th>enqueued/s</th><th>delivered/s</th><th>backlog</th><th>peak</th>"
      "<th>oldest job</th><th>failed</th><th>dead</th><th>dead letters</th><th>keeps up</th></tr>";
  for (const QueueReport& q : r.queues) {
    o += Format(
        "<tr data-queue=\"%s\"><td>%s</td><td>%.1f</td><td>%.1f</td><td>%lld &rarr; %lld</td>"
        "<td>%lld</td><td>%s</td><td>%llu</td><td>%llu</td><td>%lld</td><td>%s</td></tr>",
        HtmlEscape(q.name).c_str(), HtmlEscape(q.name).c_str(), q.enqueue_rps, q.delivery_rps,
        static_cast<long long>(q.backlog_start), static_cast<long long>(q.backlog_end),
        static_cast<long long>(q.backlog_peak), HtmlEscape(Age(q.oldest_age_ms)).c_str(),
        static_cast<unsigned long long>(q.failed), static_cast<unsigned long long>(q.dead),
        static_cast<long long>(q.dead_letters), q.growing ? "<b>no: the backlog grows</b>" : "yes");
  }
  return o + "</table></section>\n";
}

}  // namespace ficus::advisor::internal
