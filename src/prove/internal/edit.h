// A finding's remedy into a config: the report's snippet merged into the config's YAML (named
// list entries merged by name), and the line diff `--dry-run` shows.
#pragma once

#include <string>
#include <vector>

#include "base/outcome.h"

namespace ficus::prove::internal {

// `snippet`'s keys merged into `base` (both YAML text): a map merges key by key; a list of maps
// with `name`s merges entry by entry (the snippet's fields set on the entry of the same name, a
// new name added — a new route before the first catch-all route, so that it can match); any
// other value replaces. A snippet route named ROUTE stands for each of `placeholder_routes`.
// The result is YAML text (comments are not kept). Fails when either does not parse, or the
// snippet names ROUTE and no route is given.
Outcome<std::string> MergeSnippet(const std::string& base, const std::string& snippet,
                                  const std::vector<std::string>& placeholder_routes);

// A unified-style line diff ("- old", "+ new", "  same" lines; unchanged runs longer than
// 2 * context lines shortened to "  ..."). Empty when the texts are equal.
std::string LineDiff(const std::string& before, const std::string& after, int context = 2);

}  // namespace ficus::prove::internal
