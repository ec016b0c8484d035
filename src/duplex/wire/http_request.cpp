// HttpRequestParser: http-parser's callbacks gather the request line's target and the Accept
// header; the parser is paused at the end of the head, so a body is never read.
#include "duplex/wire/http_request.hpp"

#include <http_parser.h>
#include <strings.h>

#include <string_view>

namespace duplex::wire {

struct HttpRequestParser::Impl {
  http_parser parser{};
  http_parser_settings settings{};
  std::size_t max_head;
  std::size_t seen = 0;
  HttpRequest request;
  std::string url;
  std::string field;  // the header name being read (pieces may arrive in several calls)
  bool in_value = false;
  bool accept_value = false;
  bool head_done = false;
  HttpParse state = HttpParse::need_more;
  std::string error;

  explicit Impl(std::size_t limit) : max_head(limit) {
    http_parser_init(&parser, HTTP_REQUEST);
    parser.data = this;
    settings.on_url = [](http_parser* p, const char* at, std::size_t n) {
      self(p).url.append(at, n);
      return 0;
    };
    settings.on_header_field = [](http_parser* p, const char* at, std::size_t n) {
      Impl& s = self(p);
      if (s.in_value) {
        s.field.clear();
        s.in_value = false;
      }
      s.field.append(at, n);
      return 0;
    };
    settings.on_header_value = [](http_parser* p, const char* at, std::size_t n) {
      Impl& s = self(p);
      if (!s.in_value) {
        s.in_value = true;
        s.accept_value = s.field.size() == 6 && ::strncasecmp(s.field.c_str(), "accept", 6) == 0;
        if (s.accept_value && !s.request.accept.empty()) s.request.accept += ", ";
      }
      if (s.accept_value) s.request.accept.append(at, n);
      return 0;
    };
    settings.on_headers_complete = [](http_parser* p) {
      self(p).head_done = true;
      http_parser_pause(p, 1);
      return 0;
    };
  }
  static Impl& self(http_parser* p) noexcept { return *static_cast<Impl*>(p->data); }
};

HttpRequestParser::HttpRequestParser(std::size_t max_head)
    : impl_(std::make_unique<Impl>(max_head)) {}
HttpRequestParser::~HttpRequestParser() = default;

HttpParse HttpRequestParser::feed(std::span<const char> bytes) {
  Impl& s = *impl_;
  if (s.state != HttpParse::need_more) return s.state;
  // No bytes is nothing new. http_parser_execute reads a length of 0 as the end of the stream.
  if (bytes.empty()) return s.state;
  // Only the bytes up to the limit are parsed: a head that is not over by then is too large,
  // and nothing beyond the limit is ever held.
  const std::size_t room = s.max_head - s.seen;
  const std::size_t take = std::min(bytes.size(), room);
  s.seen += take;
  http_parser_execute(&s.parser, &s.settings, bytes.data(), take);
  const auto err = static_cast<http_errno>(s.parser.http_errno);
  if (s.head_done) {
    s.request.method = http_method_str(static_cast<http_method>(s.parser.method));
    const std::string_view url(s.url);
    s.request.path = std::string(url.substr(0, url.find_first_of("?#")));
    return s.state = HttpParse::done;
  }
  if (err != HPE_OK) {
    s.error = http_errno_description(err);
    return s.state = HttpParse::bad;
  }
  if (s.seen >= s.max_head) {
    s.error = "request head over " + std::to_string(s.max_head) + " bytes";
    return s.state = HttpParse::too_large;
  }
  return HttpParse::need_more;
}

const HttpRequest& HttpRequestParser::request() const noexcept {
  return impl_->request;
}

const std::string& HttpRequestParser::error() const noexcept {
  return impl_->error;
}

}  // namespace duplex::wire
