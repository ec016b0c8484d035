// `duplex send URL [MSG...]`: upper requests, one reply line per message (per responder for a
// multicast group or broadcast address); with no MSG, the lines of stdin; --stream: stdin as bytes.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli.hpp"
#include "client_common.hpp"
#include "datagram_common.hpp"
#include "upper_io.hpp"

namespace duplex::app {
namespace {

struct SendOptions {
  std::string url;
  std::vector<std::string> messages;
  UpperClientFlags flags;
  DatagramFlags datagram;
  UpperIoFlags io;
};

// Each message is one datagram (an empty one too); the first that gets no reply ends the command.
int run_send_datagram(const SendOptions& o, const net::Endpoint& ep) {
  const auto opt = o.datagram.options(o.flags, ep);
  asio::io_context ctx(1);
  auto status = run_sync(ctx, [&]() -> asio::awaitable<Status> {
    auto client = co_await client::DatagramClient::open(ep, opt);
    if (!client) co_return std::move(client).failure();
    if (o.messages.empty()) co_return co_await request_each_stdin_line(*client, o.io);
    for (const auto& m : o.messages)
      if (auto s = co_await request_and_print(*client, m, o.io); !s) co_return s;
    co_return Status{};
  }());
  if (!status) {
    std::fprintf(stderr, "duplex: %s\n", status.message().c_str());
    return kExitFailure;
  }
  return std::ferror(stdout) == 0 ? kExitOk : kExitFailure;
}

int run_send(const SendOptions& o) {
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/false);
  const auto ep = parse_url(o.url);
  if (o.io.stream && !o.messages.empty())
    throw UsageError("--stream sends stdin: give no MSG (or drop --stream)");
  if (is_datagram(ep)) {
    o.flags.tls.refuse_for_datagrams(o.url);
    if (o.io.stream)
      throw UsageError(fmt::format("--stream needs a stream address, not {}", ep.url()));
    return run_send_datagram(o, ep);
  }
  asio::io_context ctx(1);
  auto status = run_sync(ctx, [&]() -> asio::awaitable<Status> {
    auto conn = co_await client::Connection::open(ep, o.flags.options());
    if (!conn) co_return std::move(conn).failure();
    if (o.io.stream) co_return co_await stream_stdin(*conn, o.flags);
    co_return co_await send_lines(*conn, o.flags, o.io, o.messages, o.messages.empty());
  }());
  if (!status) {
    std::fflush(stdout);  // the replies that came before the failure
    std::fprintf(stderr, "duplex: %s\n", status.message().c_str());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

CLI::App* add_send(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<SendOptions>();
  auto* cmd = root.add_subcommand(
      "send",
      "Send each MSG (none given: each line of stdin) to the upper service and print each reply "
      "on its own line");
  cmd->add_option("url", o->url,
                  "Server address (tcp://HOST:PORT, HOST:PORT, tls://HOST:PORT, unix:///path, "
                  "tls+unix:///path, udp://HOST:PORT, "
                  "unixgram:///path; udp:// to a multicast group or broadcast address prints "
                  "'ADDRESS REPLY' for every server that answers)")
      ->required();
  cmd->add_option("msg", o->messages,
                  "Messages; each is one request (one datagram over udp://). None: each line of "
                  "stdin is one, a blank line too (its reply is blank); many are in flight at "
                  "once, the replies keep their order");
  o->flags.add_to(*cmd);
  o->datagram.add_to(*cmd);
  o->io.add_to(*cmd);
  cmd->callback([o, &result] { result.code = run_send(*o); });
  return cmd;
}

}  // namespace duplex::app
