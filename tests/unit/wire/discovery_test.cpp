// Tests for wire/discovery.hpp: exact layouts (docs/PROTOCOL.md), round trips, strict rejection.
#include "duplex/wire/discovery.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "duplex/core/errors.hpp"

namespace duplex::wire {
namespace {

Bytes bytes(std::string_view s) {
  const ByteView v = as_bytes(s);
  return {v.begin(), v.end()};
}

TEST(Discovery, ProbeLayoutIsExact) {
  const Bytes b = encode_probe({0x0102030405060708ull});
  EXPECT_EQ(b, bytes(std::string("\0DPX?\x01\x01\x02\x03\x04\x05\x06\x07\x08", 14)));
  EXPECT_EQ(b.size(), kDiscoveryHeaderSize);
}

TEST(Discovery, ReplyLayoutIsExact) {
  const Bytes b = encode_reply({0xfffffffffffffffeull, R"({"pid":1})"});
  EXPECT_EQ(b, bytes(std::string("\0DPX!\x01\xff\xff\xff\xff\xff\xff\xff\xfe{\"pid\":1}", 23)));
}

TEST(Discovery, RoundTrips) {
  for (std::uint64_t nonce : {0ull, 1ull, 0x8000000000000000ull, ~0ull}) {
    const auto p = decode_probe(encode_probe({nonce}));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->nonce, nonce);
    const DiscoveryReply reply{nonce, R"({"name":"h","services":["upper"]})"};
    const auto r = decode_reply(encode_reply(reply));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, reply);
  }
}

TEST(Discovery, IsDiscoveryLooksAtThePrefixOnly) {
  EXPECT_TRUE(is_discovery(encode_probe({7})));
  EXPECT_TRUE(is_discovery(encode_reply({7, "{}"})));
  EXPECT_TRUE(is_discovery(bytes(std::string("\0DPX", 4))));
  EXPECT_TRUE(is_discovery(bytes(std::string("\0DPXgarbage", 11))));
  EXPECT_FALSE(is_discovery(bytes(std::string("\0DP", 3))));
  EXPECT_FALSE(is_discovery(bytes("")));
  EXPECT_FALSE(is_discovery(bytes("DPX?")));
  EXPECT_FALSE(is_discovery(bytes(std::string("\0dpx", 4))));
  EXPECT_FALSE(is_discovery(bytes("hello")));
}

TEST(Discovery, ProbeIsRejectedUnlessExact) {
  Bytes good = encode_probe({42});
  ASSERT_TRUE(decode_probe(good).ok());

  Bytes longer = good;
  longer.push_back(std::byte{0});
  EXPECT_EQ(decode_probe(longer).error(), errc::bad_message);

  for (std::size_t n = 0; n < good.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_EQ(decode_probe(ByteView(good).first(n)).error(), errc::bad_message);
  }
  for (std::size_t i : {0u, 1u, 2u, 3u, 4u, 5u}) {  // prefix, kind, version: each byte matters
    SCOPED_TRACE(i);
    Bytes bad = good;
    bad[i] ^= std::byte{0x20};
    EXPECT_EQ(decode_probe(bad).error(), errc::bad_message);
  }
  EXPECT_EQ(decode_probe(encode_reply({42, "{}"})).error(), errc::bad_message);
}

TEST(Discovery, ReplyIsRejectedWithoutJsonOrWithWrongHeader) {
  Bytes good = encode_reply({9, "{}"});
  ASSERT_TRUE(decode_reply(good).ok());
  EXPECT_EQ(decode_reply(ByteView(good).first(kDiscoveryHeaderSize)).error(), errc::bad_message);
  EXPECT_EQ(decode_reply(encode_probe({9})).error(), errc::bad_message);
  Bytes v2 = good;
  v2[5] = std::byte{2};
  EXPECT_EQ(decode_reply(v2).error(), errc::bad_message);
  for (std::size_t n = 0; n < kDiscoveryHeaderSize; ++n)
    EXPECT_EQ(decode_reply(ByteView(good).first(n)).error(), errc::bad_message);
}

TEST(Discovery, ReplyJsonIsOpaqueBytes) {
  const std::string json("{\"name\":\"\xc3\xa9\0x\"}", 14);  // NUL and UTF-8 pass through as-is
  const auto r = decode_reply(encode_reply({1, json}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->json, json);
}

}  // namespace
}  // namespace duplex::wire
