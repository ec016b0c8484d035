// How send and chat move their data: lines from stdin pipelined, --stream, and showing replies
// (--show, --timestamps).
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "client_common.hpp"
#include "duplex/client/connection.hpp"
#include "duplex/client/line_editor.hpp"
#include "duplex/client/stdin_reader.hpp"
#include "duplex/client/upper_pipeline.hpp"
#include "duplex/core/result.hpp"

namespace duplex::app {

/// --stream, --show, --timestamps.
struct UpperIoFlags {
  bool stream = false;
  std::string show = "text";
  bool timestamps = false;

  void add_to(CLI::App& cmd);
  /// One reply as it is printed: --show's form, after a --timestamps prefix (no newline).
  std::string display(std::string_view reply) const;
  bool plain() const { return show == "text" && !timestamps; }
};

/// A line read in line mode may be at most this long on a raw connection (a framed one: the
/// server's frame limit), so that input without newlines cannot grow our memory without bound.
inline constexpr std::size_t kMaxRawLine = 16u << 20;

/// Calls `each` for every line of `in` in order (LineSplitter's rules: --raw keeps CR) and
/// `chunk_done` after the lines of each chunk read; fails for a line longer than `max_line`.
awaitable<Status> for_each_line(client::StdinReader& in, bool keep_cr, std::size_t max_line,
                                const std::function<awaitable<Status>(std::string)>& each,
                                const std::function<awaitable<Status>()>& chunk_done);

/// Replies to stdout, one line each, shown as `io` says; flushed whenever nothing is owed.
client::UpperPipeline::Sink stdout_lines(const UpperIoFlags& io);

/// The window and reply timeout for a pipeline on `c`, opened with `flags`.
client::UpperPipeline::Window window_for(const UpperClientFlags& flags,
                                         const client::Connection& c);

/// Sends `messages` (nullptr: the lines of stdin) over `c`, pipelined, printing each reply on
/// its own line; then ends the connection gracefully.
awaitable<Status> send_lines(client::Connection& c, const UpperClientFlags& flags,
                             const UpperIoFlags& io, std::span<const std::string> messages,
                             bool from_stdin);

/// --stream: stdin to the server and the server's bytes to stdout, unchanged. On a raw
/// connection that is nc's contract (client/stream_pump.hpp). On a duplex server (framed) each
/// piece of stdin as read is one UPPER_REQUEST and each reply's bytes are written out as they are;
/// at the end of stdin, once every reply is out, the connection ends.
awaitable<Status> stream_stdin(client::Connection& c, const UpperClientFlags& flags);

/// `duplex chat` on a terminal: edit a line, send it, print its reply, until Ctrl-D. Watches the
/// connection meanwhile, so a server that goes away ends the chat at once. SIGINT, SIGTERM and
/// SIGHUP end it too, with the terminal restored: the result is then 128 + the signal.
awaitable<Result<int>> chat_on_terminal(client::Connection& c, client::LineEditor& editor,
                                        const UpperClientFlags& flags, const UpperIoFlags& io);

}  // namespace duplex::app
