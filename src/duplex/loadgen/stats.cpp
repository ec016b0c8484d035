// Stats: names of the error kinds, and merging the threads' counts.
#include "duplex/loadgen/stats.hpp"

#include <numeric>

namespace duplex::loadgen {

std::string_view name_of(ErrorKind k) noexcept {
  switch (k) {
    case ErrorKind::connect: return "connect";
    case ErrorKind::reset: return "reset";
    case ErrorKind::timeout: return "timeout";
    case ErrorKind::verify: return "verify";
    case ErrorKind::protocol: return "protocol";
  }
  return "?";
}

std::uint64_t Stats::error_total() const noexcept {
  return std::accumulate(errors.begin(), errors.end(), std::uint64_t{0});
}

void Stats::merge(const Stats& o) noexcept {
  messages += o.messages;
  bytes_sent += o.bytes_sent;
  bytes_received += o.bytes_received;
  connects += o.connects;
  window_connects += o.window_connects;
  for (std::size_t i = 0; i < kErrorKinds; ++i)
    errors[i] += o.errors[i];
  latency.merge(o.latency);
  live.fetch_add(o.live.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

}  // namespace duplex::loadgen
