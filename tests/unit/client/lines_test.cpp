// LineSplitter: lines cut anywhere across chunks, blank lines, CR with and without --raw, the
// bound.
#include "duplex/client/lines.hpp"

#include <gtest/gtest.h>

#include "duplex/client/text.hpp"

namespace duplex::client {
namespace {

std::vector<std::string> split_all(std::string_view in, bool keep_cr, std::size_t step) {
  LineSplitter s(keep_cr, 1000);
  std::vector<std::string> out;
  for (std::size_t at = 0; at < in.size(); at += step)
    EXPECT_TRUE(s.feed(in.substr(at, step), out));
  if (auto last = s.finish()) out.push_back(*last);
  return out;
}

TEST(LineSplitter, SameLinesWhateverTheChunkSize) {
  const std::string in = "one\n\ntwo\r\n  \r\n\rthree\nlast";
  for (std::size_t step : {1u, 2u, 3u, 7u, 100u}) {
    EXPECT_EQ(split_all(in, false, step),
              (std::vector<std::string>{"one", "", "two", "  ", "\rthree", "last"}))
        << step;
    EXPECT_EQ(split_all(in, true, step),
              (std::vector<std::string>{"one", "", "two\r", "  \r", "\rthree", "last"}))
        << step;
  }
}

TEST(LineSplitter, NoTrailingLineAfterAFinalNewline) {
  EXPECT_EQ(split_all("a\n", false, 1), (std::vector<std::string>{"a"}));
  EXPECT_EQ(split_all("\n", false, 1), (std::vector<std::string>{""}));
  EXPECT_TRUE(split_all("", false, 1).empty());
}

TEST(LineSplitter, ALineAboveTheBoundIsRefusedWhereverItIsCut) {
  LineSplitter s(false, 4);
  std::vector<std::string> out;
  EXPECT_TRUE(s.feed("abcd\nab", out));
  EXPECT_EQ(out, std::vector<std::string>{"abcd"});
  EXPECT_EQ(s.lines_seen(), 1u);
  EXPECT_TRUE(s.feed("c", out));
  EXPECT_FALSE(s.feed("de\n", out));
}

TEST(ShowReplies, HexAndEscaped) {
  EXPECT_EQ(show_hex(""), "");
  EXPECT_EQ(show_hex(std::string("A\0\xff", 3)), "41 00 ff");
  EXPECT_EQ(show_escaped(std::string("a\tb\r\n\0\\\x1b\x7f", 9)), "a\\tb\\r\\n\\0\\\\\\x1b\\x7f");
  // Well-formed UTF-8 stays; a broken or cut sequence is shown byte by byte.
  EXPECT_EQ(show_escaped("wörld ✓"), "wörld ✓");
  EXPECT_EQ(show_escaped("\xc3"), "\\xc3");
  EXPECT_EQ(show_escaped("\xe2\x9c"), "\\xe2\\x9c");
  EXPECT_EQ(show_escaped("\xc0\xaf"), "\\xc0\\xaf");  // an overlong '/'
}

}  // namespace
}  // namespace duplex::client
