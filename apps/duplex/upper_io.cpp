// send and chat's data paths: stdin cut into lines and pipelined, --stream, replies shown.
#include "upper_io.hpp"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "duplex/client/lines.hpp"
#include "duplex/client/stream_pump.hpp"
#include "duplex/client/terminal.hpp"
#include "duplex/client/text.hpp"
#include "duplex/core/errors.hpp"

namespace duplex::app {
namespace {

using namespace asio::experimental::awaitable_operators;

constexpr std::size_t kStdinChunk = 64 * 1024;
constexpr std::size_t kSeedRecvSize = 1024;

std::string timestamp_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:02}:{:02}:{:02}.{:03} ", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

Result<std::unique_ptr<client::StdinReader>> read_stdin(client::Connection& c) {
  return client::StdinReader::start(c.stream().get_executor(), STDIN_FILENO, kStdinChunk);
}

// Runs `produce` beside the pipeline's reader; whichever ends first ends both.
awaitable<Status> with_receiver(client::UpperPipeline& p, awaitable<Status> produce) {
  auto r = co_await (std::move(produce) || p.receive());
  co_return std::visit([](Status& s) { return std::move(s); }, r);
}

awaitable<Status> send_given(client::UpperPipeline& p, std::span<const std::string> messages) {
  for (const auto& m : messages)
    if (auto s = co_await p.send(m); !s) co_return s;
  co_return co_await p.drain();
}

awaitable<Status> send_stdin_lines(client::UpperPipeline& p, client::StdinReader& in, bool keep_cr,
                                   std::size_t max_line) {
  auto s = co_await for_each_line(
      in, keep_cr, max_line,
      [&p](std::string line) -> awaitable<Status> { co_return co_await p.send(line); },
      [&p]() -> awaitable<Status> { co_return co_await p.flush(); });
  // The lines before a failure (a line too long, stdin unreadable) still get their replies.
  auto d = co_await p.drain();
  co_return s ? d : s;
}

// --stream on a framed connection: each piece of stdin, within the frame limit, is one request.
awaitable<Status> send_stdin_pieces(client::UpperPipeline& p, client::StdinReader& in,
                                    std::size_t max_piece) {
  for (;;) {
    auto chunk = co_await in.next();
    if (!chunk) co_return std::move(chunk).failure();
    if (chunk->empty()) break;
    for (std::string_view rest = as_chars(*chunk); !rest.empty();) {
      const auto piece = rest.substr(0, max_piece);
      if (auto s = co_await p.send(piece); !s) co_return s;
      rest.remove_prefix(piece.size());
    }
    if (auto f = co_await p.flush(); !f) co_return f;
  }
  co_return co_await p.drain();
}

awaitable<Status> chat_lines(client::UpperPipeline& p, client::LineEditor& editor) {
  for (;;) {
    auto line = co_await editor.next();
    if (!line) co_return std::move(line).failure();
    if (!*line) co_return Status{};
    if (auto s = co_await p.send(**line); !s) co_return s;
    // One line at a time: its reply is printed before the prompt comes back.
    if (auto d = co_await p.drain(); !d) co_return d;
  }
}

}  // namespace

void UpperIoFlags::add_to(CLI::App& cmd) {
  auto* s = cmd.add_flag("--stream", stream,
                         "Byte stream, as nc: stdin goes to the server unchanged and what the "
                         "server sends to stdout unchanged (binary safe, no line or size limit); "
                         "at the end of stdin our side is closed and the replies are read until "
                         "the server closes");
  cmd.add_option("--show", show,
                 "How replies are printed: text (as they are), hex (byte pairs), escaped (\\n, "
                 "\\xNN for bytes that are not printable)")
      ->check(CLI::IsMember({"text", "hex", "escaped"}))
      ->type_name("FORM")
      ->capture_default_str()
      ->excludes(s);
  cmd.add_flag("--timestamps", timestamps, "Put the time each reply came before it (HH:MM:SS.mmm)")
      ->excludes(s);
}

std::string UpperIoFlags::display(std::string_view reply) const {
  std::string out = timestamps ? timestamp_now() : std::string();
  if (show == "hex")
    out += client::show_hex(reply);
  else if (show == "escaped")
    out += client::show_escaped(reply);
  else
    out += reply;
  return out;
}

