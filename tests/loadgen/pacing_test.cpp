// Pacer: the connections' due times together make one even schedule at the asked rate.
#include "duplex/loadgen/pacing.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace duplex::loadgen {
namespace {

using namespace std::chrono_literals;

TEST(Pacer, OneConnectionSendsAtTheRate) {
  const auto t0 = Pacer::Clock::time_point{} + 1s;
  Pacer p(t0, 1000.0, 1, 0);
  EXPECT_EQ(p.interval(), 1ms);
  EXPECT_EQ(p.next(), t0);
  EXPECT_EQ(p.next(), t0 + 1ms);
  EXPECT_EQ(p.due(1000), t0 + 1s);
}

TEST(Pacer, ConnectionsTogetherSpreadTheRateEvenly) {
  const auto t0 = Pacer::Clock::time_point{} + 1s;
  std::vector<Pacer::Clock::time_point> all;
  for (std::size_t c = 0; c < 4; ++c) {
    Pacer p(t0, 1000.0, 4, c);
    EXPECT_EQ(p.interval(), 4ms);
    for (int k = 0; k < 250; ++k)
      all.push_back(p.next());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), 1000u);
  for (std::size_t i = 0; i < all.size(); ++i)
    EXPECT_EQ(all[i], t0 + i * 1ms) << i;
}

}  // namespace
}  // namespace duplex::loadgen
