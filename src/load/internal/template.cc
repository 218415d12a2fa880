#include "load/internal/template.h"

#include "load/load.h"

namespace ficus::load::internal {
namespace {

bool NameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool NameChar(char c) { return NameStart(c) || (c >= '0' && c <= '9'); }

}  // namespace

std::optional<Template> Template::Compile(std::string_view text,
                                          const std::function<int(std::string_view)>& lookup,
                                          std::string* error, size_t* error_offset) {
  Template t;
  auto literal = [&t](std::string_view s) {
    if (s.empty()) return;
    if (!t.parts_.empty() && t.parts_.back().var < 0) {
      t.parts_.back().length += static_cast<uint32_t>(s.size());
    } else {
      t.parts_.push_back(
          {static_cast<uint32_t>(t.literals_.size()), static_cast<uint32_t>(s.size()), -1});
    }
    t.literals_.append(s);
  };
  auto fail = [&](size_t at, std::string why) {
    *error = std::move(why);
    *error_offset = at;
    return std::nullopt;
  };
  if (text.size() > UINT32_MAX / 2) return fail(0, "text too long");
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find("{{", i);
    size_t escape = text.find("\\{{", i);
    if (escape != std::string_view::npos && escape < open) {
      literal(text.substr(i, escape - i));
      literal("{{");
      i = escape + 3;
      continue;
    }
    if (open == std::string_view::npos) {
      literal(text.substr(i));
      break;
    }
    literal(text.substr(i, open - i));
    size_t p = open + 2;
    while (p < text.size() && (text[p] == ' ' || text[p] == '\t')) ++p;
    size_t name_begin = p;
    if (p >= text.size() || !NameStart(text[p]))
      return fail(p, "expected a variable name after '{{' (write \\{{ for a literal '{{')");
    while (p < text.size() && NameChar(text[p])) ++p;
    std::string_view name = text.substr(name_begin, p - name_begin);
    while (p < text.size() && (text[p] == ' ' || text[p] == '\t')) ++p;
    if (text.substr(p, 2) != "}}")
      return fail(p, std::string("expected '}}' to close '{{").append(name).append("'"));
    int index = lookup(name);
    if (index < 0)
      return fail(name_begin, std::string("unknown variable '").append(name).append("'"));
    t.parts_.push_back({0, 0, index});
    bool seen = false;
    for (int32_t v : t.vars_) seen = seen || v == index;
    if (!seen) t.vars_.push_back(index);
    i = p + 2;
  }
  return t;
}

std::optional<std::vector<std::vector<std::string>>> ParseCsv(std::string_view text,
                                                              std::string* error) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  size_t line = 1;
  size_t i = 0;
  bool row_open = false;  // something of the current row was read
  while (i < text.size()) {
    char c = text[i];
    if (c == '"' && field.empty()) {
      size_t start_line = line;
      ++i;
      for (;;) {
        if (i >= text.size()) {
          *error = "line " + std::to_string(start_line) + ": unterminated quoted field";
          return std::nullopt;
        }
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++line;
        field.push_back(text[i++]);
      }
      row_open = true;
      if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
        *error = "line " + std::to_string(line) + ": text after a closing quote";
        return std::nullopt;
      }
      continue;
    }
    if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      row_open = true;
      ++i;
    } else if (c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      row_open = false;
      i += c == '\r' ? 2 : 1;
      ++line;
    } else if (c == '"') {
      *error = "line " + std::to_string(line) + ": a quote inside an unquoted field";
      return std::nullopt;
    } else {
      field.push_back(c);
      row_open = true;
      ++i;
    }
  }
  if (row_open) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace ficus::load::internal

namespace ficus::load {

std::string TemplateLiteral(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i, 2) == "{{") out += '\\';
    out += text[i];
  }
  return out;
}

}  // namespace ficus::load
