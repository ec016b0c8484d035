// Histogram: index arithmetic and percentiles over the bucket counts.
#include "duplex/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace duplex::loadgen {

// Below 2*kSub a value is its own bucket. Above, with its top bit at position k, the value is
// shifted right by k - kSubBits so that kSub..2*kSub-1 remains: kSub linear steps per power of
// two, each 2^shift wide.
std::size_t Histogram::index_of(std::uint64_t v) noexcept {
  if (v < 2 * kSub) return static_cast<std::size_t>(v);
  const auto shift = static_cast<int>(std::bit_width(v)) - 1 - kSubBits;
  return static_cast<std::size_t>(shift + 1) * kSub + static_cast<std::size_t>((v >> shift) - kSub);
}

std::uint64_t Histogram::lowest_in(std::size_t index) noexcept {
  if (index < 2 * kSub) return index;
  const auto shift = index / kSub - 1;
  return (kSub + index % kSub) << shift;
}

std::uint64_t Histogram::highest_in(std::size_t index) noexcept {
  if (index < 2 * kSub) return index;
  const auto shift = index / kSub - 1;
  return lowest_in(index) + ((std::uint64_t{1} << shift) - 1);
}

void Histogram::record(std::uint64_t v) noexcept {
  ++counts_[index_of(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  sum_ += static_cast<double>(v);
}

void Histogram::merge(const Histogram& other) noexcept {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < kBuckets; ++i)
    counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double Histogram::mean() const noexcept {
  return count_ ? sum_ / static_cast<double>(count_) : 0.0;
}

std::uint64_t Histogram::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  if (p <= 0) return min();
  if (p >= 100) return max_;
  // The rank of the value asked for, 1-based: p50 of 1..100 is the 50th value. The epsilon keeps
  // 99.9% of 1000 at 999 (0.999 * 1000 is 999.0000000000001 in doubles).
  auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_) - 1e-9));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const auto lo = lowest_in(i);
      const auto mid = lo + (highest_in(i) - lo) / 2;
      return std::clamp(mid, min(), max_);
    }
  }
  return max_;
}

}  // namespace duplex::loadgen
