// Histogram: exact small values, under 1% error above, percentiles by rank, merging.
#include "duplex/loadgen/histogram.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>

namespace duplex::loadgen {
namespace {

TEST(Histogram, EmptyReportsZeros) {
  const auto h = std::make_unique<Histogram>();
  EXPECT_EQ(h->count(), 0u);
  EXPECT_EQ(h->min(), 0u);
  EXPECT_EQ(h->max(), 0u);
  EXPECT_EQ(h->percentile(50), 0u);
  EXPECT_EQ(h->mean(), 0.0);
}

TEST(Histogram, SmallValuesAreExact) {
  for (std::uint64_t v = 0; v < 2 * Histogram::kSub; ++v) {
    EXPECT_EQ(Histogram::lowest_in(Histogram::index_of(v)), v);
    EXPECT_EQ(Histogram::highest_in(Histogram::index_of(v)), v);
  }
}

TEST(Histogram, EveryBucketHoldsItsValuesWithinOnePercent) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200000; ++i) {
    const std::uint64_t v = rng() >> (rng() % 64);
    const auto idx = Histogram::index_of(v);
    ASSERT_LT(idx, Histogram::kBuckets);
    const auto lo = Histogram::lowest_in(idx), hi = Histogram::highest_in(idx);
    ASSERT_LE(lo, v);
    ASSERT_GE(hi, v);
    ASSERT_LE(static_cast<double>(hi - lo), 0.01 * static_cast<double>(lo) + 0.5) << v;
  }
  EXPECT_LT(Histogram::index_of(UINT64_MAX), Histogram::kBuckets);
}

TEST(Histogram, BucketsAreContiguousAndOrdered) {
  for (std::size_t i = 0; i + 1 < Histogram::kBuckets; ++i) {
    ASSERT_EQ(Histogram::highest_in(i) + 1, Histogram::lowest_in(i + 1)) << i;
    ASSERT_EQ(Histogram::index_of(Histogram::lowest_in(i)), i);
    ASSERT_EQ(Histogram::index_of(Histogram::highest_in(i)), i);
  }
}

TEST(Histogram, PercentilesOfAUniformRangeAreWithinOnePercent) {
  auto h = std::make_unique<Histogram>();
  for (std::uint64_t v = 1; v <= 100000; ++v)
    h->record(v * 1000);
  EXPECT_EQ(h->count(), 100000u);
  EXPECT_EQ(h->min(), 1000u);
  EXPECT_EQ(h->max(), 100000000u);
  EXPECT_NEAR(h->mean(), 50000.5 * 1000, 1.0);
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9}) {
    const double want = p / 100.0 * 100000 * 1000;
    EXPECT_NEAR(static_cast<double>(h->percentile(p)), want, want * 0.01) << p;
  }
  EXPECT_EQ(h->percentile(100), 100000000u);
  EXPECT_EQ(h->percentile(0), 1000u);
}

TEST(Histogram, AnOutlierShowsOnlyInTheTail) {
  auto h = std::make_unique<Histogram>();
  for (int i = 0; i < 999; ++i)
    h->record(100);
  h->record(1'000'000);
  EXPECT_EQ(h->percentile(50), 100u);
  EXPECT_EQ(h->percentile(99.9), 100u);  // the 999th of 1000 values
  EXPECT_EQ(h->percentile(99.95), h->max());
  EXPECT_EQ(h->max(), 1'000'000u);
}

TEST(Histogram, MergingEqualsRecordingIntoOne) {
  auto a = std::make_unique<Histogram>(), b = std::make_unique<Histogram>(),
       all = std::make_unique<Histogram>();
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t v = rng() % 10'000'000;
    (i % 3 ? *a : *b).record(v);
    all->record(v);
  }
  a->merge(*b);
  EXPECT_EQ(a->count(), all->count());
  EXPECT_EQ(a->min(), all->min());
  EXPECT_EQ(a->max(), all->max());
  EXPECT_DOUBLE_EQ(a->mean(), all->mean());
  for (double p : {10.0, 50.0, 99.0, 99.9})
    EXPECT_EQ(a->percentile(p), all->percentile(p));
  a->merge(Histogram{});
  EXPECT_EQ(a->count(), all->count());
}

}  // namespace
}  // namespace duplex::loadgen
