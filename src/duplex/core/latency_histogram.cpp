// LatencyHistogram implementation.
#include "duplex/core/latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace duplex {
namespace {

// A shard per thread, chosen once: threads started one after another (the workers) get
// distinct shards, so their adds never contend for a cache line.
std::size_t thread_shard(std::size_t shards) noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed);
  return mine % shards;
}

}  // namespace

LatencyHistogram::LatencyHistogram(std::initializer_list<double> bounds_seconds)
    : bounds_(bounds_seconds) {
  bounds_ns_.reserve(bounds_.size());
  for (double b : bounds_)
    bounds_ns_.push_back(static_cast<std::int64_t>(std::llround(b * 1e9)));
  for (auto& s : shards_) {
    s.counts = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
    for (std::size_t i = 0; i <= bounds_.size(); ++i)
      s.counts[i].store(0, std::memory_order_relaxed);
  }
}

void LatencyHistogram::observe(std::chrono::nanoseconds d) noexcept {
  const std::int64_t ns = std::max<std::int64_t>(d.count(), 0);
  // `le`: a duration equal to a bound belongs to that bucket.
  const auto it = std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns);
  const auto bucket = static_cast<std::size_t>(it - bounds_ns_.begin());
  Shard& s = shards_[thread_shard(kShards)];
  s.counts[bucket].fetch_add(1, std::memory_order_relaxed);
  s.sum_ns.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const {
  Snapshot out;
  out.bounds = bounds_;
  out.buckets.assign(bounds_.size() + 1, 0);
  std::uint64_t sum_ns = 0;
  for (const auto& s : shards_) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i)
      out.buckets[i] += s.counts[i].load(std::memory_order_relaxed);
    sum_ns += s.sum_ns.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 1; i < out.buckets.size(); ++i)
    out.buckets[i] += out.buckets[i - 1];
  out.sum_seconds = static_cast<double>(sum_ns) / 1e9;
  return out;
}

}  // namespace duplex
