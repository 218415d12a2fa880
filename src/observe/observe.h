// ficus::observe — what the gateway tells about itself: metrics with per-worker shards, the
// access log and request tracing.
//
// Metrics: a worker writes only its own cell (plain relaxed loads/stores, no RMW, no lock); a
// scrape merges the cells of every worker into a MetricsSnapshot. Stats objects are created
// at config load and never freed, so their addresses stay valid across reloads and counters
// stay monotonic (Prometheus requires it).
//
// Access log and traces: the worker copies a fixed-size POD ExchangeRecord into its own
// bounded single-producer ring (a full ring drops the record and counts it, never waits); one
// background thread per sink formats and writes (JSON Lines to a file) or exports (OTLP/HTTP
// JSON in batches). Nothing is formatted or allocated on the worker.
#pragma once

#include "observe/access_log.h"       // IWYU pragma: export
#include "observe/exchange_record.h"  // IWYU pragma: export
#include "observe/metric_cells.h"     // IWYU pragma: export
#include "observe/registry.h"         // IWYU pragma: export
#include "observe/sketches.h"         // IWYU pragma: export
#include "observe/tracer.h"           // IWYU pragma: export
