// Tests for core/result.hpp: Result<T> holds a value or an error_code, never both.
#include "duplex/core/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "duplex/core/errors.hpp"

namespace duplex {
namespace {

TEST(Result, HoldsValue) {
  Result<int> r(42);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
  EXPECT_FALSE(r.error());
}

TEST(Result, HoldsErrorCode) {
  Result<int> r(std::make_error_code(std::errc::timed_out));
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error(), std::errc::timed_out);
}

TEST(Result, ConvertsFromDuplexErrc) {
  Result<std::string> r(errc::bad_message);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), errc::bad_message);
  EXPECT_EQ(&r.error().category(), &duplex_category());
}

TEST(Result, ValueOfErrorThrowsBadVariantAccess) {
  Result<int> r(errc::internal);
  EXPECT_THROW((void)r.value(), std::bad_variant_access);
}

TEST(Result, ArrowAndMutation) {
  Result<std::string> r(std::string("abc"));
  EXPECT_EQ(r->size(), 3u);
  r->push_back('d');
  EXPECT_EQ(*r, "abcd");
}

TEST(Result, MovesValueOut) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

TEST(Result, ReturnedFromFunction) {
  auto f = [](bool good) -> Result<int> {
    if (!good) return errc::limit_exceeded;
    return 1;
  };
  EXPECT_EQ(f(true).value(), 1);
  EXPECT_EQ(f(false).error(), errc::limit_exceeded);
}

}  // namespace
}  // namespace duplex
