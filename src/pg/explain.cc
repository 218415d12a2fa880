// EXPLAIN on demand for a sampled query of a fingerprint (see internal/explain.h).
#include "pg/internal/explain.h"

#include <chrono>
#include <future>

#include "base/log.h"
#include "pg/internal/trace_join.h"

namespace ficus::pg::internal {

namespace {

// The rest of a message body after `n` NUL-terminated names; npos when they are not there.
size_t AfterNames(std::string_view body, int n) {
  size_t at = 0;
  for (int i = 0; i < n; ++i) {
    const size_t nul = body.find('\0', at);
    if (nul == std::string_view::npos) return std::string_view::npos;
    at = nul + 1;
  }
  return at;
}

// A Bind body's parameter part (formats and values) without its result formats: the EXPLAIN
// has one text column whatever the client's query had. Empty when malformed.
std::string_view BindParams(std::string_view b) {
  size_t at = 0;
  auto int16 = [&](uint16_t* v) {
    if (at + 2 > b.size()) return false;
    *v = ReadInt16(b.data() + at);
    at += 2;
    return true;
  };
  uint16_t formats = 0, params = 0;
  if (!int16(&formats) || at + 2ull * formats > b.size()) return {};
  at += 2ull * formats;
  if (!int16(&params)) return {};
  for (uint16_t i = 0; i < params; ++i) {
    if (at + 4 > b.size()) return {};
    const int32_t len = static_cast<int32_t>(ReadInt32(b.data() + at));
    at += 4;
    if (len > 0) {
      if (at + static_cast<size_t>(len) > b.size()) return {};
      at += static_cast<size_t>(len);
    }
  }
  return b.substr(0, at);
}

std::string ErrorText(std::string_view body) {
  for (size_t i = 0; i < body.size() && body[i] != '\0';) {
    const char field = body[i];
    const size_t nul = body.find('\0', i + 1);
    if (nul == std::string_view::npos) break;
    if (field == 'M') return std::string(body.substr(i + 1, nul - i - 1));
    i = nul + 1;
  }
  return "the server refused the EXPLAIN";
}

void AppendQuery(std::string& out, std::string_view sql) {
  std::string body(sql);
  body += '\0';
  AppendMessage(out, 'Q', body);
}

net::Task<void> RunExplain(Service::Impl& impl, WorkerState& w, ParamSample s, std::string msgs,
                           std::shared_ptr<std::promise<Explainer::Plan>> done) {
  ++w.running;
  Explainer::Plan plan;
  std::string sqlstate, error;
  std::shared_ptr<Pool> pool = impl.FindPool(s.database, s.user, &sqlstate, &error);
  if (!pool) {
    plan.status = 404;
    plan.error = error;
  } else {
    Acquired a = co_await Acquire(impl, w, *pool, {});
    if (!a.conn) {
      plan.status = 503;
      plan.error = a.error;
    } else {
      ServerConn& c = *a.conn;
      const uint32_t max_message = impl.Config()->postgres.max_message;
      bool clean = !co_await c.Write(msgs);
      // ReadyForQuery ends each part: BEGIN, the EXPLAIN, the EXPLAIN (FORMAT JSON), ROLLBACK.
      int ready = 0;
      char status = 0;
      while (clean && ready < 4) {
        Frame f = c.in.Peek(max_message, /*frontend=*/false);
        if (f.status == Frame::Status::kError) {
          clean = false;
          break;
        }
        if (f.status == Frame::Status::kNeedMore) {
          const size_t want = f.size ? f.size - c.in.View().size() : 5;
          if (co_await c.in.Fill(c.sock, c.tls, want) == 0) clean = false;
          continue;
        }
        const std::string_view m = c.in.View().substr(0, f.size);
        const std::string_view body = m.substr(5);
        if (m[0] == 'D' && body.size() >= 6 && ReadInt16(body.data()) == 1) {
          const int32_t len = static_cast<int32_t>(ReadInt32(body.data() + 2));
          if (len >= 0 && static_cast<size_t>(len) <= body.size() - 6) {
            const std::string_view value = body.substr(6, static_cast<size_t>(len));
            if (ready == 1) plan.lines.emplace_back(value);
            if (ready == 2) plan.json.append(value);
          }
        } else if (m[0] == 'E' && plan.error.empty()) {
          plan.error = ErrorText(body);
        } else if (m[0] == 'Z') {
          ++ready;
          status = body.empty() ? 0 : body[0];
        }
        c.in.Consume(f.size);
      }
      clean = clean && status == 'I' && c.in.empty();
      if (!clean && plan.error.empty()) plan.error = "the server connection was lost";
      plan.ok = plan.error.empty();
      if (!plan.ok) plan.status = 502;
      Release(w, std::move(a.conn), clean);
    }
  }
  done->set_value(std::move(plan));
  --w.running;
}

}  // namespace

std::string ExplainMessages(const ParamSample& s, bool analyze, std::string* error) {
  std::string query = s.extended ? std::string(s.parse.substr(0, s.parse.find('\0'))) : s.sql;
  std::string norm = Normalize(query);
  while (!norm.empty() && (norm.back() == ';' || norm.back() == ' ')) norm.pop_back();
  if (norm.find(';') != std::string::npos) {
    *error = "the sampled query has several statements: EXPLAIN one at a time";
    return {};
  }
  if (analyze && !norm.starts_with("select ")) {
    *error = "EXPLAIN ANALYZE runs the query: only a SELECT is run (this one is `" +
             norm.substr(0, norm.find(' ')) + "`)";
    return {};
  }
  const std::string prefix = analyze ? "EXPLAIN (ANALYZE, BUFFERS) " : "EXPLAIN ";
  std::string out;
  // Read-only, bounded in time, and rolled back whatever it did.
  AppendQuery(out, "BEGIN READ ONLY; SET LOCAL statement_timeout = " +
                       std::to_string(Explainer::kStatementTimeoutMs));
  // The plan as the user reads it, then as index advice reads it (plan only: never a second
  // run of the query).
  for (const std::string& p : {prefix, std::string("EXPLAIN (FORMAT JSON) ")}) {
    if (!s.extended) {
      AppendQuery(out, p + s.sql);
      continue;
    }
    const std::string_view types = std::string_view(s.parse).substr(query.size() + 1);
    std::string parse(1, '\0');
    parse += p + query;
    parse += '\0';
    parse += types;
    AppendMessage(out, 'P', parse);
    std::string bind(2, '\0');  // unnamed portal, unnamed statement
    bind += BindParams(s.bind);
    AppendInt16(bind, 0);  // results in text
    AppendMessage(out, 'B', bind);
    std::string execute(1, '\0');
    AppendInt32(execute, 0);
    AppendMessage(out, 'E', execute);
    AppendMessage(out, 'S', {});
  }
  AppendQuery(out, "ROLLBACK");
  return out;
}

ParamSample* Explainer::Slot(Table& t, uint64_t fp, int64_t now_ms) {
  auto it = t.samples.find(fp);  // the owner reads without the lock
  if (it != t.samples.end()) return now_ms - it->second.at_ms >= kRefreshMs ? &it->second : nullptr;
  if (t.samples.size() >= kMaxSamples) return nullptr;
  std::lock_guard lock(t.mu);
  return &t.samples[fp];
}

void Explainer::OnQuery(int w, uint64_t fp, std::string_view sql, const std::string& database,
                        const std::string& user, int64_t now_ms) {
  Table& t = tables_[static_cast<size_t>(w)];
  if (sql.size() > kMaxBytes) return;
  ParamSample* s = Slot(t, fp, now_ms);
  if (s == nullptr) return;
  std::lock_guard lock(t.mu);
  s->database = database;
  s->user = user;
  s->sql.assign(sql);
  s->parse.clear();
  s->bind.clear();
  s->extended = false;
  s->awaiting_bind = false;
  s->at_ms = now_ms;
}

void Explainer::OnParse(int w, uint64_t fp, std::string_view body, const std::string& database,
                        const std::string& user, int64_t now_ms) {
  Table& t = tables_[static_cast<size_t>(w)];
  const size_t at = AfterNames(body, 1);
  if (at == std::string_view::npos || body.size() > kMaxBytes) return;
  ParamSample* s = Slot(t, fp, now_ms);
  if (s == nullptr) return;
  std::lock_guard lock(t.mu);
  s->database = database;
  s->user = user;
  s->sql.clear();
  s->parse.assign(body.substr(at));
  s->bind.clear();
  s->extended = true;
  s->awaiting_bind = true;
  s->at_ms = now_ms;
}

void Explainer::OnBind(int w, uint64_t fp, std::string_view body) {
  Table& t = tables_[static_cast<size_t>(w)];
  auto it = t.samples.find(fp);
  if (it == t.samples.end() || !it->second.awaiting_bind) return;
  const size_t at = AfterNames(body, 2);
  if (at == std::string_view::npos || body.size() > kMaxBytes) return;
  std::lock_guard lock(t.mu);
  it->second.bind.assign(body.substr(at));
  it->second.awaiting_bind = false;
}

bool Explainer::Find(uint64_t fp, ParamSample* out) const {
  bool found = false;
  for (const Table& t : tables_) {
    std::lock_guard lock(t.mu);
    auto it = t.samples.find(fp);
    if (it == t.samples.end() || it->second.awaiting_bind || it->second.at_ms == 0) continue;
    if (!found || it->second.at_ms > out->at_ms) *out = it->second;
    found = true;
  }
  return found;
}

std::future<Explainer::Plan> Explainer::Start(Service::Impl& impl, uint64_t fp,
                                              bool analyze) const {
  auto done = std::make_shared<std::promise<Plan>>();
  std::future<Plan> result = done->get_future();
  Plan plan;
  ParamSample s;
  if (!Find(fp, &s)) {
    plan.status = 404;
    plan.error = "no sampled query for fingerprint " + Hex(fp) +
                 " (a sample is taken when a query of it runs through ficus)";
    done->set_value(std::move(plan));
    return result;
  }
  std::string msgs = ExplainMessages(s, analyze, &plan.error);
  if (msgs.empty()) {
    plan.status = 400;
    done->set_value(std::move(plan));
    return result;
  }
  WorkerState& w = *impl.workers.front();
  if (w.loop == nullptr || w.stopping) {
    plan.status = 503;
    plan.error = "the PostgreSQL proxy is not running";
    done->set_value(std::move(plan));
    return result;
  }
  w.loop->Post([&impl, &w, s = std::move(s), msgs = std::move(msgs), done]() mutable {
    net::Spawn(RunExplain(impl, w, std::move(s), std::move(msgs), done), [](std::exception_ptr e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("pg: explain: {}", ex.what());
      }
    });
  });
  return result;
}

void Explainer::Advise(Plan& plan) {
  if (!plan.ok || plan.json.empty()) return;
  std::string error;
  if (!AdviseIndexes(plan.json, &plan.advice, &error)) log::warn("pg: explain: {}", error);
}

Explainer::Plan Explainer::Explain(Service::Impl& impl, uint64_t fp, bool analyze,
                                   int64_t timeout_ms) const {
  std::future<Plan> result = Start(impl, fp, analyze);
  if (result.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready) {
    Plan plan;
    plan.status = 504;
    plan.error = "no answer within " + std::to_string(timeout_ms) + " ms";
    return plan;
  }
  Plan plan = result.get();
  Advise(plan);
  return plan;
}

}  // namespace ficus::pg::internal
