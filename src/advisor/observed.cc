// The request a route really answers, taken from what the gateway saw: its `record:` capture
// (paths with their query strings, bodies) and its access log (what was answered 2xx/3xx).
// Assess sends it instead of the bare prefix of the route's match (which may answer 404, or
// 405, or a 400 for a missing field or query parameter).
#include <algorithm>
#include <boost/json.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <tuple>

#include "advisor/advisor.h"
#include "base/json.h"
#include "load/load.h"

namespace ficus::advisor {

namespace json = boost::json;

namespace {

// Calls `f` with each JSON object line of the file's last `max_bytes` that mentions `route`
// (a cheap filter before parsing). False when the file cannot be read.
bool ForEachLine(const std::string& path, const std::string& route, uint64_t max_bytes,
                 const std::function<void(const json::object&)>& f) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = size > static_cast<std::streamoff>(max_bytes)
                                  ? size - static_cast<std::streamoff>(max_bytes)
                                  : 0;
  in.seekg(from);
  std::string line;
  if (from > 0) std::getline(in, line);  // a partial first line
  while (std::getline(in, line)) {
    if (line.find(route) == std::string::npos) continue;
    json::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const json::object& o = v.as_object();
    const json::value* r = o.if_contains("route");
    if (!r || !r->is_string() || r->as_string() != route) continue;
    f(o);
  }
  return true;
}

std::string Field(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

bool IsRead(const std::string& method) { return method == "GET" || method == "HEAD"; }

// The most frequent key of `seen` whose method (the key's first element) is a read, else the
// most frequent of all; null when empty. Keys are tuples or pairs led by the method.
template <class Map>
const typename Map::key_type* MostFrequentReadFirst(const Map& seen) {
  const typename Map::key_type* best = nullptr;
  uint64_t best_n = 0;
  bool best_read = false;
  for (const auto& [key, n] : seen) {
    const bool read = IsRead(std::get<0>(key));
    if (!best || (read && !best_read) || (read == best_read && n > best_n)) {
      best = &key;
      best_n = n;
      best_read = read;
    }
  }
  return best;
}

// (method, path) -> requests of the route answered 2xx or 3xx in the access log.
std::map<std::pair<std::string, std::string>, uint64_t> Answered(const std::string& log,
                                                                 const std::string& route,
                                                                 uint64_t max_bytes) {
  std::map<std::pair<std::string, std::string>, uint64_t> seen;
  ForEachLine(log, route, max_bytes, [&](const json::object& o) {
    const json::value* s = o.if_contains("status");
    const std::string method = Field(o, "method"), path = Field(o, "path");
    if (!s || !s->is_int64() || method.empty() || path.empty()) return;
    if (s->as_int64() >= 200 && s->as_int64() < 400) ++seen[{method, path}];
  });
  return seen;
}

}  // namespace

std::optional<RouteRequest> ObservedRequest(const std::string& access_log_path,
                                            const std::string& route, uint64_t max_bytes) {
  const auto seen = Answered(access_log_path, route, max_bytes);
  const auto* best = MostFrequentReadFirst(seen);
  if (!best) return std::nullopt;
  RouteRequest req;
  req.method = best->first;
  req.path = best->second;
  if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") req.body = "{}";
  return req;
}

namespace {

// (method, target, body, content type) -> how often the route's capture has it.
using CapturedCounts =
    std::map<std::tuple<std::string, std::string, std::string, std::string>, uint64_t>;

// The capture's requests a load can send again (see CapturedRequest). nullopt: unreadable.
std::optional<CapturedCounts> CountCaptured(const std::string& capture_path,
                                            const std::string& route,
                                            const std::string& access_log_path,
                                            uint64_t max_bytes) {
  const auto answered = access_log_path.empty()
                            ? std::map<std::pair<std::string, std::string>, uint64_t>{}
                            : Answered(access_log_path, route, max_bytes);
  CapturedCounts seen;
  const bool read = ForEachLine(capture_path, route, max_bytes, [&](const json::object& o) {
    const std::string method = Field(o, "method"), target = Field(o, "target");
    if (method.empty() || target.empty() || target[0] != '/') return;
    // A redacted credential would be sent as the word REDACTED; a binary body is not replayed
    // here (ficus replay does that).
    if (target.find("REDACTED") != std::string::npos || o.contains("body_base64")) return;
    const json::value* t = o.if_contains("truncated");
    if (t && t->is_bool() && t->as_bool()) return;
    if (!answered.empty() && !answered.contains({method, target.substr(0, target.find('?'))}))
      return;  // the access log never saw this path answered 2xx/3xx
    std::string content_type;
    if (const json::value* h = o.if_contains("headers"); h && h->is_array()) {
      for (const json::value& field : h->as_array()) {
        if (!field.is_array() || field.as_array().size() != 2) continue;
        const json::array& nv = field.as_array();
        if (!nv[0].is_string() || !nv[1].is_string()) continue;
        std::string name(nv[0].as_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name == "content-type") content_type = std::string(nv[1].as_string());
      }
    }
    ++seen[{method, target, Field(o, "body"), content_type}];
  });
  if (!read) return std::nullopt;
  return seen;
}

RouteRequest RequestOf(const CapturedCounts::key_type& key) {
  RouteRequest req;
  req.method = std::get<0>(key);
  req.path = std::get<1>(key);
  req.body = std::get<2>(key);
  req.content_type = std::get<3>(key);
  return req;
}

}  // namespace

std::optional<RouteRequest> CapturedRequest(const std::string& capture_path,
                                            const std::string& route,
                                            const std::string& access_log_path,
                                            uint64_t max_bytes) {
  const std::optional<CapturedCounts> seen =
      CountCaptured(capture_path, route, access_log_path, max_bytes);
  if (!seen) return std::nullopt;
  const auto* best = MostFrequentReadFirst(*seen);
  if (!best) return std::nullopt;
  return RequestOf(*best);
}

std::vector<WeightedRequest> CapturedMix(const std::string& capture_path, const std::string& route,
                                         const std::string& access_log_path, size_t max_requests,
                                         uint64_t max_bytes) {
  std::vector<WeightedRequest> mix;
  const std::optional<CapturedCounts> seen =
      CountCaptured(capture_path, route, access_log_path, max_bytes);
  if (!seen) return mix;
  for (const auto& [key, n] : *seen) mix.push_back({RequestOf(key), n});
  // Most frequent first; ties in the map's order, so the set is the same from run to run.
  std::stable_sort(mix.begin(), mix.end(), [](const WeightedRequest& a, const WeightedRequest& b) {
    return a.count > b.count;
  });
  if (mix.size() > max_requests) mix.resize(max_requests);
  return mix;
}

std::string MixScenario(const std::vector<WeightedRequest>& mix,
                        const std::vector<std::string>& headers) {
  std::string out = "{\"requests\": [";
  for (size_t i = 0; i < mix.size(); ++i) {
    const RouteRequest& r = mix[i].request;
    out += i ? ",\n  " : "\n  ";
    out += "{\"name\": ";
    AppendJsonString(out, "recorded-" + std::to_string(i + 1));
    // The scenario's weights are 32-bit: a count past that only needs to keep its proportion.
    out += ", \"weight\": " + std::to_string(std::clamp<uint64_t>(mix[i].count, 1, 1u << 30));
    out += ", \"method\": ";
    AppendJsonString(out, r.method);
    out += ", \"path\": ";
    AppendJsonString(out, load::TemplateLiteral(r.path));
    out += ", \"headers\": {";
    bool first = true;
    auto header = [&](std::string_view name, std::string_view value) {
      out += first ? "" : ", ";
      first = false;
      AppendJsonString(out, name);
      out += ": ";
      AppendJsonString(out, load::TemplateLiteral(value));
    };
    for (const std::string& h : headers) {
      const size_t colon = h.find(':');
      if (colon == std::string::npos) continue;
      const size_t v = h.find_first_not_of(' ', colon + 1);
      header(h.substr(0, colon), v == std::string::npos ? "" : std::string_view(h).substr(v));
    }
    if (!r.body.empty())
      header("Content-Type", r.content_type.empty() ? "application/json" : r.content_type);
    out += "}";
    if (!r.body.empty()) {
      out += ", \"body\": ";
      AppendJsonString(out, load::TemplateLiteral(r.body));
    }
    out += "}";
  }
  out += "\n]}\n";
  return out;
}

}  // namespace ficus::advisor
