// Scenario files: templates, CSV, validation messages with positions, request building, and
// the capture reader's timeline.
#include "load/internal/scenario.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "load/internal/capture.h"
#include "load/internal/template.h"

namespace ficus::load::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

int Lookup(std::string_view name) {
  if (name == "a") return 0;
  if (name == "b_2") return 1;
  return -1;
}

std::string Render(std::string_view text, std::vector<std::string_view> values = {"A", "BB"}) {
  std::string error;
  size_t at = 0;
  auto t = Template::Compile(text, Lookup, &error, &at);
  if (!t) return "error@" + std::to_string(at) + ": " + error;
  std::string out = "x";  // Render appends
  t->Render(values, out);
  return out.substr(1);
}

TEST(Template, Substitution) {
  EXPECT_EQ(Render("/plain"), "/plain");
  EXPECT_EQ(Render("/i/{{a}}/{{ b_2 }}?q={{a}}"), "/i/A/BB?q=A");
  EXPECT_EQ(Render("{{a}}{{b_2}}"), "ABB");
  EXPECT_EQ(Render("\\{{a}} }} {"), "{{a}} }} {");
  EXPECT_EQ(Render(""), "");
  std::string error;
  size_t at;
  auto t = Template::Compile("/{{b_2}}/{{a}}/{{b_2}}", Lookup, &error, &at);
  ASSERT_TRUE(t);
  EXPECT_THAT(t->vars(), ElementsAre(1, 0));
  EXPECT_FALSE(t->constant());
  EXPECT_TRUE(Template::Compile("/x", Lookup, &error, &at)->constant());
}

TEST(Template, Errors) {
  EXPECT_EQ(Render("/{{c}}"), "error@3: unknown variable 'c'");
  EXPECT_EQ(Render("/{{a"), "error@4: expected '}}' to close '{{a'");
  EXPECT_EQ(Render("/{{a b}}"), "error@5: expected '}}' to close '{{a'");
  EXPECT_THAT(Render("/{{}}"), HasSubstr("error@3: expected a variable name"));
  EXPECT_THAT(Render("/{{1}}"), HasSubstr("error@3: expected a variable name"));
}

TEST(Csv, Parse) {
  std::string error;
  auto rows = ParseCsv("a,b\n1,\"x, \"\"y\"\"\"\r\n\"multi\nline\",\n", &error);
  ASSERT_TRUE(rows) << error;
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_THAT((*rows)[1], ElementsAre("1", "x, \"y\""));
  EXPECT_THAT((*rows)[2], ElementsAre("multi\nline", ""));
  EXPECT_EQ(ParseCsv("a\nlast", &error)->size(), 2u);
  EXPECT_FALSE(ParseCsv("a\n\"open", &error));
  EXPECT_EQ(error, "line 2: unterminated quoted field");
  EXPECT_FALSE(ParseCsv("a\nb\"c\n", &error));
  EXPECT_EQ(error, "line 2: a quote inside an unquoted field");
  EXPECT_FALSE(ParseCsv("\"a\"b\n", &error));
}

std::vector<std::string> Errors(const std::string& yaml) {
  std::vector<std::string> errors;
  EXPECT_FALSE(LoadScenarioString(yaml, "s.yaml", "/nonexistent/", &errors)) << yaml;
  return errors;
}

