// PenaltyBox with explicit time points: the window, the threshold, the doubling penalty and its
// cap, successes, and the bound on what it tracks.
#include "duplex/services/penalty_box.hpp"

#include <gtest/gtest.h>

#include <string>

namespace duplex::services {
namespace {

using namespace std::chrono_literals;
using Clock = PenaltyBox::Clock;

PenaltySettings settings(std::size_t max_failures = 3) {
  PenaltySettings s;
  s.max_failures = max_failures;
  s.window = 60s;
  s.penalty = 30s;
  s.max_penalty = 100s;
  return s;
}

const Clock::time_point t0 = Clock::time_point() + 1000h;

TEST(PenaltyBox, TheNthFailureInTheWindowBoxesTheAddressForThePenalty) {
  PenaltyBox box(settings());
  EXPECT_FALSE(box.record_failure("10.0.0.1", t0));
  EXPECT_FALSE(box.record_failure("10.0.0.1", t0 + 1s));
  EXPECT_EQ(box.refused_for("10.0.0.1", t0 + 1s), 0ms);
  EXPECT_TRUE(box.record_failure("10.0.0.1", t0 + 2s));
  EXPECT_EQ(box.refused_for("10.0.0.1", t0 + 2s), 30s);
  EXPECT_EQ(box.refused_for("10.0.0.1", t0 + 12s), 20s);
  EXPECT_EQ(box.refused_for("10.0.0.1", t0 + 32s), 0ms) << "the penalty ends";
  EXPECT_EQ(box.refused_for("10.0.0.2", t0 + 2s), 0ms) << "other addresses are not touched";
}

TEST(PenaltyBox, FailuresOutsideTheWindowDoNotAddUp) {
  PenaltyBox box(settings());
  EXPECT_FALSE(box.record_failure("a", t0));
  EXPECT_FALSE(box.record_failure("a", t0 + 40s));
  EXPECT_FALSE(box.record_failure("a", t0 + 101s)) << "the window restarted at +101 s";
  EXPECT_FALSE(box.record_failure("a", t0 + 102s));
  EXPECT_TRUE(box.record_failure("a", t0 + 103s));
}

TEST(PenaltyBox, APenaltyDoublesWhileTheAddressKeepsFailingUpToTheCap) {
  PenaltyBox box(settings(1));
  auto t = t0;
  std::chrono::milliseconds want[] = {30s, 60s, 100s, 100s};
  for (auto w : want) {
    EXPECT_TRUE(box.record_failure("a", t));
    EXPECT_EQ(box.refused_for("a", t), w);
    t += w + 1s;  // fails again right after the penalty
  }
  // Quiet for long after its last penalty: back to the first penalty.
  t += 1h;
  EXPECT_TRUE(box.record_failure("a", t));
  EXPECT_EQ(box.refused_for("a", t), 30s);
}

TEST(PenaltyBox, ASuccessClearsFailuresButNotARunningPenalty) {
  PenaltyBox box(settings());
  box.record_failure("a", t0);
  box.record_failure("a", t0);
  box.record_success("a");
  EXPECT_FALSE(box.record_failure("a", t0 + 1s)) << "counting starts again";
  EXPECT_FALSE(box.record_failure("a", t0 + 1s));
  EXPECT_TRUE(box.record_failure("a", t0 + 1s));
  box.record_success("a");
  EXPECT_GT(box.refused_for("a", t0 + 2s).count(), 0);
}

TEST(PenaltyBox, ZeroMaxFailuresNeverPenalises) {
  PenaltyBox box(settings(0));
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(box.record_failure("a", t0));
  EXPECT_EQ(box.refused_for("a", t0), 0ms);
  EXPECT_EQ(box.tracked(), 0u);
}

TEST(PenaltyBox, ConfigureChangesTheRules) {
  PenaltyBox box;
  box.configure(settings(1));
  EXPECT_TRUE(box.record_failure("a", t0));
}

TEST(PenaltyBox, TrackedAddressesAreBoundedAndTheOldestGoFirst) {
  PenaltyBox box(settings(2));
  box.record_failure("first", t0);
  auto t = t0 + 1s;
  for (std::size_t i = 0; i < PenaltyBox::kMaxTracked; ++i)
    box.record_failure("10." + std::to_string(i), t);
  EXPECT_EQ(box.tracked(), PenaltyBox::kMaxTracked);
  // "first" was forgotten to make room: its next failure is its first again.
  EXPECT_FALSE(box.record_failure("first", t + 1s));
  EXPECT_EQ(box.tracked(), PenaltyBox::kMaxTracked);
}

}  // namespace
}  // namespace duplex::services
