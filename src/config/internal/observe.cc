// Sections: telemetry, access_log, tracing.
#include "config/internal/access_log_fields.h"
#include "config/internal/reader.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

void Loader::ReadTelemetry(const Value& v, Telemetry* t) {
  Fields f;
  if (!ReadMap(v, {"max_size", "error_samples_per_route", "slo_interval", "repeat_sample"}, &f))
    return;
  if (const Value* x = f.Get("max_size")) {
    // Below 1 MiB the WAL allowance and a day of 10 s rows for one route do not fit.
    if (auto n = SizeIn(*x, 1 << 20, 1ull << 40)) t->max_size = *n;
  }
  if (const Value* x = f.Get("error_samples_per_route")) {
    if (auto n = Integer(*x, 1, 1000)) t->error_samples_per_route = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("slo_interval")) {
    if (auto d = DurationIn(*x, Duration(100), std::chrono::minutes(10))) t->slo_interval = *d;
  }
  if (const Value* x = f.Get("repeat_sample")) {
    if (auto n = Integer(*x, 0, 1'000'000)) t->repeat_sample = static_cast<uint32_t>(*n);
  }
}

void Loader::ReadAccessLog(const Value& v, AccessLog* log) {
  Fields f;
  if (!ReadMap(v, {"path", "fields", "sample"}, &f)) return;
  log->enabled = true;
  Require(f, v, "path");
  if (const Value* p = f.Get("path")) {
    if (auto s = String(*p)) {
      if (s->empty()) {
        Error(*p, "must not be empty (a file path, or stdout)");
      } else {
        log->path = *s;
      }
    }
  }
  if (const Value* fl = f.Get("fields")) {
    if (ExpectList(*fl)) {
      const std::vector<std::string> known = AccessLogFieldNames();
      size_t i = 0;
      for (auto it = fl->node.begin(); it != fl->node.end(); ++it, ++i) {
        const Value item = Item(*fl, *it, i);
        auto s = String(item);
        if (!s) continue;
        if (std::find(known.begin(), known.end(), *s) == known.end()) {
          Error(item,
                "unknown access log field " + Quote(*s) + "; expected one of: " + JoinNames(known));
        } else if (std::find(log->fields.begin(), log->fields.end(), *s) != log->fields.end()) {
          Error(item, "field " + Quote(*s) + " listed twice");
        } else {
          log->fields.push_back(*s);
        }
      }
      if (fl->node.size() == 0) Error(*fl, "at least one field (or leave `fields` out for all)");
    }
  }
  if (const Value* s = f.Get("sample")) {
    if (auto r = Ratio(*s)) log->sample = *r;
  }
}

void Loader::ReadTracing(const Value& v, Tracing* t) {
  Fields f;
  if (!ReadMap(v,
               {"endpoint", "sample", "service_name", "batch_size", "flush_interval", "timeout",
                "ca_file"},
               &f)) {
    return;
  }
  t->enabled = true;
  Require(f, v, "endpoint");
  if (const Value* e = f.Get("endpoint")) {
    if (auto s = String(*e)) {
      // http(s)://host:port/path of an OTLP/HTTP collector.
      std::string_view rest = *s;
      const size_t scheme = rest.starts_with("https://") ? 8 : rest.starts_with("http://") ? 7 : 0;
      if (scheme == 0 || rest.size() == scheme) {
        Error(*e,
              "expected an http:// or https:// URL of an OTLP/HTTP collector (like "
              "http://127.0.0.1:4318/v1/traces), got " +
                  Quote(*s));
      } else {
        rest.remove_prefix(scheme);
        std::string authority(rest.substr(0, rest.find('/')));
        HostPort hp;
        std::string error;
        if (authority.find(':') == std::string::npos || !ParseHostPort(authority, &hp, &error)) {
          Error(*e, Quote(*s) + ": expected host:port after " + std::string(s->substr(0, scheme)) +
                        (error.empty() ? std::string() : std::string(" (") + error + ")"));
        } else {
          t->endpoint = *s;
        }
      }
    }
  }
  if (const Value* c = f.Get("ca_file")) {
    if (auto path = String(*c)) {
      std::string error;
      if (ReadableFile(*path, &error)) {
        t->ca_file = *path;
      } else {
        Error(*c, error);
      }
    }
  }
  if (const Value* s = f.Get("sample")) {
    if (auto r = Ratio(*s)) t->sample = *r;
  }
  if (const Value* s = f.Get("service_name")) {
    if (auto name = String(*s)) {
      if (name->empty()) {
        Error(*s, "must not be empty");
      } else {
        t->service_name = *name;
      }
    }
  }
  if (const Value* b = f.Get("batch_size")) {
    if (auto n = Integer(*b, 1, 10000)) t->batch_size = static_cast<uint32_t>(*n);
  }
  if (const Value* d = f.Get("flush_interval")) {
    if (auto ms = DurationIn(*d, Duration(10), Duration(60000))) t->flush_interval = *ms;
  }
  if (const Value* d = f.Get("timeout")) {
    if (auto ms = DurationIn(*d, Duration(10), Duration(60000))) t->timeout = *ms;
  }
}

}  // namespace ficus::config::internal
