// Tests for client/text.hpp: UTF-8 checking, base64 and --encoding (iconv, carried sequences).
#include "duplex/client/text.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace duplex::client {
namespace {

TEST(Utf8, ValidAndInvalid) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\n"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9"));                  // é
  EXPECT_TRUE(is_valid_utf8("\xE4\xB8\xAD\xE6\x96\x87"));  // 中文
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));          // U+1F600
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));          // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));                 // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\x80"));             // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));             // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));         // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE4\xB8"));                 // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));                     // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xD6\xD0\xCE\xC4"));         // GBK
}

TEST(Transcoder, GbkSplitAnywhereIsCarriedOver) {
  const std::string gbk = "a\xD6\xD0\xCE\xC4z";  // "a中文z"
  for (std::size_t cut = 0; cut <= gbk.size(); ++cut) {
    auto t = *Transcoder::open("gbk");
    std::string out = t.feed(as_bytes(std::string_view(gbk).substr(0, cut)));
    out += t.feed(as_bytes(std::string_view(gbk).substr(cut)));
    out += t.finish();
    EXPECT_EQ(out, "a\xE4\xB8\xAD\xE6\x96\x87z") << "cut at " << cut;
  }
}

TEST(Transcoder, OneByteAtATime) {
  const std::string gbk = "\xD6\xD0\xCE\xC4\n";
  auto t = *Transcoder::open("GBK");
  std::string out;
  for (char c : gbk)
    out += t.feed(as_bytes(std::string_view(&c, 1)));
  out += t.finish();
  EXPECT_EQ(out, "\xE4\xB8\xAD\xE6\x96\x87\n");
}

TEST(Transcoder, InvalidAndDanglingBytesBecomeReplacementCharacters) {
  auto t = *Transcoder::open("gbk");
  std::string out = t.feed(as_bytes("x\xFFy\xD6"));
  out += t.finish();
  EXPECT_EQ(out, "x\xEF\xBF\xBDy\xEF\xBF\xBD");
}

TEST(Transcoder, LargeChunkGrowsItsBuffer) {
  std::string gbk;
  for (int i = 0; i < 10000; ++i)
    gbk += "\xD6\xD0";
  auto t = *Transcoder::open("gbk");
  const std::string out = t.feed(as_bytes(gbk)) + t.finish();
  EXPECT_EQ(out.size(), 30000u);
}

TEST(Transcoder, UnknownEncodingIsAFailureNamingIt) {
  auto t = Transcoder::open("no-such-charset");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), std::errc::invalid_argument);
  EXPECT_EQ(t.message(), "unknown encoding 'no-such-charset'");
}

TEST(Transcoder, MovedConverterKeepsItsCarry) {
  auto a = *Transcoder::open("gbk");
  std::string out = a.feed(as_bytes(std::string_view("\xD6")));
  Transcoder b(std::move(a));
  out += b.feed(as_bytes(std::string_view("\xD0")));
  out += b.finish();
  EXPECT_EQ(out, "\xE4\xB8\xAD");
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
}

TEST(Base64, LongerThanOnePieceHasNoBreaks) {
  // Spans three of the encoder's 3 MiB pieces; the length leaves one byte for the padded tail.
  const std::string big(7 * (1u << 20) + 3, '\xff');
  const std::string b = base64(big);
  ASSERT_EQ(b.size(), (big.size() + 2) / 3 * 4);
  EXPECT_EQ(b.find_first_not_of('/'), b.size() - 3);  // 0xffffff encodes to "////"
  EXPECT_EQ(b.substr(b.size() - 4), "/w==");
}

}  // namespace
}  // namespace duplex::client
