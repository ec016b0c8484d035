// `duplex chat [URL]`: the seed's interactive client — type a line, see the reply — with line
// editing and history (libedit) when stdin is a terminal, plain lines (pipelined) otherwise, and
// --stream for bytes. Over udp:// and unixgram:// each line is one datagram.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli.hpp"
#include "client_common.hpp"
#include "datagram_common.hpp"
#include "duplex/client/line_editor.hpp"
#include "duplex/client/terminal.hpp"
#include "upper_io.hpp"

namespace duplex::app {
namespace {

struct ChatOptions {
  std::string url = "tcp://127.0.0.1:8080";
  UpperClientFlags flags;
  DatagramFlags datagram;
  UpperIoFlags io;
  std::string prompt = "> ";
};

std::string history_path() {
  std::string dir;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x)
    dir = std::string(x) + "/duplex";
  else if (const char* h = std::getenv("HOME"); h && *h)
    dir = std::string(h) + "/.local/state/duplex";
  else
    return {};
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return dir + "/chat_history";
}

// Where the prompt and the editing go: the terminal, whichever of stdout and stderr it is, so
// that `duplex chat | tee log` edits on the terminal and logs only the replies.
std::FILE* echo_stream() {
  if (client::is_terminal(STDOUT_FILENO) || !client::is_terminal(STDERR_FILENO)) return stdout;
  return stderr;
}

bool edit_lines(const ChatOptions& o) {
  return !o.io.stream && client::is_terminal(STDIN_FILENO);
}

// A line that gets no reply (after the retries) ends the chat, as a lost connection does.
int run_chat_datagram(const ChatOptions& o, const net::Endpoint& ep) {
  const auto opt = o.datagram.options(o.flags, ep);
  asio::io_context ctx(1);
  auto status = run_sync(ctx, [&]() -> asio::awaitable<Status> {
    auto client = co_await client::DatagramClient::open(ep, opt);
    if (!client) co_return std::move(client).failure();
    if (edit_lines(o)) {
      client::LineEditor editor(ctx.get_executor(), STDIN_FILENO, echo_stream(), o.prompt,
                                history_path());
      for (;;) {
        auto line = co_await editor.next();
        if (!line) co_return std::move(line).failure();
        if (!*line) co_return Status{};
        if (auto s = co_await request_and_print(*client, std::move(**line), o.io); !s) co_return s;
      }
    }
    co_return co_await request_each_stdin_line(*client, o.io);
  }());
  if (!status) {
    std::fprintf(stderr, "duplex: %s\n", status.message().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

int run_chat(const ChatOptions& o) {
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/false);
  const auto ep = parse_url(o.url);
  if (is_datagram(ep)) {
    o.flags.tls.refuse_for_datagrams(o.url);
    if (o.io.stream)
      throw UsageError(fmt::format("--stream needs a stream address, not {}", ep.url()));
    return run_chat_datagram(o, ep);
  }
  asio::io_context ctx(1);
  auto code = run_sync(ctx, [&]() -> asio::awaitable<Result<int>> {
    auto conn = co_await client::Connection::open(ep, o.flags.options());
    if (!conn) co_return std::move(conn).failure();
    if (o.io.stream) {
      auto s = co_await stream_stdin(*conn, o.flags);
      if (!s) co_return std::move(s).failure();
      co_return kExitOk;
    }
    if (!edit_lines(o)) {
      auto s = co_await send_lines(*conn, o.flags, o.io, {}, /*from_stdin=*/true);
      if (!s) co_return std::move(s).failure();
      co_return kExitOk;
    }
    client::LineEditor editor(ctx.get_executor(), STDIN_FILENO, echo_stream(), o.prompt,
                              history_path());
    co_return co_await chat_on_terminal(*conn, editor, o.flags, o.io);
  }());
  if (!code) {
    std::fflush(stdout);  // the replies that came before the failure
    std::fprintf(stderr, "duplex: %s\n", code.message().c_str());
    return kExitFailure;
  }
  return *code;
}

}  // namespace

CLI::App* add_chat(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<ChatOptions>();
  auto* cmd = root.add_subcommand(
      "chat", "Interactive upper-service client: each line typed is sent, its reply printed");
  cmd->add_option("url", o->url,
                  "Server address (tcp://, tls://, unix://, tls+unix://, udp://, unixgram://; see "
                  "duplex send --help)")
      ->capture_default_str();
  cmd->add_option("--prompt", o->prompt, "Prompt shown on a terminal")->capture_default_str();
  o->flags.add_to(*cmd);
  o->datagram.add_to(*cmd);
  o->io.add_to(*cmd);
  cmd->callback([o, &result] { result.code = run_chat(*o); });
  return cmd;
}

}  // namespace duplex::app
