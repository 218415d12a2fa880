// Sections: admin, listeners (and where each binds, for the overlap checks).
#include <sys/socket.h>

#include "config/internal/reader.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

bool Loader::ReadListen(const Value& v, std::string* address, uint16_t* port, int* family) {
  if (v.node.IsSequence()) {
    // `listen: [::1]:8080` unquoted is a YAML list: say how to write it.
    Error(v,
          "expected a string like 0.0.0.0:8080, got a list (quote IPv6 addresses: "
          "\"[::1]:8080\")");
    return false;
  }
  std::optional<std::string> s = String(v);
  if (!s) return false;
  HostPort hp;
  std::string error;
  if (!ParseHostPort(*s, &hp, &error)) {
    Error(v, Quote(*s) + ": " + error);
    return false;
  }
  std::optional<std::string> ip = CanonicalIp(hp.host, family);
  if (!ip) {
    Error(v, "host must be an IP address (like 0.0.0.0, 127.0.0.1 or [::]), got " + Quote(hp.host));
    return false;
  }
  if (hp.bracketed != (*family == AF_INET6)) {
    Error(v, "brackets are for IPv6 addresses only, got " + Quote(*s));
    return false;
  }
  *address = *ip;
  *port = hp.port;
  return true;
}

void Loader::ReadAdmin(const Value& v, Admin* admin) {
  Fields f;
  if (!ReadMap(v, {"listen", "token", "public_paths"}, &f)) return;
  const Value* listen = f.Get("listen");
  int family = AF_INET;
  bool listen_ok = true;
  if (listen) listen_ok = ReadListen(*listen, &admin->address, &admin->port, &family);
  if (const Value* token = f.Get("token")) {
    if (auto s = String(*token)) {
      admin->token = *s;
      if (!s->empty() && s->size() < 16) {
        Warn(token->loc, token->path, "the admin token is shorter than 16 characters");
      }
    }
  }
  if (const Value* paths = f.Get("public_paths")) {
    if (ExpectList(*paths)) {
      size_t i = 0;
      for (auto it = paths->node.begin(); it != paths->node.end(); ++it, ++i) {
        const Value item = Item(*paths, *it, i);
        std::optional<std::string> s = String(item);
        if (s && *s != "/metrics" && *s != "/live" && *s != "/ready") {
          Error(item,
                "only /metrics, /live and /ready may be read without the token, got " + Quote(*s));
        } else if (s) {
          admin->public_paths.push_back(*s);
        }
      }
    }
  }
  if (listen && listen_ok) {
    bindings_.push_back({"admin", admin->address, family, admin->port, listen->loc, listen->path});
  }
}

void Loader::ReadListeners(const Value& v) {
  if (!ExpectList(v)) return;
  if (v.node.size() == 0) {
    Error(v, "at least one listener is required");
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item, {"name", "listen", "kind"}, &f)) continue;
    Listener l;
    l.name = "listener-" + std::to_string(i);
    Loc name_loc = item.loc;
    if (const Value* name = f.Get("name")) {
      if (auto s = Name(*name)) l.name = *s;
      name_loc = name->loc;
    }
    for (size_t k = 0; k < config_.listeners.size(); ++k) {
      if (config_.listeners[k].name == l.name) {
        Error(name_loc, Sub(item.path, "name"),
              "duplicate listener name " + Quote(l.name) + " (also listeners[" + std::to_string(k) +
                  "])");
      }
    }
    Require(f, item, "listen");
    if (const Value* listen = f.Get("listen")) {
      int family = 0;
      if (ReadListen(*listen, &l.address, &l.port, &family)) {
        bindings_.push_back(
            {"listener " + Quote(l.name), l.address, family, l.port, listen->loc, listen->path});
      }
    }
    Loc kind_loc = item.loc;
    if (const Value* kind = f.Get("kind")) {
      kind_loc = kind->loc;
      if (auto s = String(*kind)) {
        if (*s == "postgres") {
          l.kind = ListenerKind::kPostgres;
        } else if (*s != "http") {
          Error(*kind, "unknown listener kind " + Quote(*s) + "; expected http or postgres");
        }
      }
    }
    listener_kind_locs_.push_back(kind_loc);
    config_.listeners.push_back(std::move(l));
  }
}

}  // namespace ficus::config::internal
