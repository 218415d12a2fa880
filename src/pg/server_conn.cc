// Connections to PostgreSQL servers: connect, startup, authenticate (SCRAM-SHA-256, md5 or
// cleartext, as the server asks), collect its parameters and backend key; and FrameBuffer.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "pg/internal/service.h"

namespace ficus::pg::internal {

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

net::Task<size_t> FrameBuffer::Fill(net::Socket& s, tls::Stream& tls, size_t want) {
  if (start_ == end_) start_ = end_ = 0;
  if (start_ > 0 && (buf_.size() - end_ < 4096 || start_ > buf_.size() / 2)) {
    std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  const size_t need = std::max<size_t>(end_ + want, end_ + 4096);
  if (buf_.size() < need)
    buf_.resize(std::max(need, buf_.size() * 2 < (64u << 10) ? (16u << 10) : need));
  net::ReadResult r =
      co_await tls.ReadSome(s, std::span<char>(buf_.data() + end_, buf_.size() - end_));
  if (r.ec || r.bytes == 0) co_return 0;
  end_ += r.bytes;
  co_return r.bytes;
}

namespace {

// The bytes of one complete backend frame, reading as needed; empty on EOF or a bad frame.
net::Task<std::string_view> ReadFrame(ServerConn& s, uint32_t max_message) {
  for (;;) {
    Frame f = s.in.Peek(max_message, /*frontend=*/false);
    if (f.status == Frame::Status::kComplete) co_return s.in.View().substr(0, f.size);
    if (f.status == Frame::Status::kError) co_return std::string_view();
    const size_t want = f.size ? f.size - s.in.View().size() : 5;
    if (co_await s.in.Fill(s.sock, s.tls, want) == 0) co_return std::string_view();
  }
}

std::string ErrorMessageOf(std::string_view body) {
  // Fields: code byte, string; 'M' is the message, 'C' the SQLSTATE.
  std::string msg, code;
  size_t i = 0;
  while (i < body.size() && body[i] != '\0') {
    const char t = body[i++];
    const size_t nul = body.find('\0', i);
    if (nul == std::string_view::npos) break;
    if (t == 'M') msg = body.substr(i, nul - i);
    if (t == 'C') code = body.substr(i, nul - i);
    i = nul + 1;
  }
  return "server said: " + msg + (code.empty() ? "" : " (SQLSTATE " + code + ")");
}

struct ConnectDeadline : net::TimeoutList::Entry {
  net::Socket* sock = nullptr;
  bool fired = false;
  void OnTimeout() override {
    fired = true;
    sock->Cancel();
  }
};

void AppendPassword(std::string& out, std::string_view payload) {
  AppendMessage(out, 'p', payload);
}

}  // namespace

net::Task<bool> RunQuietly(ServerConn& s, std::string_view sql, uint32_t max_message) {
  std::string out;
  std::string body(sql);
  body += '\0';
  AppendMessage(out, 'Q', body);
  if (co_await s.Write(out)) co_return false;
  bool ok = true;
  for (;;) {
    std::string_view m = co_await ReadFrame(s, max_message);
    if (m.empty()) co_return false;
    const char type = m[0];
    if (type == 'E') ok = false;
    if (type == 'S') {
      std::string_view b = m.substr(5);
      const size_t nul = b.find('\0');
      if (nul != std::string_view::npos && b.size() > nul + 1)
        s.SetParam(b.substr(0, nul), b.substr(nul + 1, b.size() - nul - 2));
    }
    const char status = m.size() == 6 ? m[5] : 0;
    s.in.Consume(m.size());
    if (type == 'Z') co_return ok&& status == 'I';
  }
}

net::Task<bool> RunQueryRow(ServerConn& s, std::string_view sql, uint32_t max_message,
                            std::vector<std::optional<std::string>>* row, std::string* error) {
  std::string out;
  std::string body(sql);
  body += '\0';
  AppendMessage(out, 'Q', body);
  row->clear();
  if (co_await s.Write(out)) {
    *error = "connection lost";
    co_return false;
  }
  bool ok = true, have_row = false;
  for (;;) {
    std::string_view m = co_await ReadFrame(s, max_message);
    if (m.empty()) {
      *error = "connection lost";
      co_return false;
    }
    const char type = m[0];
    std::string_view b = m.substr(5);
    if (type == 'E') {
      ok = false;
      *error = ErrorMessageOf(b);
    } else if (type == 'D' && !have_row && b.size() >= 2) {
      // DataRow: int16 count, then per column an int32 length (-1: NULL) and the bytes.
      have_row = true;
      const uint16_t n = ReadInt16(b.data());
      size_t at = 2;
      for (uint16_t i = 0; i < n && ok; ++i) {
        if (b.size() < at + 4) {
          ok = false;
          *error = "malformed DataRow";
          break;
        }
        const int32_t len = static_cast<int32_t>(ReadInt32(b.data() + at));
        at += 4;
        if (len < 0) {
          row->push_back(std::nullopt);
          continue;
        }
        if (b.size() < at + static_cast<size_t>(len)) {
          ok = false;
          *error = "malformed DataRow";
          break;
        }
        row->push_back(std::string(b.substr(at, static_cast<size_t>(len))));
        at += static_cast<size_t>(len);
      }
    }
    const char status = m.size() == 6 ? m[5] : 0;
    s.in.Consume(m.size());
    if (type == 'Z') {
      if (ok && !have_row) *error = "the query returned no row";
      co_return ok&& have_row&& status == 'I';
    }
  }
}

namespace {

// One connection attempt (ConnectServer makes a second for sslmode allow).
net::Task<std::unique_ptr<ServerConn>> ConnectOnce(
    WorkerState& w, Pool& pool, const std::vector<std::pair<std::string, std::string>>& params,
    std::string* error, int64_t deadline_ms, bool allow_retry) {
  auto c = std::make_unique<ServerConn>();
  c->pool = &pool;
  ConnectDeadline deadline;
  deadline.sock = &c->sock;
  deadline.SetDeadline(deadline_ms);
  w.timeouts.Add(&deadline);
  struct Unlink {
    net::TimeoutList& list;
    ConnectDeadline& d;
    ~Unlink() { list.Remove(&d); }
  } unlink{w.timeouts, deadline};
  const uint32_t max_message = 1u << 20;  // authentication and startup messages are small

  if (net::ErrorCode ec = co_await c->sock.Connect(*w.loop, pool.address)) {
    *error = deadline.fired ? "connect timed out" : ec.message();
    co_return nullptr;
  }
  net::SetNoDelay(c->sock.fd());
  if (!co_await StartServerTls(*c, pool, allow_retry, error)) {
    if (deadline.fired) *error = "TLS to the server timed out";
    co_return nullptr;
  }
  std::string body;
  AppendInt32(body, kProtocol3);
  auto add = [&](std::string_view k, std::string_view v) {
    body.append(k);
    body += '\0';
    body.append(v);
    body += '\0';
  };
  add("user", pool.user);
  add("database", pool.db.dbname);
  // A read-only database: the server itself refuses writes, on a replica and on the primary.
  if (pool.db.read_only) add("default_transaction_read_only", "on");
  for (const auto& [k, v] : params) {
    if (k == "client_encoding" || k == "DateStyle" || k == "TimeZone" || k == "IntervalStyle" ||
        k == "application_name")
      add(k, v);
  }
  body += '\0';
  std::string out;
  AppendInt32(out, static_cast<uint32_t>(body.size() + 4));
  out += body;
  if (co_await c->Write(out)) {
    *error = "connection lost while sending the startup packet";
    co_return nullptr;
  }
  std::unique_ptr<ScramClient> scram;
  bool authenticated = false;
  for (;;) {
    std::string_view m = co_await ReadFrame(*c, max_message);
    if (m.empty()) {
      *error = deadline.fired ? "startup timed out" : "connection closed during startup";
      co_return nullptr;
    }
    const char type = m[0];
    std::string_view b = m.substr(5);
    out.clear();
    if (type == 'E') {
      *error = ErrorMessageOf(b);
      co_return nullptr;
    }
    if (type == 'R') {
      if (b.size() < 4) {
        *error = "malformed authentication request";
        co_return nullptr;
      }
      const uint32_t code = ReadInt32(b.data());
      std::string_view data = b.substr(4);
      if (code == 0) {
        authenticated = true;
      } else if (code == 3) {  // cleartext
        std::string p = pool.server_password;
        p += '\0';
        AppendPassword(out, p);
      } else if (code == 5 && data.size() == 4) {  // md5
        std::string p = Md5Response(pool.user, pool.server_password, data);
        p += '\0';
        AppendPassword(out, p);
      } else if (code == 10) {  // SASL: the mechanisms offered
        if (data.find(std::string_view("SCRAM-SHA-256\0", 14)) != 0 &&
            data.find(std::string_view("\0SCRAM-SHA-256\0", 15)) == std::string_view::npos) {
          *error = "the server offers no SCRAM-SHA-256";
          co_return nullptr;
        }
        scram = std::make_unique<ScramClient>(pool.server_password);
        const std::string first = scram->First();
        std::string p = "SCRAM-SHA-256";
        p += '\0';
        AppendInt32(p, static_cast<uint32_t>(first.size()));
        p += first;
        AppendPassword(out, p);
      } else if (code == 11 && scram) {
        std::string final_msg, why;
        if (!scram->Final(data, &final_msg, &why)) {
          *error = why;
          co_return nullptr;
        }
        AppendPassword(out, final_msg);
      } else if (code == 12 && scram) {
        if (!scram->Verify(data)) {
          *error = "the server's SCRAM signature does not verify";
          co_return nullptr;
        }
      } else {
        *error = "unsupported authentication method " + std::to_string(code) +
                 " (ficus speaks SCRAM-SHA-256, md5 and password)";
        co_return nullptr;
      }
    } else if (type == 'S') {
      const size_t nul = b.find('\0');
      if (nul != std::string_view::npos && b.size() > nul + 1)
        c->SetParam(b.substr(0, nul), b.substr(nul + 1, b.size() - nul - 2));
    } else if (type == 'K' && b.size() == 8) {
      c->backend_pid = ReadInt32(b.data());
      c->backend_key = ReadInt32(b.data() + 4);
    } else if (type == 'Z') {
      c->in.Consume(m.size());
      if (!authenticated) {
        *error = "the server was ready before authenticating";
        co_return nullptr;
      }
      co_return c;
    }
    c->in.Consume(m.size());
    if (!out.empty() && co_await c->Write(out)) {
      *error = "connection lost during authentication";
      co_return nullptr;
    }
  }
}

}  // namespace

net::Task<std::unique_ptr<ServerConn>> ConnectServer(
    WorkerState& w, Pool& pool, const std::vector<std::pair<std::string, std::string>>& params,
    std::string* error, int64_t timeout_ms) {
  const int64_t deadline_ms = w.loop->NowMs() + timeout_ms;
  auto c = co_await ConnectOnce(w, pool, params, error, deadline_ms, false);
  // sslmode allow: plain text first, TLS when the server refused it (pg_hba hostssl: 28000).
  if (c || pool.db.sslmode != config::PgSslMode::kAllow ||
      error->find("SQLSTATE 28000") == std::string::npos)
    co_return c;
  co_return co_await ConnectOnce(w, pool, params, error, deadline_ms, true);
}

}  // namespace ficus::pg::internal
