// ByteBuffer: reads and writes keep their order; space is reused before the storage grows.
#include <gtest/gtest.h>

#include <cstring>

#include "duplex/core/byte_buffer.hpp"

namespace duplex {
namespace {

void put(ByteBuffer& b, std::string_view s) {
  auto space = b.prepare(s.size());
  ASSERT_GE(space.size(), s.size());
  std::memcpy(space.data(), s.data(), s.size());
  b.commit(s.size());
}

TEST(ByteBuffer, KeepsOrderAcrossPartialConsumes) {
  ByteBuffer b;
  put(b, "hello ");
  put(b, "world");
  EXPECT_EQ(as_chars(b.readable()), "hello world");
  b.consume(6);
  EXPECT_EQ(as_chars(b.readable()), "world");
  b.consume(5);
  EXPECT_TRUE(b.empty());
}

TEST(ByteBuffer, CompactsBeforeGrowing) {
  ByteBuffer b;
  put(b, std::string(100, 'a'));
  const auto cap = b.capacity();
  b.consume(90);
  put(b, std::string(cap - 20, 'b'));  // fits only once the 90 consumed bytes are reclaimed
  EXPECT_EQ(b.capacity(), cap);
  EXPECT_EQ(b.readable().size(), 10 + cap - 20);
  EXPECT_EQ(as_chars(b.readable()).substr(0, 10), std::string(10, 'a'));
}

TEST(ByteBuffer, ReleaseAndAdoptStorage) {
  ByteBuffer b;
  b.adopt_storage(Bytes(4096));
  EXPECT_EQ(b.capacity(), 4096u);
  put(b, "x");
  b.consume(1);
  Bytes storage = b.release_storage();
  EXPECT_EQ(storage.size(), 4096u);
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_TRUE(b.readable().empty());
}

}  // namespace
}  // namespace duplex