TEST(Scenario, ErrorsHavePositionsAndAreSorted) {
  EXPECT_THAT(Errors("requests:\n  - path: /x/{{nope}}\n"),
              ElementsAre("s.yaml:2:16: requests[0].path: unknown variable 'nope'"));
  EXPECT_THAT(Errors("requests:\n  - path: \"/x/{{nope}}\"\n"),
              ElementsAre("s.yaml:2:17: requests[0].path: unknown variable 'nope'"));
  EXPECT_THAT(Errors("rate: 0\nrequests: [{path: x}]\n"),
              ElementsAre("s.yaml:1:7: rate: expected a positive number, got '0'",
                          "s.yaml:2:19: requests[0].path: must start with '/'"));
  EXPECT_THAT(Errors("target: https://a/\nrequests: [{path: /}]\n")[0],
              HasSubstr("s.yaml:1:9: target: URL must start with http://"));
  EXPECT_THAT(Errors("target: http://127.0.0.1:1/x\nrequests: [{path: /}]\n")[0],
              HasSubstr("give only http://HOST:PORT"));
  EXPECT_THAT(Errors("requests: [{path: /}]\nprofile: ramp:1\n"),
              ElementsAre(HasSubstr("s.yaml:2:10: profile: profile 'ramp:1'")));
  EXPECT_THAT(Errors("requests: [{path: /}]\nstages: [1s:constant:5, bad]\n"),
              ElementsAre(HasSubstr("s.yaml:2:25: stages[1]: stage 'bad'")));
  EXPECT_THAT(Errors("requests: [{path: /}]\nthresholds: [p99<1s, 'p99<fast']\n"),
              ElementsAre(HasSubstr("s.yaml:2:22: thresholds[1]:")));
  EXPECT_THAT(Errors("requests: [{path: /}]\nrate: 5\nprofile: constant:5\n"),
              ElementsAre(HasSubstr("give one of rate, profile and stages")));
  EXPECT_THAT(Errors("requests: []\n"), ElementsAre(HasSubstr("s.yaml:1:11: requests:")));
  EXPECT_THAT(Errors("rate: 5\n"), ElementsAre(HasSubstr("missing required key 'requests'")));
  EXPECT_THAT(Errors("requests: [{path: /, weight: 0}]\n"),
              ElementsAre(HasSubstr("every weight is 0")));
  EXPECT_THAT(Errors("requests: [{path: /, method: 'G T'}]\n"),
              ElementsAre(HasSubstr("not an HTTP method token")));
  EXPECT_THAT(Errors("requests: [{path: /, headers: {Content-Length: 1}}]\n"),
              ElementsAre(HasSubstr("is computed from the body")));
  EXPECT_THAT(Errors("requests: [{path: /, headers: {X-A: \"a\\r\\nb\"}}]\n"),
              ElementsAre(HasSubstr("has CR, LF or NUL")));
  EXPECT_THAT(Errors("requests: [{path: /, colour: red}]\n"),
              ElementsAre("s.yaml:1:22: requests[0].colour: unknown key 'colour'; expected one "
                          "of: name, weight, method, path, headers, body"));
  EXPECT_THAT(Errors("variables: {v: {pick: [a b]}}\nrequests: [{path: '/{{v}}'}]\n"),
              ElementsAre(HasSubstr("s.yaml:1:16: variables.v: value 'a b' has whitespace")));
  EXPECT_THAT(Errors("variables: {v: {random_int: [5, 1]}}\nrequests: [{path: /}]\n"),
              ElementsAre(HasSubstr("MIN must not be greater than MAX")));
  EXPECT_THAT(Errors("variables: {v: {pick: [a], counter: 1}}\nrequests: [{path: /}]\n"),
              ElementsAre(HasSubstr("give exactly one of")));
  EXPECT_THAT(Errors("variables: {v: {csv: none.csv, column: a}}\nrequests: [{path: /}]\n"),
              ElementsAre(HasSubstr("cannot read '/nonexistent/none.csv'")));
  EXPECT_THAT(Errors("variables: {9v: uuid}\nrequests: [{path: /}]\n"),
              ElementsAre(HasSubstr("'9v' is not a name")));
  EXPECT_THAT(Errors("variables: {v: sometimes}\nrequests: [{path: /}]\n"),
              ElementsAre(HasSubstr("expected one of: random_int")));
  EXPECT_THAT(Errors("requests: [{path: /\n"), ElementsAre(HasSubstr("YAML syntax error")));
}

TEST(Scenario, SettingsAndCsv) {
  char dir[] = "/tmp/ficus_scenario_XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  std::string base = std::string(dir) + "/";
  std::ofstream(base + "users.csv") << "id,name\n1,ann\n2,\"bo b\"\n";
  std::vector<std::string> errors;
  auto s = LoadScenarioString(R"(
target: http://127.0.0.1:8080
stages: [1s:ramp:0..10, 2s:constant:10]
connections: 8
threads: 2
timeout: 2s
seed: 42
thresholds: [p99<300ms, errors<1%]
variables:
  name: {csv: users.csv, column: name}
requests:
  - {path: /u, body: '{{name}}', weight: 2}
  - {path: /v, method: DELETE}
)",
                              "s.yaml", base, &errors);
  ASSERT_TRUE(s) << errors[0];
  EXPECT_EQ(s->target, "http://127.0.0.1:8080");
  EXPECT_THAT(s->stages, ElementsAre("1s:ramp:0..10", "2s:constant:10"));
  EXPECT_EQ(s->connections, 8);
  EXPECT_EQ(s->threads, 2);
  EXPECT_EQ(s->timeout, "2s");
  EXPECT_EQ(*s->seed, 42u);
  EXPECT_THAT(s->thresholds, ElementsAre("p99<300ms", "errors<1%"));
  EXPECT_THAT(s->variables[0].values, ElementsAre("ann", "bo b"));  // a body may hold spaces
  EXPECT_THAT(s->cumulative, ElementsAre(2, 3));
  EXPECT_EQ(s->requests[1].parsed_method, http::Method::kDelete);
  // A CSV value with a space cannot go into a path.
  errors.clear();
  EXPECT_FALSE(LoadScenarioString(
      "variables: {name: {csv: users.csv, column: name}}\nrequests: [{path: '/{{name}}'}]\n",
      "s.yaml", base, &errors));
  EXPECT_THAT(errors, ElementsAre(HasSubstr("value 'bo b' has whitespace")));
  errors.clear();
  EXPECT_FALSE(
      LoadScenarioString("variables: {n: {csv: users.csv, column: nick}}\n"
                         "requests: [{path: /}]\n",
                         "s.yaml", base, &errors));
  EXPECT_THAT(errors, ElementsAre(HasSubstr("no column 'nick' in")));
  unlink((base + "users.csv").c_str());
  rmdir(dir);
}

