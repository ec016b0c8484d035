// Report: the numbers of one run, as one JSON object (the names bench/suite.py reads) or as text
// for a person. Pure; no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "duplex/loadgen/options.hpp"
#include "duplex/loadgen/stats.hpp"

namespace duplex::loadgen {

/// What the run learnt besides the counts.
struct RunFacts {
  WireProtocol protocol = WireProtocol::raw;  // what was spoken (the probe settles "auto")
  double elapsed_s = 0;                       // the measured window (idle: opening them all)
  std::optional<long> server_rss_before_kib, server_rss_after_kib;
  std::size_t idle_open = 0;  // idle: connections open at the second reading
  double client_cpu_s = 0;
  std::array<std::string, kErrorKinds> first_errors;  // one line per kind that happened
};

struct LatencyUs {
  double min = 0, mean = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

struct Report {
  std::string url, mode, protocol, verify;
  std::size_t connections = 0, threads = 0, size = 0;
  double duration_s = 0;
  std::optional<double> rate;
  std::uint64_t messages = 0, errors = 0, bytes_sent = 0, bytes_received = 0;
  std::array<std::uint64_t, kErrorKinds> errors_by_kind{};
  double elapsed_s = 0, msg_per_s = 0;
  double mb_per_s = 0;  // payload bytes both ways, 10^6 bytes a second
  LatencyUs latency_us;
  std::uint64_t connects = 0;
  double conn_per_s = 0;  // connections made within the window (storm: one per message)
  std::uint64_t commands = 0;
  double cmd_per_s = 0;
  std::optional<long> server_rss_before_kib, server_rss_after_kib;
  std::optional<double> rss_per_conn_bytes;
  double client_cpu_s = 0;
  std::array<std::string, kErrorKinds> first_errors;
};

Report make_report(const BenchOptions& opt, const Stats& stats, const RunFacts& facts);

/// One JSON object, one line (no trailing newline).
std::string to_json(const Report& r);
/// A few lines for a terminal.
std::string to_text(const Report& r);

}  // namespace duplex::loadgen
