// Payload: printable mixed-case bytes, reproducible; verification tells upper from echo.
#include "duplex/loadgen/payload.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

namespace duplex::loadgen {
namespace {

TEST(Payload, IsPrintableMixedCaseOfTheAskedSize) {
  for (std::size_t n : {1u, 7u, 64u, 16384u}) {
    const auto p = make_payload(n, 3);
    ASSERT_EQ(p.size(), n);
    EXPECT_TRUE(std::all_of(p.begin(), p.end(), [](unsigned char c) { return std::isprint(c); }));
  }
  const auto p = make_payload(64, 0);
  EXPECT_TRUE(std::any_of(p.begin(), p.end(), [](unsigned char c) { return std::islower(c); }));
  EXPECT_TRUE(std::any_of(p.begin(), p.end(), [](unsigned char c) { return std::isupper(c); }));
}

TEST(Payload, IsReproducibleAndDiffersBySeed) {
  EXPECT_EQ(make_payload(64, 5), make_payload(64, 5));
  EXPECT_NE(make_payload(64, 5), make_payload(64, 6));
}

TEST(Payload, UpperChangesOnlyAsciiLetters) {
  EXPECT_EQ(upper_of("abc-XYZ_09.z\xc3\xa9"), "ABC-XYZ_09.Z\xc3\xa9");
}

TEST(Payload, VerifyTellsAnUpperServerFromAnEcho) {
  const auto p = make_payload(64, 1);
  const auto up = expected_reply(p, Verify::upper);
  const auto echo = expected_reply(p, Verify::echo);
  EXPECT_TRUE(reply_matches(Verify::upper, up, upper_of(p)));
  EXPECT_FALSE(reply_matches(Verify::upper, up, p));
  EXPECT_TRUE(reply_matches(Verify::echo, echo, p));
  EXPECT_FALSE(reply_matches(Verify::echo, echo, upper_of(p)));
  EXPECT_TRUE(reply_matches(Verify::none, expected_reply(p, Verify::none), "anything"));
  // One byte off is caught.
  auto off = upper_of(p);
  off[40] = static_cast<char>(off[40] ^ 1);
  EXPECT_FALSE(reply_matches(Verify::upper, up, off));
}

}  // namespace
}  // namespace duplex::loadgen