TEST(RequestBuilder, VariablesWeightsAndBytes) {
  std::vector<std::string> errors;
  auto s = LoadScenarioString(R"(
variables:
  id: {random_int: [3, 5]}
  who: {pick: [ann, bob]}
  n: {counter: 10}
  rid: uuid
requests:
  - name: get
    weight: 3
    path: /items/{{id}}?n={{n}}
    headers: {X-Who: '{{who}}', X-Rid: '{{rid}}', X-Again: '{{n}}'}
  - name: post
    method: POST
    path: /cart
    body: '{"id":{{id}}}'
)",
                              "s.yaml", "", &errors);
  ASSERT_TRUE(s) << errors[0];
  RequestBuilder b(*s, "h:1", 7);
  std::string out;
  int gets = 0, posts = 0;
  std::set<int> ids;
  std::set<std::string> counters;
  for (int i = 0; i < 2000; ++i) {
    const RequestTemplate& r = b.Build(out);
    if (r.name == "get") {
      ++gets;
      int id = out[11] - '0';
      ids.insert(id);
      // "GET /items/4?n=12 HTTP/1.1\r\nHost: h:1\r\nUser-Agent: ficus-load\r\nX-Who: ann\r\n..."
      ASSERT_THAT(out, testing::MatchesRegex(
                           "GET /items/[345]\\?n=([0-9]+) HTTP/1\\.1\r\nHost: h:1\r\nUser-Agent: "
                           "ficus-load\r\nX-Who: (ann|bob)\r\nX-Rid: "
                           "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\r\n"
                           "X-Again: [0-9]+\r\n\r\n"));
      size_t q = out.find("?n=") + 3;
      std::string n = out.substr(q, out.find(' ', q) - q);
      size_t again = out.find("X-Again: ") + 9;
      EXPECT_EQ(out.substr(again, out.find('\r', again) - again), n);  // one value per request
      EXPECT_TRUE(counters.insert(n).second) << n;                     // never repeats
    } else {
      ++posts;
      ASSERT_THAT(out, testing::MatchesRegex("POST /cart HTTP/1\\.1\r\nHost: h:1\r\nUser-Agent: "
                                             "ficus-load\r\nContent-Length: 8\r\n\r\n"
                                             "\\{\"id\":[345]\\}"));
    }
  }
  EXPECT_NEAR(gets, 1500, 100);
  EXPECT_EQ(gets + posts, 2000);
  EXPECT_EQ(ids, (std::set<int>{3, 4, 5}));
  EXPECT_TRUE(counters.count("10"));
  EXPECT_TRUE(counters.count(std::to_string(10 + gets - 1)));
}

std::string WriteCapture(const std::string& text) {
  char tmpl[] = "/tmp/ficus_capture_XXXXXX";
  int fd = mkstemp(tmpl);
  ::write(fd, text.data(), text.size());
  close(fd);
  return tmpl;
}

