#include "server/internal/config_diff.h"

#include <map>

#include "base/json.h"

namespace ficus::server {
namespace {

// Where a cluster, route or SLO was written, and indexes resolved from names, are not what it
// does: a section that only moved in the file, or whose cluster moved in the list, is unchanged.
// Everything else takes part through the structs' defaulted equality.
config::Cluster Comparable(config::Cluster c) {
  c.line = 0;
  return c;
}
config::Route Comparable(config::Route r) {
  r.line = 0;
  r.cluster_index = 0;
  return r;
}
config::Slo Comparable(config::Slo s) {
  s.line = 0;
  return s;
}

// Listeners are keyed by address; a renamed listener on the same address is the same socket.
config::Listener Comparable(const config::Listener& l) { return l; }

void List(JsonWriter& w, std::string_view key, const std::vector<std::string>& names) {
  w.Key(key).BeginArray();
  for (const auto& n : names) w.String(n);
  w.EndArray();
}

// {"added":[..],"removed":[..],"changed":[..]} between two lists of named items (changed left
// out when `with_changed` is false).
template <typename T, typename NameOf>
void Section(JsonWriter& w, std::string_view key, const std::vector<T>& before,
             const std::vector<T>& after, NameOf name_of, bool with_changed) {
  std::map<std::string, const T*> a, b;
  for (const T& x : before) a[name_of(x)] = &x;
  for (const T& x : after) b[name_of(x)] = &x;
  std::vector<std::string> added, removed, changed;
  for (const auto& [name, x] : b) {
    auto it = a.find(name);
    if (it == a.end()) {
      added.push_back(name);
    } else if (!(Comparable(*it->second) == Comparable(*x))) {
      changed.push_back(name);
    }
  }
  for (const auto& [name, x] : a) {
    if (!b.count(name)) removed.push_back(name);
  }
  w.Key(key).BeginObject();
  List(w, "added", added);
  List(w, "removed", removed);
  if (with_changed) List(w, "changed", changed);
  w.EndObject();
}

// Everything but the listeners, clusters and routes, which are diffed item by item (the SLOs
// are too, and count as settings as well).
config::Config Settings(const config::Config& c) {
  config::Config s = c;
  s.source.clear();
  s.listeners.clear();
  s.clusters.clear();
  s.routes.clear();
  for (config::Slo& slo : s.slos) slo = Comparable(std::move(slo));
  return s;
}

}  // namespace

std::string ConfigErrorsJson(const std::vector<config::ConfigError>& errors) {
  JsonWriter w;
  w.BeginObject().Key("applied").Bool(false).Key("errors").BeginArray();
  for (const auto& e : errors) {
    w.BeginObject()
        .Key("line")
        .Int(e.line)
        .Key("column")
        .Int(e.column)
        .Key("field")
        .String(e.field)
        .Key("reason")
        .String(e.reason)
        .Key("message")
        .String(e.ToString())
        .EndObject();
  }
  w.EndArray().EndObject();
  return w.Take() + "\n";
}

std::string ConfigDiffJson(const config::Config& before, const config::Config& after) {
  JsonWriter w;
  w.BeginObject().Key("applied").Bool(true);
  Section(
      w, "listeners", before.listeners, after.listeners,
      [](const config::Listener& l) { return l.Address(); }, false);
  const auto name = [](const auto& x) { return x.name; };
  Section(w, "clusters", before.clusters, after.clusters, name, true);
  Section(w, "routes", before.routes, after.routes, name, true);
  Section(w, "slos", before.slos, after.slos, name, true);
  w.Key("settings_changed").Bool(!(Settings(before) == Settings(after)));
  w.EndObject();
  return w.Take() + "\n";
}

}  // namespace ficus::server
