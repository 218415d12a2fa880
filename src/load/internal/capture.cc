// The capture reader. Boost.JSON is compiled into this one translation unit (header-only).
#include "load/internal/capture.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <optional>

#include "base/base64.h"

namespace ficus::load::internal {
namespace {

namespace json = boost::json;

// Framing and hop-by-hop fields are recomputed for the replayed message.
bool Dropped(std::string_view name) {
  for (std::string_view h : {"content-length", "transfer-encoding", "connection", "keep-alive",
                             "te", "upgrade", "proxy-connection", "expect",
                             // a past run's secret: stale, and the replay sends its own
                             "x-ficus-synthetic"})
    if (http::EqualsIgnoreCase(name, h)) return true;
  return false;
}

// The first value of field `name` (lower-case) among captured [name, value] pairs.
std::optional<std::string_view> FieldOf(const json::array& headers, std::string_view name) {
  for (const json::value& h : headers) {
    if (!h.is_array() || h.as_array().size() != 2 || !h.as_array()[0].is_string() ||
        !h.as_array()[1].is_string())
      continue;
    const json::string& n = h.as_array()[0].as_string();
    if (!http::EqualsIgnoreCase(std::string_view(n.data(), n.size()), name)) continue;
    const json::string& v = h.as_array()[1].as_string();
    return std::string_view(v.data(), v.size());
  }
  return std::nullopt;
}

// The filters' verdict: per key, some positive filter matches (when the key has any) and no
// negated one does.
bool Kept(const std::vector<CaptureOptions::Filter>& filters, std::string_view method,
          std::string_view target, std::string_view route, const json::array& headers) {
  std::vector<std::pair<std::string_view, bool>> wanted;  // key, a positive filter matched
  for (const CaptureOptions::Filter& f : filters) {
    bool match = false;
    if (f.key == "method") {
      match = method == f.value;
    } else if (f.key == "path") {
      match = target.substr(0, f.value.size()) == f.value;
    } else if (f.key == "route") {
      match = route == f.value;
    } else if (f.key.rfind("header:", 0) == 0) {
      const std::optional<std::string_view> v = FieldOf(headers, std::string_view(f.key).substr(7));
      match = v && *v == f.value;
    }
    if (f.negate) {
      if (match) return false;
      continue;
    }
    auto it =
        std::find_if(wanted.begin(), wanted.end(), [&](const auto& w) { return w.first == f.key; });
    if (it == wanted.end()) {
      wanted.emplace_back(f.key, match);
    } else {
      it->second = it->second || match;
    }
  }
  return std::all_of(wanted.begin(), wanted.end(), [](const auto& w) { return w.second; });
}

}  // namespace

int64_t Capture::TimeOf(uint64_t n) const {
  const uint64_t size = requests.size();
  if (!loop && n >= size) return INT64_MAX;
  const uint64_t pass = n / size;
  const long double t = static_cast<long double>(pass) * static_cast<long double>(span_ns) +
                        static_cast<long double>(requests[n % size].at_ns);
  return t > static_cast<long double>(INT64_MAX / 2) ? INT64_MAX : static_cast<int64_t>(t);
}

double Capture::CountAt(int64_t t_ns) const {
  if (t_ns < 0 || requests.empty()) return 0;
  auto in_pass = [this](int64_t t) {
    return static_cast<double>(
        std::upper_bound(requests.begin(), requests.end(), t,
                         [](int64_t v, const Request& r) { return v < r.at_ns; }) -
        requests.begin());
  };
  if (!loop || span_ns <= 0) return in_pass(t_ns);
  int64_t passes = t_ns / span_ns;
  return static_cast<double>(passes) * static_cast<double>(requests.size()) +
         in_pass(t_ns % span_ns);
}

std::optional<Capture> LoadCapture(const std::string& path, const CaptureOptions& options,
                                   std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot read the capture";
    return std::nullopt;
  }
  Capture cap;
  cap.loop = options.loop;
  std::string line;
  size_t line_no = 0;
  std::vector<double> times;
  auto fail = [&](const std::string& why) {
    *error = path + ":" + std::to_string(line_no) + ": " + why;
    return std::nullopt;
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    json::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) return fail("not a JSON object (" + ec.message() + ")");
    const json::object& o = v.as_object();
    auto str = [&](const char* key) -> const json::string* {
      const json::value* f = o.if_contains(key);
      return f && f->is_string() ? &f->as_string() : nullptr;
    };
    const json::value* t = o.if_contains("t");
    const json::string* method = str("method");
    const json::string* target = str("target");
    const json::value* headers = o.if_contains("headers");
    if (!t || !t->is_number() || !method || !target || !headers || !headers->is_array())
      return fail("expected t (number), method, target (strings) and headers (a list)");
    std::string_view m(method->data(), method->size());
    std::string_view tg(target->data(), target->size());
    std::string_view route;
    if (const json::string* r = str("route")) route = std::string_view(r->data(), r->size());
    if (!Kept(options.filters, m, tg, route, headers->as_array())) {
      ++cap.skipped;
      continue;
    }
    if (m.empty() || tg.empty() || tg.find_first_of(" \r\n") != std::string_view::npos ||
        m.find_first_of(" \r\n") != std::string_view::npos)
      return fail("bad method or target");
    std::string body;
    if (const json::string* b = str("body")) {
      body.assign(b->data(), b->size());
    } else if (const json::string* b64 = str("body_base64")) {
      if (!DecodeBase64(std::string_view(b64->data(), b64->size()), &body))
        return fail("body_base64 is not base64");
    }
    if (const json::value* tr = o.if_contains("truncated"); tr && tr->is_bool() && tr->as_bool())
      ++cap.truncated_bodies;
    Capture::Request r;
    r.method = http::ParseMethod(m);
    r.bytes.append(m).append(" ").append(tg).append(" HTTP/1.1\r\n");
    bool has_host = false;
    for (const json::value& h : headers->as_array()) {
      if (!h.is_array() || h.as_array().size() != 2 || !h.as_array()[0].is_string() ||
          !h.as_array()[1].is_string())
        return fail("headers must be [name, value] pairs");
      const json::string& name = h.as_array()[0].as_string();
      const json::string& value = h.as_array()[1].as_string();
      std::string_view n(name.data(), name.size()), val(value.data(), value.size());
      if (n.empty() || n.find_first_of(": \r\n") != std::string_view::npos ||
          val.find_first_of("\r\n") != std::string_view::npos)
        return fail("bad header field");
      if (Dropped(n)) continue;
      if (http::EqualsIgnoreCase(n, "host")) {
        has_host = true;
        if (!options.host_override.empty()) val = options.host_override;  // in place
      }
      r.bytes.append(n).append(": ").append(val).append("\r\n");
    }
    if (!has_host) {
      const std::string& host =
          options.host_override.empty() ? options.host_header : options.host_override;
      r.bytes.append("Host: ").append(host).append("\r\n");
    }
    r.bytes.append(options.extra_headers);
    if (!body.empty() || r.method == http::Method::kPost || r.method == http::Method::kPut ||
        r.method == http::Method::kPatch)
      r.bytes.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    r.bytes.append("\r\n").append(body);
    times.push_back(t->to_number<double>());
    cap.requests.push_back(std::move(r));
  }
  if (cap.requests.empty()) {
    line_no = 0;
    *error = path + (cap.skipped ? ": no request matches the filters" : ": the capture is empty");
    return std::nullopt;
  }
  // Captures are written in completion order per worker: sort by time (stable).
  std::vector<size_t> order(times.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return times[a] < times[b]; });
  std::vector<Capture::Request> sorted;
  sorted.reserve(order.size());
  int64_t at = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    if (k > 0) {
      double gap = (times[order[k]] - times[order[k - 1]]) * 1e9 / options.speed;
      at += std::min<int64_t>(static_cast<int64_t>(std::llround(gap)), options.max_wait_ns);
    }
    sorted.push_back(std::move(cap.requests[order[k]]));
    sorted.back().at_ns = at;
  }
  cap.requests = std::move(sorted);
  int64_t mean_gap =
      cap.requests.size() > 1 ? at / static_cast<int64_t>(cap.requests.size() - 1) : 1'000'000;
  cap.span_ns = at + std::max<int64_t>(mean_gap, 1);
  return cap;
}

}  // namespace ficus::load::internal
