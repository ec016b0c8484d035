// Engine: one whole run of the load generator — a probe connection, the worker threads, the
// measured window (or, for idle, opening and holding), then the merged counts.
#pragma once

#include <memory>

#include "duplex/core/result.hpp"
#include "duplex/loadgen/options.hpp"
#include "duplex/loadgen/report.hpp"
#include "duplex/loadgen/stats.hpp"

namespace duplex::loadgen {

struct RunOutcome {
  Stats stats;
  RunFacts facts;
};

/// Runs `opt` to its end. A Failure means the server could not be reached at all (the probe's
/// connect, handshake or authentication failed): its detail is the one line to show.
/// A live progress line goes to stderr when it is a terminal.
Result<std::unique_ptr<RunOutcome>> run_bench(const BenchOptions& opt);

}  // namespace duplex::loadgen
