// LatencyHistogram: durations counted in fixed buckets (Prometheus's `le` bounds), cheap enough to
// record on every message. No locks: each thread adds to its own shard, a scrape sums the shards.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

namespace duplex {

class LatencyHistogram {
 public:
  /// `bounds_seconds`: the buckets' upper bounds, ascending (a last +Inf bucket is implied).
  explicit LatencyHistogram(std::initializer_list<double> bounds_seconds);
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  /// Counts one duration (a negative one as zero). Any thread; a relaxed add on the calling
  /// thread's own shard, whose cache line no other thread writes while there are fewer threads
  /// than shards.
  void observe(std::chrono::nanoseconds d) noexcept;

  struct Snapshot {
    std::vector<double> bounds;          // seconds, ascending, without +Inf
    std::vector<std::uint64_t> buckets;  // cumulative counts: bounds.size() + 1 (the last: +Inf)
    double sum_seconds = 0;
    std::uint64_t count() const noexcept { return buckets.empty() ? 0 : buckets.back(); }
  };
  /// The counts so far, summed over the shards. Any thread. An observation racing with it may
  /// be in the sum and not yet in a bucket (or the reverse): never lost, seen by the next one.
  Snapshot snapshot() const;

 private:
  static constexpr std::size_t kShards = 16;
  struct alignas(64) Shard {
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts;  // per bucket, not cumulative
    std::atomic<std::uint64_t> sum_ns{0};
  };
  std::vector<double> bounds_;
  std::vector<std::int64_t> bounds_ns_;
  Shard shards_[kShards];
};

}  // namespace duplex
