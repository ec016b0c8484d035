// The metrics endpoint (`duplex serve --metrics URL`): plain HTTP GET /metrics on a thread of its
// own, answering with the server's counters and latency histograms in the Prometheus text format
// (OpenMetrics when asked). A scrape never runs on, or waits in, a session's event loop.
#pragma once

#include <memory>
#include <string>

#include "duplex/core/latency_histogram.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/endpoint.hpp"

namespace duplex::server {

struct ServerState;
class IoPool;

/// The buckets of the two histograms: the upper service's round trip (tens of microseconds on
/// loopback up to a second under load) and a command's run time (a few milliseconds for `true`
/// up to the command timeout).
std::unique_ptr<LatencyHistogram> make_upper_round_trip_histogram();
std::unique_ptr<LatencyHistogram> make_command_duration_histogram();

class MetricsEndpoint {
 public:
  /// Binds `where` (tcp:// or unix://, no TLS); serves nothing before start(). The failure's
  /// detail is one line naming the address, as for --listen.
  static Result<std::unique_ptr<MetricsEndpoint>> open(const net::Endpoint& where,
                                                       const ServerState& state, IoPool& pool);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  /// What a scraper is given: http://127.0.0.1:PORT/metrics (the real port), or unix:///path.
  std::string url() const;
  /// Starts the endpoint's thread.
  void start();
  /// Closes the endpoint and joins its thread (scrapes in progress are cut). Idempotent.
  void stop() noexcept;

 private:
  struct Impl;
  explicit MetricsEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace duplex::server
