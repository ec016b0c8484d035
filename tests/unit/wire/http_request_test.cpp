// HttpRequestParser: a head in any number of pieces, the target's path, Accept (repeated and
// split), and a clear verdict for garbage and for a head over the limit.
#include "duplex/wire/http_request.hpp"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace duplex::wire {
namespace {

HttpParse feed(HttpRequestParser& p, std::string_view s) {
  return p.feed(std::span<const char>(s.data(), s.size()));
}

TEST(HttpRequestParser, ReadsMethodPathAndAccept) {
  HttpRequestParser p;
  ASSERT_EQ(feed(p, "GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\naccept: text/plain\r\n\r\n"),
            HttpParse::done);
  EXPECT_EQ(p.request().method, "GET");
  EXPECT_EQ(p.request().path, "/metrics");
  EXPECT_EQ(p.request().accept, "text/plain");
}

TEST(HttpRequestParser, EveryPrefixNeedsMoreAndBytesOneAtATimeGiveTheSameRequest) {
  const std::string head =
      "HEAD /metrics HTTP/1.0\r\nAccept: application/openmetrics-text\r\nAccept: */*\r\n\r\n";
  HttpRequestParser p;
  for (std::size_t i = 0; i + 1 < head.size(); ++i)
    ASSERT_EQ(feed(p, head.substr(i, 1)), HttpParse::need_more) << i;
  ASSERT_EQ(feed(p, head.substr(head.size() - 1)), HttpParse::done);
  EXPECT_EQ(p.request().method, "HEAD");
  EXPECT_EQ(p.request().accept, "application/openmetrics-text, */*");
}

TEST(HttpRequestParser, NoBytesAreNothingNewNotTheEndOfTheStream) {
  // Found by the fuzzer: http_parser reads a length of 0 as EOF, which made a half-read head
  // "bad" when fed in two pieces, one of them empty.
  HttpRequestParser p;
  ASSERT_EQ(feed(p, "GET /m\xff`tr,"), HttpParse::need_more);
  EXPECT_EQ(feed(p, ""), HttpParse::need_more);
  EXPECT_EQ(feed(p, " HTTP/1.1\r\n\r\n"), HttpParse::done);
  HttpRequestParser q;
  ASSERT_EQ(feed(q, "GET /metrics HTTP/1.1\r\n"), HttpParse::need_more);
  EXPECT_EQ(feed(q, ""), HttpParse::need_more);
  EXPECT_EQ(feed(q, "\r\n"), HttpParse::done);
}

TEST(HttpRequestParser, StopsAtTheEndOfTheHeadWithoutReadingABody) {
  HttpRequestParser p;
  EXPECT_EQ(feed(p, "POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nbody..."),
            HttpParse::done);
  EXPECT_EQ(p.request().method, "POST");
  EXPECT_EQ(feed(p, "more body"), HttpParse::done) << "the verdict stays";
}

TEST(HttpRequestParser, GarbageIsBadWithAReason) {
  HttpRequestParser p;
  EXPECT_EQ(feed(p, std::string_view("\x16\x03\x01\x02\x00", 5)), HttpParse::bad);
  EXPECT_FALSE(p.error().empty());
  HttpRequestParser q;
  EXPECT_EQ(feed(q, "GET /metrics SMTP/1.1\r\n\r\n"), HttpParse::bad);
}

TEST(HttpRequestParser, AHeadOverTheLimitIsTooLarge) {
  HttpRequestParser p(64);
  EXPECT_EQ(feed(p, "GET /metrics HTTP/1.1\r\nX: "), HttpParse::need_more);
  EXPECT_EQ(feed(p, std::string(100, 'a')), HttpParse::too_large);
  EXPECT_NE(p.error().find("64"), std::string::npos) << p.error();
}

}  // namespace
}  // namespace duplex::wire
