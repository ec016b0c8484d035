// Histogram: latencies in log-bucketed counters (HdrHistogram's idea: linear sub-buckets inside
// each power-of-two range, under 1% error), mergeable across threads. Pure; no I/O.
#pragma once

#include <array>
#include <cstdint>

namespace duplex::loadgen {

class Histogram {
 public:
  /// Sub-buckets per power of two: 128, so a value is known to within 1/128 (0.8%).
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSub = std::uint64_t{1} << kSubBits;
  /// Values below 2*kSub are kept exactly; each later power of two adds kSub buckets.
  static constexpr std::size_t kBuckets = (64 - kSubBits + 1) * kSub;

  /// Counts one value (any unit; the engine records nanoseconds).
  void record(std::uint64_t v) noexcept;
  /// Adds every count of `other` (the per-thread histograms become one).
  void merge(const Histogram& other) noexcept;

  std::uint64_t count() const noexcept { return count_; }
  /// Exact smallest and largest values recorded (0 when empty).
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept;
  /// The value below which `p` percent of the values fall (p in 0..100): the middle of the
  /// bucket holding that rank, kept within [min, max]; p0 is min() and p100 max() exactly.
  /// 0 when empty.
  std::uint64_t percentile(double p) const noexcept;

  /// The bucket a value falls in, and the smallest and largest values of a bucket (for tests).
  static std::size_t index_of(std::uint64_t v) noexcept;
  static std::uint64_t lowest_in(std::size_t index) noexcept;
  static std::uint64_t highest_in(std::size_t index) noexcept;

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  // A long double would lose nothing either; 2^64 ns is 584 years, so a sum of doubles suffices.
  double sum_ = 0;
};

}  // namespace duplex::loadgen