awaitable<Status> for_each_line(client::StdinReader& in, bool keep_cr, std::size_t max_line,
                                const std::function<awaitable<Status>(std::string)>& each,
                                const std::function<awaitable<Status>()>& chunk_done) {
  client::LineSplitter split(keep_cr, max_line);
  std::vector<std::string> lines;
  for (;;) {
    auto chunk = co_await in.next();
    if (!chunk) co_return std::move(chunk).failure();
    if (chunk->empty()) break;
    lines.clear();
    const bool fits = split.feed(as_chars(*chunk), lines);
    for (auto& l : lines)
      if (auto s = co_await each(std::move(l)); !s) co_return s;
    if (!fits)
      co_return fail(errc::frame_too_large,
                     fmt::format("line {} of stdin is longer than {} bytes; --stream sends data of "
                                 "any size",
                                 split.lines_seen() + 1, max_line));
    if (auto s = co_await chunk_done(); !s) co_return s;
  }
  if (auto last = split.finish())
    if (auto s = co_await each(std::move(*last)); !s) co_return s;
  co_return co_await chunk_done();
}

client::UpperPipeline::Sink stdout_lines(const UpperIoFlags& io) {
  client::UpperPipeline::Sink sink;
  if (io.plain())
    sink.reply = [](std::string_view r) {
      // A blank reply is an empty view whose data() may be null, which fwrite must not see.
      return (r.empty() || std::fwrite(r.data(), 1, r.size(), stdout) == r.size()) &&
             std::fputc('\n', stdout) != EOF;
    };
  else
    sink.reply = [&io](std::string_view r) {
      std::string line = io.display(r);
      line.push_back('\n');
      return std::fwrite(line.data(), 1, line.size(), stdout) == line.size();
    };
  sink.idle = [] { return std::fflush(stdout) == 0; };
  return sink;
}

client::UpperPipeline::Window window_for(const UpperClientFlags& flags,
                                         const client::Connection& c) {
  client::UpperPipeline::Window w;
  w.timeout = flags.options().timeout;
  // The seed's server.py reads recv(1024) and decodes each read as UTF-8: with no more than that
  // in flight, a read holds whole messages and never cuts a character in two.
  if (!c.framed()) w.max_bytes = kSeedRecvSize;
  return w;
}

awaitable<Status> send_lines(client::Connection& c, const UpperClientFlags& flags,
                             const UpperIoFlags& io, std::span<const std::string> messages,
                             bool from_stdin) {
  client::UpperPipeline p(c, stdout_lines(io), window_for(flags, c));
  Status s;
  if (from_stdin) {
    auto in = read_stdin(c);
    if (!in) co_return std::move(in).failure();
    const std::size_t max_line = c.framed() ? c.welcome().max_frame : kMaxRawLine;
    s = co_await with_receiver(p, send_stdin_lines(p, **in, flags.raw, max_line));
  } else {
    s = co_await with_receiver(p, send_given(p, messages));
  }
  if (!s) co_return s;
  co_await c.finish();  // over TLS: close_notify, so that the next connection resumes
  co_return std::fflush(stdout) == 0 ? Status{}
                                     : Status(fail(std::errc::io_error, "cannot write to stdout"));
}

awaitable<Status> stream_stdin(client::Connection& c, const UpperClientFlags& flags) {
  auto in = read_stdin(c);
  if (!in) co_return std::move(in).failure();
  if (!c.framed())
    co_return co_await client::pump_stream(c.stream(), **in, STDOUT_FILENO, c.endpoint().url());
  client::UpperPipeline::Sink sink;
  sink.reply = [](std::string_view r) { return client::write_all(STDOUT_FILENO, as_bytes(r)); };
  sink.idle = [] { return true; };
  client::UpperPipeline p(c, std::move(sink), window_for(flags, c));
  const std::size_t max_piece = std::min<std::size_t>(kStdinChunk, c.welcome().max_frame);
  auto s = co_await with_receiver(p, send_stdin_pieces(p, **in, max_piece));
  if (!s) co_return s;
  co_await c.finish();
  co_return Status{};
}

awaitable<Result<int>> chat_on_terminal(client::Connection& c, client::LineEditor& editor,
                                        const UpperClientFlags& flags, const UpperIoFlags& io) {
  client::UpperPipeline p(c, stdout_lines(io), window_for(flags, c));
  asio::signal_set signals(c.stream().get_executor(), SIGINT, SIGTERM, SIGHUP);
  auto r = co_await (chat_lines(p, editor) || p.receive() || signals.async_wait(net::use_tuple));
  if (r.index() == 2) {
    editor.interrupt();
    co_return 128 + std::get<1>(std::get<2>(r));
  }
  auto s = r.index() == 0 ? std::move(std::get<0>(r)) : std::move(std::get<1>(r));
  if (!s) co_return std::move(s).failure();
  co_await c.finish();
  co_return kExitOk;
}

}  // namespace duplex::app
