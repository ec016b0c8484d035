// Tests for core/errors.hpp: the duplex error category, its messages and the wire numbering.
#include "duplex/core/errors.hpp"

#include <gtest/gtest.h>

#include <iterator>
#include <set>
#include <string>

namespace duplex {
namespace {

constexpr errc kAll[] = {
    errc::bad_url,
    errc::bad_preface,
    errc::frame_too_large,
    errc::bad_frame,
    errc::unknown_message,
    errc::bad_message,
    errc::unexpected_message,
    errc::version_unsupported,
    errc::too_many_connections,
    errc::idle_timeout,
    errc::shutting_down,
    errc::service_disabled,
    errc::auth_failed,
    errc::auth_required,
    errc::limit_exceeded,
    errc::tls_required,
    errc::insecure_channel,
    errc::penalised,
    errc::exec_failed,
    errc::internal,
};

TEST(Errc, CategoryName) {
  EXPECT_STREQ(duplex_category().name(), "duplex");
}

TEST(Errc, ImplicitlyBecomesErrorCode) {
  const std::error_code ec = errc::auth_failed;
  EXPECT_EQ(ec.value(), 34);
  EXPECT_EQ(&ec.category(), &duplex_category());
  EXPECT_EQ(ec, errc::auth_failed);
  EXPECT_NE(ec, errc::auth_required);
  EXPECT_TRUE(ec);
}

TEST(Errc, EveryCodeHasItsOwnMessage) {
  std::set<std::string> seen;
  for (errc e : kAll) {
    const std::string m = make_error_code(e).message();
    EXPECT_FALSE(m.empty());
    EXPECT_EQ(m.rfind("unknown duplex error", 0), std::string::npos) << m;
    EXPECT_TRUE(seen.insert(m).second) << "duplicate message: " << m;
  }
}

TEST(Errc, SpecificMessages) {
  EXPECT_EQ(make_error_code(errc::bad_message).message(), "malformed message");
  EXPECT_EQ(make_error_code(errc::auth_failed).message(), "authentication failed");
  EXPECT_EQ(make_error_code(errc::frame_too_large).message(),
            "frame larger than the maximum frame size");
}

TEST(Errc, UnknownValueHasFallbackMessage) {
  const std::error_code ec(12345, duplex_category());
  EXPECT_EQ(ec.message(), "unknown duplex error 12345");
}

// The numbers are on the wire (ERROR frames, docs/PROTOCOL.md): this test pins them.
TEST(Errc, WireNumbersAreStable) {
  EXPECT_EQ(static_cast<int>(errc::bad_url), 1);
  EXPECT_EQ(static_cast<int>(errc::bad_preface), 10);
  EXPECT_EQ(static_cast<int>(errc::frame_too_large), 11);
  EXPECT_EQ(static_cast<int>(errc::bad_frame), 12);
  EXPECT_EQ(static_cast<int>(errc::unknown_message), 13);
  EXPECT_EQ(static_cast<int>(errc::bad_message), 14);
  EXPECT_EQ(static_cast<int>(errc::unexpected_message), 15);
  EXPECT_EQ(static_cast<int>(errc::version_unsupported), 16);
  EXPECT_EQ(static_cast<int>(errc::too_many_connections), 30);
  EXPECT_EQ(static_cast<int>(errc::idle_timeout), 31);
  EXPECT_EQ(static_cast<int>(errc::shutting_down), 32);
  EXPECT_EQ(static_cast<int>(errc::service_disabled), 33);
  EXPECT_EQ(static_cast<int>(errc::auth_failed), 34);
  EXPECT_EQ(static_cast<int>(errc::auth_required), 35);
  EXPECT_EQ(static_cast<int>(errc::limit_exceeded), 36);
  EXPECT_EQ(static_cast<int>(errc::tls_required), 37);
  EXPECT_EQ(static_cast<int>(errc::insecure_channel), 38);
  EXPECT_EQ(static_cast<int>(errc::penalised), 39);
  EXPECT_EQ(static_cast<int>(errc::exec_failed), 50);
  EXPECT_EQ(static_cast<int>(errc::internal), 99);
}

TEST(Errc, IsKnownErrcMatchesTheEnum) {
  std::set<int> known;
  for (errc e : kAll) {
    known.insert(static_cast<int>(e));
    EXPECT_TRUE(is_known_errc(static_cast<std::uint16_t>(e)));
  }
  int count = 0;
  for (int v = 0; v <= 0xffff; ++v) {
    const bool k = is_known_errc(static_cast<std::uint16_t>(v));
    EXPECT_EQ(k, known.count(v) == 1) << v;
    count += k ? 1 : 0;
  }
  EXPECT_EQ(count, static_cast<int>(std::size(kAll)));
}

TEST(Errc, ZeroIsNotAnErrc) {
  EXPECT_FALSE(is_known_errc(0));
}

}  // namespace
}  // namespace duplex