TEST(Capture, TimelineSpeedMaxWaitLoopAndFilters) {
  std::string path = WriteCapture(
      "{\"t\":100.5,\"route\":\"a\",\"method\":\"GET\",\"target\":\"/x\",\"headers\":[[\"Host\","
      "\"h\"],[\"Connection\",\"keep-alive\"]]}\n"
      "{\"t\":100.0,\"route\":\"a\",\"method\":\"POST\",\"target\":\"/y\",\"headers\":[],"
      "\"body_base64\":\"aGk=\",\"body_bytes\":2,\"truncated\":false}\n"
      "\n"
      "{\"t\":104.5,\"route\":\"b\",\"method\":\"GET\",\"target\":\"/api/z\",\"headers\":[],"
      "\"body\":\"\",\"truncated\":true}\n");
  CaptureOptions o;
  o.speed = 2;
  o.host_header = "127.0.0.1:9";
  std::string error;
  auto c = LoadCapture(path, o, &error);
  ASSERT_TRUE(c) << error;
  ASSERT_EQ(c->requests.size(), 3u);
  // Sorted by time, scaled by 1/2.
  EXPECT_EQ(c->requests[0].bytes,
            "POST /y HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(c->requests[1].bytes, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n");  // hop-by-hop dropped
  EXPECT_EQ(c->requests[0].at_ns, 0);
  EXPECT_EQ(c->requests[1].at_ns, 250'000'000);
  EXPECT_EQ(c->requests[2].at_ns, 2'250'000'000);
  EXPECT_EQ(c->truncated_bodies, 1u);
  EXPECT_EQ(c->TimeOf(2), 2'250'000'000);
  EXPECT_EQ(c->TimeOf(3), INT64_MAX);
  EXPECT_EQ(c->CountAt(300'000'000), 2);
  // --max-wait caps gaps; --loop repeats with a period of the span plus a mean gap.
  o.max_wait_ns = 1'000'000'000;
  o.loop = true;
  c = LoadCapture(path, o, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->requests[2].at_ns, 1'250'000'000);
  EXPECT_EQ(c->span_ns, 1'250'000'000 + 625'000'000);
  EXPECT_EQ(c->TimeOf(4), 1'875'000'000 + 250'000'000);
  EXPECT_EQ(&c->At(4), &c->requests[1]);
  EXPECT_EQ(c->CountAt(1'875'000'000 + 1), 4);
  // --host replaces a captured Host in place and fills in a missing one.
  o.host_override = "shop.example:8443";
  c = LoadCapture(path, o, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->requests[0].bytes,
            "POST /y HTTP/1.1\r\nHost: shop.example:8443\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(c->requests[1].bytes, "GET /x HTTP/1.1\r\nHost: shop.example:8443\r\n\r\n");
  o.host_override.clear();
  // Filters.
  o.filters = {{"path", "/api"}};
  c = LoadCapture(path, o, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->requests.size(), 1u);
  EXPECT_EQ(c->skipped, 2u);
  o.filters = {{"route", "a"}, {"method", "POST"}};
  EXPECT_EQ(LoadCapture(path, o, &error)->requests.size(), 1u);
  // Filters of one key are alternatives; a negated one leaves its matches out.
  o.filters = {{"route", "a"}, {"route", "b"}};
  EXPECT_EQ(LoadCapture(path, o, &error)->requests.size(), 3u);
  o.filters = {{"route", "a"}, {"method", "POST", true}};
  ASSERT_EQ(LoadCapture(path, o, &error)->requests.size(), 1u);
  EXPECT_EQ(LoadCapture(path, o, &error)->requests[0].bytes.rfind("GET /x", 0), 0u);
  // A header's first value, the name in any case ("Host: h" only on the GET /x).
  o.filters = {{"header:HOST", "h"}};
  EXPECT_EQ(LoadCapture(path, o, &error)->requests.size(), 1u);
  o.filters = {{"header:host", "h", true}};
  EXPECT_EQ(LoadCapture(path, o, &error)->requests.size(), 2u);
  o.filters = {{"method", "PUT"}};
  EXPECT_FALSE(LoadCapture(path, o, &error));
  EXPECT_THAT(error, HasSubstr("no request matches the filters"));
  unlink(path.c_str());
  // Errors name the line.
  path = WriteCapture("{\"t\":1,\"method\":\"GET\",\"target\":\"/\",\"headers\":[]}\nnot json\n");
  EXPECT_FALSE(LoadCapture(path, CaptureOptions{}, &error));
  EXPECT_THAT(error, HasSubstr(path + ":2: not a JSON object"));
  unlink(path.c_str());
  path = WriteCapture(
      "{\"t\":1,\"method\":\"GET\",\"target\":\"/\",\"headers\":[[\"A\",\"b\\nc\"]]}\n");
  EXPECT_FALSE(LoadCapture(path, CaptureOptions{}, &error));
  EXPECT_THAT(error, HasSubstr(":1: bad header field"));
  unlink(path.c_str());
  EXPECT_FALSE(LoadCapture("/nonexistent/cap.jsonl", CaptureOptions{}, &error));
}

}  // namespace
}  // namespace ficus::load::internal
