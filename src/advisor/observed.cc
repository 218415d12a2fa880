// The request a route really answers, taken from the gateway's access log: assess sends it
// instead of the bare prefix of the route's match (which may answer 404, or 405, or a 400 for a
// missing field).
#include <boost/json.hpp>
#include <fstream>
#include <map>

#include "advisor/advisor.h"

namespace ficus::advisor {

namespace json = boost::json;

std::optional<RouteRequest> ObservedRequest(const std::string& access_log_path,
                                            const std::string& route, uint64_t max_bytes) {
  std::ifstream in(access_log_path, std::ios::binary);
  if (!in) return std::nullopt;
  // The newest lines: the log's last max_bytes.
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff from = size > static_cast<std::streamoff>(max_bytes)
                                  ? size - static_cast<std::streamoff>(max_bytes)
                                  : 0;
  in.seekg(from);
  std::string line;
  if (from > 0) std::getline(in, line);  // a partial first line
  // (method, path) -> answers that were not errors; reads first (safe to repeat in a step load).
  std::map<std::pair<std::string, std::string>, uint64_t> seen;
  while (std::getline(in, line)) {
    if (line.find(route) == std::string::npos) continue;  // cheap filter before parsing
    json::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) continue;
    const json::object& o = v.as_object();
    const json::value* r = o.if_contains("route");
    const json::value* m = o.if_contains("method");
    const json::value* p = o.if_contains("path");
    const json::value* s = o.if_contains("status");
    if (!r || !r->is_string() || r->as_string() != route || !m || !m->is_string() || !p ||
        !p->is_string() || !s || !s->is_int64())
      continue;
    const int64_t status = s->as_int64();
    if (status < 200 || status >= 400) continue;
    ++seen[{std::string(m->as_string()), std::string(p->as_string())}];
  }
  const std::pair<std::string, std::string>* best = nullptr;
  uint64_t best_n = 0;
  bool best_read = false;
  for (const auto& [key, n] : seen) {
    const bool read = key.first == "GET" || key.first == "HEAD";
    if (!best || (read && !best_read) || (read == best_read && n > best_n)) {
      best = &key;
      best_n = n;
      best_read = read;
    }
  }
  if (!best) return std::nullopt;
  RouteRequest req;
  req.method = best->first;
  req.path = best->second;
  if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") req.body = "{}";
  return req;
}

}  // namespace ficus::advisor
