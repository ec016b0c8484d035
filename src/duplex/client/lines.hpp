// LineSplitter: a byte stream cut into lines for the line-mode clients (send, chat). Pure; no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duplex::client {

/// Lines end at '\n'; the last one may lack it. A blank line is a line (an empty string). Unless
/// `keep_cr`, one '\r' before the '\n' is dropped (CRLF text); with it every byte but the '\n'
/// is kept. A line longer than `max_line` bytes is an error, so that a stream without newlines
/// cannot grow our memory without bound.
class LineSplitter {
 public:
  LineSplitter(bool keep_cr, std::size_t max_line) noexcept
      : keep_cr_(keep_cr), max_line_(max_line) {}

  /// Appends every line `in` completes to `out`. False when a line grew past max_line (nothing
  /// more should be fed).
  bool feed(std::string_view in, std::vector<std::string>& out);
  /// End of input: the last line when it had no '\n' (nullopt when there is none).
  std::optional<std::string> finish();
  /// Lines completed so far (for error messages: "line N is too long").
  std::size_t lines_seen() const noexcept { return lines_; }

 private:
  std::string take();

  bool keep_cr_;
  std::size_t max_line_;
  std::string partial_;
  std::size_t lines_ = 0;
};

}  // namespace duplex::client
