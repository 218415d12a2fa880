// The command's front end: a run is PlanFrom -> Execute -> Report, with the messages of each
// step on stderr.
#include <errno.h>

#include <cstdio>
#include <cstring>

#include "load/internal/capture.h"
#include "load/load.h"

namespace ficus::load {
namespace {

// Each line of a message (a scenario's errors are one per line) as "WHO: line".
int Usage(const char* who, const std::string& message) {
  for (size_t at = 0; at <= message.size();) {
    size_t eol = message.find('\n', at);
    if (eol == std::string::npos) eol = message.size();
    std::fprintf(stderr, "%s: %.*s\n", who, static_cast<int>(eol - at), message.data() + at);
    at = eol + 1;
  }
  return 2;
}

}  // namespace

int Report(const Plan& plan, const Summary& s) {
  if (!plan.quiet) {
    std::string out = plan.json ? FormatJson(s, plan.thresholds) : FormatText(s, plan.thresholds);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
  if (!plan.html.empty()) {
    std::string page = FormatHtml(s, plan.thresholds);
    FILE* f = std::fopen(plan.html.c_str(), "wb");
    if (!f || std::fwrite(page.data(), 1, page.size(), f) != page.size() || std::fclose(f) != 0) {
      std::fprintf(stderr, "%s: cannot write %s: %s\n", plan.who, plan.html.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }
  if (plan.capture && plan.capture->truncated_bodies)
    std::fprintf(stderr, "%s: %llu captured bodies were cut at record.max_body_bytes\n", plan.who,
                 static_cast<unsigned long long>(plan.capture->truncated_bodies));
  bool failed = false;
  for (const auto& t : plan.thresholds) {
    if (!Evaluate(t, s).second) {
      failed = true;
      std::fprintf(stderr, "%s: threshold failed: %s\n", plan.who, t.text.c_str());
    }
  }
  return failed ? 3 : 0;
}

int Run(const Plan& plan, Summary* summary) {
  Outcome<Summary> done = Execute(plan);
  if (!done) return Usage(plan.who, done.message());
  if (summary != nullptr) *summary = *done;
  return Report(plan, *done);
}

int Run(const Options& options, Summary* summary) {
  Outcome<Plan> plan = PlanFrom(options);
  if (!plan) return Usage(options.replay.empty() ? "ficus load" : "ficus replay", plan.message());
  return Run(*plan, summary);
}

}  // namespace ficus::load
