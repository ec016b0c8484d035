// The head of an HTTP/1.x request (what the metrics endpoint reads), parsed by the http-parser
// library (Node.js's, Debian's libhttp-parser): pure, bytes in, a request or a reason out.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

namespace duplex::wire {

struct HttpRequest {
  std::string method;  // "GET", as http-parser names it
  std::string path;    // the target up to '?' or '#'
  std::string accept;  // the Accept header (all of them, joined by ", "), or empty
};

enum class HttpParse {
  need_more,  // the head is not complete yet
  done,       // request() is the request; bytes after its head are not looked at
  bad,        // not HTTP/1.x: error() says why
  too_large,  // the head is over the limit before it ended
};

/// Incremental: feed the bytes as they arrive until it says something else than need_more.
/// Holds at most what the head's fields need (the target and Accept, each bounded by the
/// head's limit); anything after the head, a body included, is never read.
class HttpRequestParser {
 public:
  explicit HttpRequestParser(std::size_t max_head = 8192);
  ~HttpRequestParser();
  HttpRequestParser(const HttpRequestParser&) = delete;
  HttpRequestParser& operator=(const HttpRequestParser&) = delete;

  HttpParse feed(std::span<const char> bytes);
  const HttpRequest& request() const noexcept;
  /// For bad: one line ("invalid HTTP method"); for too_large: the limit.
  const std::string& error() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duplex::wire
