// The admin API calls `ficus prove` makes (one blocking request each, through client/) and the
// reading of /metrics samples.
#include "prove/internal/gateway.h"

#include <chrono>

#include "base/text.h"
#include "client/client.h"

namespace ficus::prove::internal {

Gateway::Gateway(const config::Config& cfg)
    : host_(cfg.admin.address == "0.0.0.0" || cfg.admin.address.empty() ? "127.0.0.1"
            : cfg.admin.address == "::"                                 ? "::1"
                                                                        : cfg.admin.address),
      port_(cfg.admin.port),
      token_(cfg.admin.token) {}

Outcome<std::string> Gateway::Call(const char* method, const char* target, const std::string& body,
                                   bool auth) const {
  client::Url url;
  url.host = host_;
  url.port = port_;
  url.target = target;
  client::Request req;
  req.method = method;
  req.target = target;
  req.body = body;
  if (auth) req.headers.emplace_back("Authorization", "Bearer " + token_);
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/yaml");
  client::Response r = client::Fetch(url, req, std::chrono::milliseconds(10'000));
  if (!r.error.empty())
    return Failed(Format("%s %s on the admin API (%s:%u): %s", method, target, host_.c_str(),
                         static_cast<unsigned>(port_), r.error.c_str()));
  if (r.status != 200)
    return Failed(Format("%s %s answered %d: %s", method, target, r.status, r.body.c_str()));
  return std::move(r.body);
}

Outcome<std::string> Gateway::ApplyConfig(const std::string& yaml) const {
  if (token_.empty()) return Failed("admin.token is not set: POST /config needs it");
  return Call("POST", "/config", yaml, true);
}

// Off loopback, reads need the token too: it is sent whenever there is one.
Outcome<std::string> Gateway::Metrics() const {
  return Call("GET", "/metrics", "", !token_.empty());
}

double SumSamples(std::string_view metrics, std::string_view family, std::string_view label,
                  std::string_view value) {
  const std::string want =
      label.empty() ? "" : std::string(label) + "=\"" + std::string(value) + "\"";
  double sum = 0;
  size_t pos = 0;
  while (pos < metrics.size()) {
    size_t end = metrics.find('\n', pos);
    if (end == std::string_view::npos) end = metrics.size();
    const std::string_view line = metrics.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() <= family.size() || line.substr(0, family.size()) != family) continue;
    const char next = line[family.size()];
    if (next != '{' && next != ' ') continue;
    size_t labels_end = family.size();
    if (next == '{') {
      labels_end = line.find('}', family.size());
      if (labels_end == std::string_view::npos) continue;
      if (!want.empty()) {
        const std::string_view labels = line.substr(family.size(), labels_end - family.size());
        const size_t at = labels.find(want);
        if (at == std::string_view::npos || (labels[at - 1] != '{' && labels[at - 1] != ','))
          continue;
      }
      ++labels_end;
    } else if (!want.empty()) {
      continue;
    }
    const std::string number(line.substr(labels_end));
    char* stop = nullptr;
    const double v = std::strtod(number.c_str(), &stop);
    if (stop != number.c_str()) sum += v;
  }
  return sum;
}

OriginDelta OriginBetween(std::string_view before, std::string_view after, double seconds,
                          const std::string& cluster) {
  OriginDelta d;
  if (!(seconds > 0)) return d;
  auto delta = [&](std::string_view family, std::string_view label, std::string_view value) {
    return std::max(
        0.0, SumSamples(after, family, label, value) - SumSamples(before, family, label, value));
  };
  d.rps = (delta("ficus_cluster_upstream_requests_total", "cluster", cluster) +
           delta("ficus_queue_attempts_total", "", "")) /
          seconds;
  d.deliveries_in_flight = delta("ficus_queue_delivery_seconds_sum", "", "") / seconds;
  return d;
}

}  // namespace ficus::prove::internal
