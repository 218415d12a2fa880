// `ficus report`: the store's data for a period, analysed and rendered.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "advisor/advisor.h"
#include "base/text.h"

namespace ficus::advisor {

std::optional<int64_t> ParseReportTime(const std::string& text, int64_t now_ms, std::string* why) {
  std::string t = text;
  if (t == "now") return now_ms;
  if (t.rfind("now-", 0) == 0) t = t.substr(4);
  if (!t.empty() && t[0] == '-') t = t.substr(1);
  if (!t.empty() && t[0] == '@') {
    char* end = nullptr;
    const long long secs = std::strtoll(t.c_str() + 1, &end, 10);
    if (end != t.c_str() + 1 && *end == '\0' && secs >= 0) return secs * 1000LL;
    *why = "'" + text + "': expected @UNIX_SECONDS";
    return std::nullopt;
  }
  if (t.size() >= 10 && t[4] == '-' && t[7] == '-') {
    // UTC: YYYY-MM-DD, then optionally [T ]HH:MM[:SS], then optionally Z.
    std::tm tm{};
    int sec = 0;
    int consumed = 0;
    const int n =
        std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &consumed);
    bool ok = n == 3;
    size_t at = static_cast<size_t>(consumed);
    if (ok && at < t.size() && (t[at] == 'T' || t[at] == ' ')) {
      int c2 = 0;
      ok = std::sscanf(t.c_str() + at + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &c2) == 2;
      at += 1 + static_cast<size_t>(c2);
      if (ok && at < t.size() && t[at] == ':') {
        int c3 = 0;
        ok = std::sscanf(t.c_str() + at + 1, "%2d%n", &sec, &c3) == 1;
        at += 1 + static_cast<size_t>(c3);
      }
    }
    if (ok && at < t.size() && t[at] == 'Z') ++at;
    ok = ok && at == t.size() && tm.tm_mon >= 1 && tm.tm_mon <= 12 && tm.tm_mday >= 1 &&
         tm.tm_mday <= 31 && tm.tm_hour <= 23 && tm.tm_min <= 59 && sec >= 0 && sec <= 60;
    if (!ok) {
      *why = "'" + text + "': expected a UTC time such as 2026-12-04T21:00:00Z";
      return std::nullopt;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_sec = sec;
    return static_cast<int64_t>(timegm(&tm)) * 1000;
  }
  std::string dwhy;
  auto ago = config::ParseDuration(t, &dwhy);
  if (!ago || ago->count() < 0) {
    *why = "'" + text +
           "': expected now, a time ago (2h, now-90m), a UTC time (2026-12-04T21:00:00Z) or "
           "@UNIX_SECONDS";
    return std::nullopt;
  }
  return now_ms - ago->count();
}

int ReportCommand(const ReportOptions& o) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "ficus report: %s\n", m.c_str());
    return 2;
  };
  std::shared_ptr<const config::Config> cfg;
  if (!o.config_path.empty()) {
    // Offline: the report needs the routes and SLOs, not the secrets.
    config::LoadResult loaded = config::LoadFile(o.config_path, config::OfflineLoad());
    if (!loaded.config) {
      for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
      return 2;
    }
    cfg = loaded.config;
  }
  const std::string dir = !o.data_dir.empty() ? o.data_dir : cfg ? cfg->data_dir : "./ficus-data";
  const std::string db = dir + "/ficus.db";
  if (!std::filesystem::exists(db)) return fail(db + " does not exist: is data_dir right?");
  std::string why;
  const std::string period_text = o.period.empty() ? "24h" : o.period;
  auto period = config::ParseDuration(period_text, &why);
  if (!period) return fail("--period: " + why);
  if (period->count() <= 0) return fail("--period must be positive, such as 1h, 24h, 7d");
  auto price = ParsePrice(o.instance_price);
  if (!price) return fail("--instance-price must be like 50/month or 0.07/hour");
  if (o.format != "text" && o.format != "markdown" && o.format != "json" && o.format != "html")
    return fail("--format must be text, markdown, json or html");
  if (!(o.active_users >= 0)) return fail("--active-users must be >= 0");
  AnalyzeParams p;
  const int64_t now = o.now_ms ? o.now_ms
                               : std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
  // The window: --from and --to; or one of them and --period; or --period up to now.
  std::optional<int64_t> from, to;
  if (!o.from.empty() && !(from = ParseReportTime(o.from, now, &why)))
    return fail("--from: " + why);
  if (!o.to.empty() && !(to = ParseReportTime(o.to, now, &why))) return fail("--to: " + why);
  if (from && to && !o.period.empty()) return fail("give at most two of --from, --to and --period");
  p.to_ms = to ? *to : from ? *from + period->count() : now;
  p.from_ms = from ? *from : p.to_ms - period->count();
  if (p.to_ms <= p.from_ms) return fail("--from must be before --to");
  p.period = from && to ? o.from + " .. " + o.to
             : from     ? o.from + " + " + period_text
             : to       ? o.to + " - " + period_text
                        : period_text;
  p.price_month = *price;
  p.active_users = o.active_users;
  p.p99_default_ms = o.p99_default_ms;
  Report report;
  try {
    telemetry::StoreOptions so;
    so.path = db;
    if (cfg) so.max_bytes = cfg->telemetry.max_size;
    telemetry::Store store(so);
    report = Analyze(cfg.get(), store, p);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  const std::string out = o.format == "json"       ? FormatJson(report)
                          : o.format == "markdown" ? FormatMarkdown(report)
                          : o.format == "html"     ? FormatHtml(report)
                                                   : FormatText(report);
  if (o.output.empty() || o.output == "-") {
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }
  FILE* f = std::fopen(o.output.c_str(), "wb");
  if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size() || std::fclose(f) != 0)
    return fail("cannot write " + o.output + ": " + std::strerror(errno));
  return 0;
}

}  // namespace ficus::advisor
