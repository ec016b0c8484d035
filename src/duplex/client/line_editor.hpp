// LineEditor: line editing and history on a terminal (libedit), read from the io_context so that
// the connection is watched while someone types.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::client {

/// libedit's callback interface fed from an fd-readiness wait, not a blocking readline(): the
/// caller can run other coroutines beside next() (a reply reader that notices at once when the
/// server goes away) and cancel it. The terminal is in editing mode only while next() waits, so
/// output printed between two lines (the replies) looks as it would without editing.
///
/// The prompt and the editing go to `echo` (stdout when that is the terminal, else stderr: a
/// `duplex chat | tee log` keeps its editing and its log stays clean). Each line entered is added
/// to the history and the history file is rewritten at once, so that a Ctrl-C loses none of it.
/// libedit keeps global state: one LineEditor at a time.
class LineEditor {
 public:
  /// Edits lines typed on `in_fd` (not owned). `history_file` empty: no history file.
  LineEditor(const asio::any_io_executor& ex, int in_fd, std::FILE* echo, std::string prompt,
             std::string history_file);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  /// The next line (without its newline); nullopt at end of input (Ctrl-D on an empty line),
  /// after which a newline has been written to `echo` so that what comes next starts on a line
  /// of its own. Fails when cancelled or when `in_fd` cannot be waited on (then, too, the terminal
  /// is restored and a newline written).
  awaitable<Result<std::optional<std::string>>> next();

  /// Ends the editing of a line in progress (the terminal goes back to how it was) and moves to a
  /// fresh line on `echo`; for an error or a signal that ends the program while next() waits.
  void interrupt() noexcept;

 private:
  static void on_line(char* line);
  void leave_editing() noexcept;

  asio::posix::stream_descriptor in_;
  std::FILE* echo_;
  std::string prompt_;
  std::string history_file_;
  bool editing_ = false;
  bool done_ = false;
  std::optional<std::string> line_;
};

}  // namespace duplex::client
