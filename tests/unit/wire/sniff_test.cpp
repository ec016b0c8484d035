// Tests for wire/sniff: the first byte decides raw, framed or TLS, for every byte value.
#include "duplex/wire/sniff.hpp"

#include <gtest/gtest.h>

#include <string_view>

#include "duplex/wire/frame.hpp"

namespace duplex::wire {
namespace {

TEST(Sniff, PrefaceIsFramed) {
  EXPECT_EQ(sniff(kPreface[0]), Opening::framed);
}

TEST(Sniff, TlsHandshakeRecordIsTls) {
  // A TLS 1.x ClientHello record starts 16 03 0x (RFC 8446 §5.1).
  EXPECT_EQ(sniff(std::byte{0x16}), Opening::tls);
}

TEST(Sniff, EveryOtherByteIsRaw) {
  int raw = 0;
  for (int b = 0; b < 256; ++b) {
    if (b == 0x00 || b == 0x16) continue;
    EXPECT_EQ(sniff(static_cast<std::byte>(b)), Opening::raw) << b;
    ++raw;
  }
  EXPECT_EQ(raw, 254);
}

TEST(Sniff, TypedTextIsRaw) {
  for (char c : std::string_view("hello\r\n\tWORLD 0123 ~!")) {
    EXPECT_EQ(sniff(static_cast<std::byte>(c)), Opening::raw) << c;
  }
}

TEST(Sniff, NamesForLogs) {
  EXPECT_STREQ(opening_name(Opening::raw), "raw");
  EXPECT_STREQ(opening_name(Opening::framed), "framed");
  EXPECT_STREQ(opening_name(Opening::tls), "tls");
}

}  // namespace
}  // namespace duplex::wire
