// Tests for client/escape.hpp: ssh's escapes are recognised only at a line start, across reads.
#include "duplex/client/escape.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace duplex::client {
namespace {

std::string text(const Bytes& b) {
  return std::string(as_chars(b));
}

TEST(EscapeFilter, TildeDotAtTheStartDisconnects) {
  EscapeFilter f;
  const auto out = f.feed(as_bytes("~.rest"));
  EXPECT_TRUE(out.disconnect);
  EXPECT_EQ(text(out.forward), "") << "nothing after ~. is sent";
}

TEST(EscapeFilter, TildeDotAfterCrOrLfDisconnectsAndKeepsWhatCameBefore) {
  for (std::string_view eol : {"\r", "\n"}) {
    EscapeFilter f;
    const auto out = f.feed(as_bytes(std::string("sleep 100") + std::string(eol) + "~."));
    EXPECT_TRUE(out.disconnect) << "after " << int(eol[0]);
    EXPECT_EQ(text(out.forward), std::string("sleep 100") + std::string(eol));
  }
}

TEST(EscapeFilter, TildeInsideALineIsJustATilde) {
  EscapeFilter f;
  const auto out = f.feed(as_bytes("cd ~.; ls ~/x\r"));
  EXPECT_FALSE(out.disconnect);
  EXPECT_EQ(text(out.forward), "cd ~.; ls ~/x\r");
}

TEST(EscapeFilter, DoubleTildeSendsOne) {
  EscapeFilter f;
  const auto out = f.feed(as_bytes("~~.\r"));
  EXPECT_FALSE(out.disconnect) << "~~ is a literal ~; the . after it is text";
  EXPECT_EQ(text(out.forward), "~.\r");
}

TEST(EscapeFilter, TildeAndAnyOtherByteAreBothSent) {
  EscapeFilter f;
  auto out = f.feed(as_bytes("~x"));
  EXPECT_EQ(text(out.forward), "~x");
  out = f.feed(as_bytes("\r~\r"));
  EXPECT_EQ(text(out.forward), "\r~\r");
  out = f.feed(as_bytes("~."));  // the CR passed through above, so this is a line start again
  EXPECT_TRUE(out.disconnect);
}

TEST(EscapeFilter, ATildeEndingOneReadWaitsForTheNext) {
  EscapeFilter f;
  auto out = f.feed(as_bytes("ls\r~"));
  EXPECT_EQ(text(out.forward), "ls\r") << "the ~ is held";
  EXPECT_FALSE(out.disconnect);
  out = f.feed(as_bytes("."));
  EXPECT_TRUE(out.disconnect);

  EscapeFilter g;
  out = g.feed(as_bytes("~"));
  EXPECT_EQ(text(out.forward), "");
  out = g.feed(as_bytes("a"));
  EXPECT_EQ(text(out.forward), "~a");
}

TEST(EscapeFilter, QuestionMarkAsksForHelpAndSendsNothing) {
  EscapeFilter f;
  const auto out = f.feed(as_bytes("~?~?~."));
  EXPECT_EQ(out.help, 2);
  EXPECT_TRUE(out.disconnect) << "after the help a new escape may follow at once";
  EXPECT_EQ(text(out.forward), "");
  EXPECT_NE(EscapeFilter::help_text().find("~."), std::string_view::npos);
  EXPECT_NE(EscapeFilter::help_text().find("\r\n"), std::string_view::npos) << "raw terminal";
}

TEST(EscapeFilter, BinaryBytesPassUnchanged) {
  EscapeFilter f;
  std::string all;
  for (int i = 0; i < 256; ++i)
    if (i != '~') all += static_cast<char>(i);
  const auto out = f.feed(as_bytes(all));
  EXPECT_FALSE(out.disconnect);
  EXPECT_EQ(text(out.forward), all);
}

}  // namespace
}  // namespace duplex::client
