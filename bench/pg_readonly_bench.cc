// What the read/write split costs per transaction start: classifying the client's statements
// (src/pg/readonly.cc), on queries as ORMs and pgbench send them.
#include <benchmark/benchmark.h>

#include "pg/internal/replicas.h"

namespace {

using ficus::pg::internal::AccessClassifier;

void Classify(benchmark::State& state, const char* sql) {
  for (auto _ : state) {
    AccessClassifier c;
    c.AddSql(sql);
    benchmark::DoNotOptimize(c.Result());
  }
}

BENCHMARK_CAPTURE(Classify, pgbench_select, "SELECT abalance FROM pgbench_accounts WHERE aid = $1");
BENCHMARK_CAPTURE(Classify, orm_join,
                  "SELECT \"orders\".\"id\", \"orders\".\"total\", \"customers\".\"name\" FROM "
                  "\"orders\" INNER JOIN \"customers\" ON \"customers\".\"id\" = "
                  "\"orders\".\"customer_id\" WHERE \"orders\".\"status\" IN ($1, $2, $3) AND "
                  "\"orders\".\"created_at\" > now() - interval '7 days' ORDER BY "
                  "\"orders\".\"created_at\" DESC LIMIT 50 /*traceparent='00-4bf92f3577b34da6a3ce"
                  "929d0e0e4736-00f067aa0ba902b7-01'*/");
BENCHMARK_CAPTURE(Classify, update,
                  "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE "
                  "aid = $2");
BENCHMARK_CAPTURE(Classify, begin_read_only, "BEGIN READ ONLY");

}  // namespace
