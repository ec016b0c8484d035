// `duplex chat [URL]`: the seed's interactive client — type a line, see the reply — with line
// editing and history (libedit) on a terminal, plain lines otherwise. Over udp:// and unixgram://
// each line is one datagram.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <editline/readline.h>
#include <fmt/format.h>

#include "cli.hpp"
#include "client_common.hpp"
#include "datagram_common.hpp"

namespace duplex::app {
namespace {

struct ChatOptions {
  std::string url = "tcp://127.0.0.1:8080";
  UpperClientFlags flags;
  DatagramFlags datagram;
  std::string prompt = "> ";
};

std::string history_path() {
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x)
    return std::string(x) + "/duplex/chat_history";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::string(h) + "/.local/state/duplex/chat_history";
  return {};
}

// One line of input, without its newline; nullopt at end of input.
class LineSource {
 public:
  explicit LineSource(std::string prompt)
      : tty_(::isatty(STDIN_FILENO)), prompt_(std::move(prompt)) {
    if (!tty_) return;
    hist_ = history_path();
    if (!hist_.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(hist_).parent_path(), ec);
      read_history(hist_.c_str());
    }
  }
  ~LineSource() {
    if (tty_ && !hist_.empty()) write_history(hist_.c_str());
  }
  std::optional<std::string> next() {
    if (!tty_) {
      std::string line;
      if (!std::getline(std::cin, line)) return std::nullopt;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    char* raw = readline(prompt_.c_str());
    if (!raw) return std::nullopt;
    std::string line(raw);
    std::free(raw);
    if (!line.empty()) add_history(line.c_str());
    return line;
  }

 private:
  bool tty_;
  std::string prompt_;
  std::string hist_;
};

bool blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

// A line that gets no reply (after the retries) ends the chat, as a lost connection does.
int run_chat_datagram(const ChatOptions& o, const net::Endpoint& ep) {
  const auto opt = o.datagram.options(o.flags, ep);
  asio::io_context ctx(1);
  auto client = run_sync(ctx, client::DatagramClient::open(ep, opt));
  if (!client) {
    std::fprintf(stderr, "duplex: %s\n", client.message().c_str());
    return kExitFailure;
  }
  LineSource lines(o.prompt);
  while (auto line = lines.next()) {
    if (blank(*line)) continue;
    auto replies = run_sync(ctx, client->request(*line));
    if (!replies) {
      std::fprintf(stderr, "duplex: %s\n", replies.message().c_str());
      return kExitFailure;
    }
    print_replies(*replies, client->to_group());
    std::fflush(stdout);
  }
  return kExitOk;
}

int run_chat(const ChatOptions& o) {
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/false);
  const auto ep = parse_url(o.url);
  if (is_datagram(ep)) {
    o.flags.tls.refuse_for_datagrams(o.url);
    return run_chat_datagram(o, ep);
  }
  asio::io_context ctx(1);
  auto conn = run_sync(ctx, client::Connection::open(ep, o.flags.options()));
  if (!conn) {
    std::fprintf(stderr, "duplex: %s\n", conn.message().c_str());
    return kExitFailure;
  }
  LineSource lines(o.prompt);
  while (auto line = lines.next()) {
    if (blank(*line)) continue;  // the seed's client would send nothing and wait forever
    auto reply = run_sync(ctx, conn->upper(*line));
    if (!reply) {
      std::fprintf(stderr, "duplex: %s\n", reply.message().c_str());
      return kExitFailure;
    }
    std::fwrite(reply->data(), 1, reply->size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  // Over TLS: close_notify, so that the next connection resumes.
  return run_sync(ctx, [&]() -> asio::awaitable<int> {
    co_await conn->finish();
    co_return kExitOk;
  }());
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
  cmd->callback([o, &result] { result.code = run_chat(*o); });
  return cmd;
}

}  // namespace duplex::app
