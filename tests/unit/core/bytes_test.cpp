// Tests for core/bytes.hpp: big-endian ByteWriter/ByteReader and the char/byte views.
#include "duplex/core/bytes.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace duplex {
namespace {

Bytes bytes_of(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v)
    b.push_back(static_cast<std::byte>(x));
  return b;
}

TEST(Bytes, AsBytesAndAsCharsAreInverse) {
  const std::string s("a\0b\xff", 4);
  const ByteView b = as_bytes(s);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[1], std::byte{0});
  EXPECT_EQ(b[3], std::byte{0xff});
  EXPECT_EQ(as_chars(b), s);
  EXPECT_TRUE(as_bytes(std::string_view{}).empty());
}

TEST(ByteWriter, WritesBigEndian) {
  Bytes out;
  ByteWriter w(out);
  w.u8(0x01);
  w.u16(0x0203);
  w.u32(0x04050607);
  w.u64(0x08090a0b0c0d0e0fULL);
  EXPECT_EQ(out, bytes_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}));
}

TEST(ByteWriter, StrIsLengthThenBytes) {
  Bytes out;
  ByteWriter w(out);
  w.str("hi");
  w.str("");
  EXPECT_EQ(out, bytes_of({0, 0, 0, 2, 'h', 'i', 0, 0, 0, 0}));
}

TEST(ByteWriter, AppendsToExistingContent) {
  Bytes out = bytes_of({0xaa});
  ByteWriter w(out);
  w.raw(bytes_of({1, 2}));
  EXPECT_EQ(out, bytes_of({0xaa, 1, 2}));
}

TEST(ByteReader, RoundTripsEveryWidthAtItsExtremes) {
  Bytes buf;
  ByteWriter w(buf);
  for (int i = 0; i < 2; ++i) {
    const bool hi = i == 1;
    w.u8(hi ? std::numeric_limits<std::uint8_t>::max() : 0);
    w.u16(hi ? std::numeric_limits<std::uint16_t>::max() : 0);
    w.u32(hi ? std::numeric_limits<std::uint32_t>::max() : 0);
    w.u64(hi ? std::numeric_limits<std::uint64_t>::max() : 0);
  }
  w.str(std::string("x\0y", 3));
  ByteReader r(buf);
  for (int i = 0; i < 2; ++i) {
    const bool hi = i == 1;
    EXPECT_EQ(r.u8(), hi ? std::numeric_limits<std::uint8_t>::max() : 0);
    EXPECT_EQ(r.u16(), hi ? std::numeric_limits<std::uint16_t>::max() : 0);
    EXPECT_EQ(r.u32(), hi ? std::numeric_limits<std::uint32_t>::max() : 0u);
    EXPECT_EQ(r.u64(), hi ? std::numeric_limits<std::uint64_t>::max() : 0u);
  }
  EXPECT_EQ(r.str(), std::string_view("x\0y", 3));
  EXPECT_TRUE(r.done());
  EXPECT_FALSE(r.failed());
}

TEST(ByteReader, ReadsBigEndian) {
  const Bytes buf = bytes_of({0x12, 0x34, 0x56, 0x78});
  ByteReader r(buf);
  EXPECT_EQ(r.u32(), 0x12345678u);
  EXPECT_TRUE(r.done());
}

TEST(ByteReader, OverflowSetsFailedAndReturnsZero) {
  const Bytes buf = bytes_of({1, 2, 3});
  ByteReader r(buf);
  EXPECT_EQ(r.u32(), 0u);
  EXPECT_TRUE(r.failed());
  EXPECT_FALSE(r.done());
}

TEST(ByteReader, FailureIsSticky) {
  const Bytes buf = bytes_of({1, 2, 3});
  ByteReader r(buf);
  EXPECT_EQ(r.u32(), 0u);
  // Bytes are still there, but after a failure every read yields zero/empty.
  EXPECT_EQ(r.u8(), 0u);
  EXPECT_TRUE(r.raw(1).empty());
  EXPECT_TRUE(r.failed());
  EXPECT_FALSE(r.done());
}

TEST(ByteReader, FailedReadConsumesNothing) {
  const Bytes buf = bytes_of({1, 2, 3});
  ByteReader r(buf);
  (void)r.u64();
  EXPECT_EQ(r.remaining(), 3u);
}

TEST(ByteReader, StrWithLengthBeyondInputFails) {
  const Bytes buf = bytes_of({0, 0, 0, 5, 'a', 'b'});
  ByteReader r(buf);
  EXPECT_TRUE(r.str().empty());
  EXPECT_TRUE(r.failed());
}

TEST(ByteReader, StrWithHugeLengthFailsWithoutOverflow) {
  const Bytes buf = bytes_of({0xff, 0xff, 0xff, 0xff, 'a'});
  ByteReader r(buf);
  EXPECT_TRUE(r.str().empty());
  EXPECT_TRUE(r.failed());
}

TEST(ByteReader, RawPastEndFails) {
  const Bytes buf = bytes_of({1, 2});
  ByteReader r(buf);
  EXPECT_EQ(r.raw(2).size(), 2u);
  EXPECT_TRUE(r.done());
  EXPECT_TRUE(r.raw(0).empty());
  EXPECT_FALSE(r.failed());
  EXPECT_TRUE(r.raw(1).empty());
  EXPECT_TRUE(r.failed());
}

TEST(ByteReader, RawReturnsViewIntoInput) {
  const Bytes buf = bytes_of({1, 2, 3});
  ByteReader r(buf);
  (void)r.u8();
  const ByteView v = r.raw(2);
  EXPECT_EQ(v.data(), buf.data() + 1);
}

TEST(ByteReader, RestTakesEverythingLeft) {
  const Bytes buf = bytes_of({1, 2, 3});
  ByteReader r(buf);
  (void)r.u8();
  EXPECT_EQ(r.rest().size(), 2u);
  EXPECT_TRUE(r.done());
  EXPECT_TRUE(r.rest().empty());
  EXPECT_TRUE(r.done());
}

TEST(ByteReader, DoneOnlyWhenAllConsumed) {
  const Bytes buf = bytes_of({1, 2});
  ByteReader r(buf);
  EXPECT_FALSE(r.done());
  (void)r.u8();
  EXPECT_FALSE(r.done());
  EXPECT_EQ(r.remaining(), 1u);
  (void)r.u8();
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(ByteReader, EmptyInputIsDone) {
  ByteReader r(ByteView{});
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.u8(), 0u);
  EXPECT_TRUE(r.failed());
}

}  // namespace
}  // namespace duplex
