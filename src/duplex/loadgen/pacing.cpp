// Pacing: the due times, computed from k (never accumulated, so no rounding drift).
#include "duplex/loadgen/pacing.hpp"

#include <algorithm>

namespace duplex::loadgen {

namespace {
std::chrono::nanoseconds seconds_ns(double s) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(s * 1e9));
}
}  // namespace

Pacer::Pacer(Clock::time_point start, double rate, std::size_t connections,
             std::size_t index) noexcept {
  rate = std::max(rate, 1e-9);
  const auto conns = static_cast<double>(std::max<std::size_t>(connections, 1));
  interval_ = seconds_ns(conns / rate);
  first_ = start + seconds_ns(static_cast<double>(index) / rate);
}

Pacer::Clock::time_point Pacer::due(std::uint64_t k) const noexcept {
  // k * interval in nanoseconds fits 64 bits for 292 years of sends.
  return first_ + std::chrono::nanoseconds(static_cast<std::int64_t>(k) * interval_.count());
}

}  // namespace duplex::loadgen
