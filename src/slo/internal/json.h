// A small streaming JSON writer for the slo module's bodies (webhooks, GET /slo). Commas are
// inserted automatically; numbers print as integers when whole, else with 6 significant digits.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace ficus::slo::internal {

class JsonWriter {
 public:
  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }
  JsonWriter& Key(std::string_view k) {
    Separate();
    AppendString(k);
    out_.push_back(':');
    after_key_ = true;
    return *this;
  }
  JsonWriter& String(std::string_view s) {
    Separate();
    AppendString(s);
    return *this;
  }
  JsonWriter& Number(double v) {
    Separate();
    if (!std::isfinite(v)) {
      out_.append("null");  // JSON has no Inf or NaN
    } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
      out_.append(std::to_string(static_cast<long long>(v)));
    } else {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.6g", v);
      out_.append(buf);
    }
    return *this;
  }
  JsonWriter& Bool(bool b) {
    Separate();
    out_.append(b ? "true" : "false");
    return *this;
  }
  JsonWriter& Null() {
    Separate();
    out_.append("null");
    return *this;
  }
  std::string Take() { return std::move(out_); }

 private:
  JsonWriter& Open(char c) {
    Separate();
    out_.push_back(c);
    first_.push_back(true);
    return *this;
  }
  JsonWriter& Close(char c) {
    out_.push_back(c);
    first_.pop_back();
    return *this;
  }
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_.push_back(',');
      first_.back() = false;
    }
  }
  void AppendString(std::string_view s) {
    out_.push_back('"');
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (ch == '"' || ch == '\\') {
        out_.push_back('\\');
        out_.push_back(ch);
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out_.append(buf);
      } else {
        out_.push_back(ch);
      }
    }
    out_.push_back('"');
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace ficus::slo::internal
