// Fuzzes index advice from EXPLAIN (FORMAT JSON) (src/pg/plan_advice.cc) and the SQL lexer it
// reads conditions with. Invariants, for every input:
//  - the lexer's tokens are non-empty, in order, inside the input, and never overlap;
//  - a condition's columns are non-empty names, never both equality and range, none with OR;
//  - any JSON document is advised or refused with an error, never a crash; every index advised
//    has a table and at least one column, and its statement is a CREATE INDEX.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "pg/internal/lexer.h"
#include "pg/internal/plan_advice.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ficus::pg::internal;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  SqlLexer lexer(in);
  const char* last_end = in.data();
  for (SqlToken t; lexer.Next(&t);) {
    FUZZ_CHECK(!t.text.empty());
    FUZZ_CHECK(t.text.data() >= last_end);
    FUZZ_CHECK(t.text.data() + t.text.size() <= in.data() + in.size());
    last_end = t.text.data() + t.text.size();
  }

  const ConditionColumns c = ColumnsOf(in, size % 2 ? "o" : "");
  if (c.has_or) FUZZ_CHECK(c.equality.empty() && c.range.empty());
  for (const std::string& e : c.equality) {
    FUZZ_CHECK(!e.empty());
    for (const std::string& r : c.range) FUZZ_CHECK(e != r);
  }

  PlanAdvice advice;
  std::string error;
  if (AdviseIndexes(in, &advice, &error)) {
    for (const IndexAdvice& a : advice.indexes) {
      FUZZ_CHECK(!a.table.empty() && !a.columns.empty());
      FUZZ_CHECK(a.Statement().starts_with("CREATE INDEX CONCURRENTLY ON "));
    }
  } else {
    FUZZ_CHECK(!error.empty());
  }
  return 0;
}
