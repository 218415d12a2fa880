// `ficus report`: the store's data for a period, analysed and rendered.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "advisor/advisor.h"

namespace ficus::advisor {

int ReportCommand(const ReportOptions& o) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "ficus report: %s\n", m.c_str());
    return 2;
  };
  std::shared_ptr<const config::Config> cfg;
  if (!o.config_path.empty()) {
    config::LoadResult loaded = config::LoadFile(o.config_path);
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
  auto period = config::ParseDuration(o.period, &why);
  if (!period) return fail("--period: " + why);
  if (period->count() <= 0) return fail("--period must be positive, such as 1h, 24h, 7d");
  auto price = ParsePrice(o.instance_price);
  if (!price) return fail("--instance-price must be like 50/month or 0.07/hour");
  if (o.format != "text" && o.format != "markdown" && o.format != "json" && o.format != "html")
    return fail("--format must be text, markdown, json or html");
  if (!(o.active_users >= 0)) return fail("--active-users must be >= 0");
  AnalyzeParams p;
  p.to_ms = o.now_ms ? o.now_ms
                     : std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  p.from_ms = p.to_ms - period->count();
  p.period = o.period;
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
