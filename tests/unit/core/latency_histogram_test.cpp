// LatencyHistogram: bucket edges (`le` is inclusive), cumulative counts, the sum, and no count
// lost when many threads record at once.
#include "duplex/core/latency_histogram.hpp"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace duplex {
namespace {

using namespace std::chrono_literals;

TEST(LatencyHistogram, CountsEachDurationInTheFirstBucketThatHoldsIt) {
  LatencyHistogram h({0.001, 0.01, 0.1});
  h.observe(0ns);
  h.observe(1ms);  // on the bound: that bucket (le)
  h.observe(1001us);
  h.observe(50ms);
  h.observe(2s);    // over every bound: +Inf only
  h.observe(-5ms);  // a clock step backwards counts as zero
  const auto s = h.snapshot();
  EXPECT_EQ(s.bounds, (std::vector<double>{0.001, 0.01, 0.1}));
  EXPECT_EQ(s.buckets, (std::vector<std::uint64_t>{3, 4, 5, 6}));
  EXPECT_EQ(s.count(), 6u);
  EXPECT_NEAR(s.sum_seconds, 0.001 + 0.001001 + 0.05 + 2, 1e-9);
}

TEST(LatencyHistogram, EmptyHasZeroCounts) {
  LatencyHistogram h({1});
  const auto s = h.snapshot();
  EXPECT_EQ(s.buckets, (std::vector<std::uint64_t>{0, 0}));
  EXPECT_EQ(s.sum_seconds, 0);
}

// More threads than shards, so that some share one: every observation is still counted.
TEST(LatencyHistogram, ManyThreadsLoseNothing) {
  LatencyHistogram h({0.001});
  constexpr int kThreads = 24, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&h, t] {
      for (int i = 0; i < kEach; ++i)
        h.observe(t % 2 == 0 ? 10us : 10ms);
    });
  for (auto& t : threads)
    t.join();
  const auto s = h.snapshot();
  EXPECT_EQ(s.buckets[0], static_cast<std::uint64_t>(kThreads / 2 * kEach));
  EXPECT_EQ(s.count(), static_cast<std::uint64_t>(kThreads * kEach));
}

}  // namespace
}  // namespace duplex
