// Scenario files for `ficus load FILE.yaml`: weighted request templates, variables and the
// run's settings, validated up front with FILE:LINE:COL: field: reason errors; and the
// per-thread RequestBuilder that turns a scenario into request bytes in a reused buffer.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "http/http.h"
#include "load/internal/template.h"

namespace ficus::load::internal {

struct Variable {
  enum class Kind : uint8_t { kRandomInt, kPick, kCounter, kUuid };
  std::string name;
  Kind kind = Kind::kRandomInt;
  int64_t min = 0, max = 0;         // kRandomInt, inclusive
  int64_t start = 0;                // kCounter: the first value
  std::vector<std::string> values;  // kPick (a list or a CSV column)
};

struct RequestTemplate {
  std::string name;
  uint32_t weight = 1;
  std::string method = "GET";
  http::Method parsed_method = http::Method::kGet;
  Template path;
  std::vector<std::pair<std::string, Template>> headers;
  std::optional<Template> body;
  bool has_host = false, has_agent = false, has_length = false;
  std::vector<int32_t> vars;  // every variable this request uses (distinct)
};

struct Scenario {
  std::string file;
  std::string target;  // http://HOST:PORT as written; empty when the file has none
  // Run settings; unset/empty/0 = not in the file.
  double rate = 0;
  std::string profile;
  std::vector<std::string> stages;
  std::string duration;
  int connections = 0;
  int threads = 0;
  std::string timeout;
  bool closed = false;
  std::optional<uint64_t> seed;
  std::vector<std::string> thresholds;
  std::vector<Variable> variables;
  std::vector<RequestTemplate> requests;
  std::vector<uint64_t> cumulative;  // running sum of weights, parallel to requests
  std::shared_ptr<std::atomic<int64_t>> counter = std::make_shared<std::atomic<int64_t>>(0);
};

// Reads and validates a scenario; on failure returns nullopt and appends every problem as
// "FILE:LINE:COL: field: reason" to *errors.
std::optional<Scenario> LoadScenario(const std::string& path, std::vector<std::string>* errors);
std::optional<Scenario> LoadScenarioString(std::string_view yaml, const std::string& file,
                                           const std::string& base_dir,
                                           std::vector<std::string>* errors);

// An HTTP token (RFC 9110: a method, a field name).
bool IsToken(std::string_view s);

// Builds requests of one scenario on one thread: picks a request by weight, draws the values
// of the variables it uses, and renders head and body into `out` (cleared first). Allocation
// only while `out` and the scratch buffers grow.
class RequestBuilder {
 public:
  // `extra_headers`: "Name: value\r\n" fields every request carries (the synthetic key).
  RequestBuilder(const Scenario& scenario, std::string host_header, uint64_t seed,
                 std::string extra_headers = {});
  // Returns the chosen request (for its method).
  const RequestTemplate& Build(std::string& out);

 private:
  void Draw(int32_t var);

  const Scenario& scenario_;
  std::string host_header_;
  std::string extra_headers_;
  std::mt19937_64 rng_;
  std::vector<std::string_view> values_;  // per variable, into scratch_ or the variable
  std::vector<std::array<char, 40>> scratch_;
  std::string body_;
};

}  // namespace ficus::load::internal
