// Building a scenario's requests: a weighted pick, the variables' draws, the templates
// rendered into a reused buffer.
#include <algorithm>
#include <charconv>
#include <cstdio>

#include "load/internal/scenario.h"

namespace ficus::load::internal {

RequestBuilder::RequestBuilder(const Scenario& scenario, std::string host_header, uint64_t seed,
                               std::string extra_headers)
    : scenario_(scenario),
      host_header_(std::move(host_header)),
      extra_headers_(std::move(extra_headers)),
      rng_(seed),
      values_(scenario.variables.size()),
      scratch_(scenario.variables.size()) {}

void RequestBuilder::Draw(int32_t var) {
  const size_t i = static_cast<size_t>(var);
  const Variable& v = scenario_.variables[i];
  char* buf = scratch_[i].data();
  switch (v.kind) {
    case Variable::Kind::kRandomInt:
    case Variable::Kind::kCounter: {
      int64_t n;
      if (v.kind == Variable::Kind::kCounter) {
        n = v.start + scenario_.counter->fetch_add(1, std::memory_order_relaxed);
      } else {
        uint64_t span = static_cast<uint64_t>(v.max - v.min) + 1;
        n = v.min + static_cast<int64_t>(span == 0 ? rng_() : rng_() % span);
      }
      auto [end, ec] = std::to_chars(buf, buf + 40, n);
      values_[i] = std::string_view(buf, static_cast<size_t>(end - buf));
      break;
    }
    case Variable::Kind::kPick:
      values_[i] = v.values[rng_() % v.values.size()];
      break;
    case Variable::Kind::kUuid: {
      static constexpr char kHex[] = "0123456789abcdef";
      uint64_t a = rng_(), b = rng_();
      a = (a & ~0xF000ull) | 0x4000ull;                         // version 4
      b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
      int p = 0;
      for (int k = 0; k < 32; ++k) {
        if (k == 8 || k == 12 || k == 16 || k == 20) buf[p++] = '-';
        uint64_t word = k < 16 ? a : b;
        buf[p++] = kHex[(word >> (4 * (15 - (k % 16)))) & 0xF];
      }
      values_[i] = std::string_view(buf, 36);
      break;
    }
  }
}

const RequestTemplate& RequestBuilder::Build(std::string& out) {
  const auto& cum = scenario_.cumulative;
  size_t pick = 0;
  if (cum.size() > 1) {
    uint64_t x = rng_() % cum.back();
    pick = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), x) - cum.begin());
  }
  const RequestTemplate& r = scenario_.requests[pick];
  for (int32_t v : r.vars) Draw(v);
  out.clear();
  out.append(r.method).append(" ");
  r.path.Render(values_, out);
  out.append(" HTTP/1.1\r\n");
  if (!r.has_host) out.append("Host: ").append(host_header_).append("\r\n");
  if (!r.has_agent) out.append("User-Agent: ficus-load\r\n");
  out.append(extra_headers_);
  for (const auto& [name, value] : r.headers) {
    out.append(name).append(": ");
    value.Render(values_, out);
    out.append("\r\n");
  }
  if (r.body) {
    body_.clear();
    r.body->Render(values_, body_);
    char num[24];
    auto [end, ec] = std::to_chars(num, num + sizeof num, body_.size());
    out.append("Content-Length: ").append(num, static_cast<size_t>(end - num)).append("\r\n\r\n");
    out.append(body_);
  } else {
    out.append("\r\n");
  }
  return r;
}

}  // namespace ficus::load::internal
