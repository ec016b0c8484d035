// `duplex send URL MSG...`: one-shot upper requests, one reply line per message (per responder
// for a multicast group or broadcast address).
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "cli.hpp"
#include "client_common.hpp"
#include "datagram_common.hpp"

namespace duplex::app {
namespace {

struct SendOptions {
  std::string url;
  std::vector<std::string> messages;
  UpperClientFlags flags;
  DatagramFlags datagram;
};

// Each message is one datagram (an empty one too); the first that gets no reply ends the command.
int run_send_datagram(const SendOptions& o, const net::Endpoint& ep) {
  const auto opt = o.datagram.options(o.flags, ep);
  asio::io_context ctx(1);
  auto status = run_sync(ctx, [&]() -> asio::awaitable<Status> {
    auto client = co_await client::DatagramClient::open(ep, opt);
    if (!client) co_return std::move(client).failure();
    for (const auto& m : o.messages) {
      auto replies = co_await client->request(m);
      if (!replies) co_return std::move(replies).failure();
      // Printed as they come: a later message that gets no reply must not hide earlier replies.
      print_replies(*replies, client->to_group());
      std::fflush(stdout);
    }
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
  if (is_datagram(ep)) {
    o.flags.tls.refuse_for_datagrams(o.url);
    return run_send_datagram(o, ep);
  }
  for (const auto& m : o.messages)
    if (m.empty())
      throw UsageError("an empty message cannot be sent (the raw protocol has no way to say it)");
  asio::io_context ctx(1);
  auto replies = run_sync(ctx, [&]() -> asio::awaitable<Result<std::vector<std::string>>> {
    auto conn = co_await client::Connection::open(ep, o.flags.options());
    if (!conn) co_return std::move(conn).failure();
    std::vector<std::string> out;
    for (const auto& m : o.messages) {
      auto reply = co_await conn->upper(m);
      if (!reply) co_return std::move(reply).failure();
      out.push_back(std::move(*reply));
    }
    co_await conn->finish();  // over TLS: close_notify, so that the next send resumes
    co_return std::move(out);
  }());
  if (!replies) {
    std::fprintf(stderr, "duplex: %s\n", replies.message().c_str());
    return kExitFailure;
  }
  for (const auto& r : *replies) {
    std::fwrite(r.data(), 1, r.size(), stdout);
    std::fputc('\n', stdout);
  }
  return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
}

}  // namespace

CLI::App* add_send(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<SendOptions>();
  auto* cmd = root.add_subcommand(
      "send", "Send each MSG to the upper service and print each reply on its own line");
  cmd->add_option("url", o->url,
                  "Server address (tcp://HOST:PORT, HOST:PORT, tls://HOST:PORT, unix:///path, "
                  "tls+unix:///path, udp://HOST:PORT, "
                  "unixgram:///path; udp:// to a multicast group or broadcast address prints "
                  "'ADDRESS REPLY' for every server that answers)")
      ->required();
  cmd->add_option("msg", o->messages, "Messages; each is one request (one datagram over udp://)")
      ->required();
  o->flags.add_to(*cmd);
  o->datagram.add_to(*cmd);
  cmd->callback([o, &result] { result.code = run_send(*o); });
  return cmd;
}

}  // namespace duplex::app
