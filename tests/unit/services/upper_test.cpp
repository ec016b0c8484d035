// The upper transform must equal Python's bytes.upper(): ASCII a-z mapped, every other byte kept.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "duplex/services/upper.hpp"

namespace duplex::services {
namespace {

std::string upper(std::string s) {
  to_upper_in_place(std::span(s.data(), s.size()));
  return s;
}

TEST(Upper, MapsExactlyAsciiLowercaseForEveryByteValue) {
  for (int v = 0; v < 256; ++v) {
    const char c = static_cast<char>(v);
    const char want = (v >= 'a' && v <= 'z') ? static_cast<char>(v - 32) : c;
    EXPECT_EQ(upper(std::string(1, c)), std::string(1, want)) << "byte " << v;
  }
}

TEST(Upper, LeavesUtf8Unchanged) {
  EXPECT_EQ(upper("你好 wörld ÿ"), "你好 WöRLD ÿ");
}

TEST(Upper, MatchesScalarReferenceAtEveryLengthAndOffset) {
  // Lengths around the vector widths, and unaligned starts, to cover loop prologue and epilogue.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t len = 0; len < 300; ++len) {
    std::string s(len + 3, '\0');
    for (auto& c : s)
      c = static_cast<char>(byte(rng));
    std::string ref = s;
    for (std::size_t i = 3; i < ref.size(); ++i)
      if (ref[i] >= 'a' && ref[i] <= 'z') ref[i] = static_cast<char>(ref[i] - 32);
    to_upper_in_place(std::span(s.data() + 3, len));
    ASSERT_EQ(s, ref) << "length " << len;
  }
}

TEST(Upper, EmptyInputIsFine) {
  EXPECT_EQ(upper(""), "");
}

}  // namespace
}  // namespace duplex::services
