// Helpers shared by send and chat for udp:// and unixgram:// addresses: options, opening, output.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "client_common.hpp"
#include "duplex/client/datagram_client.hpp"
#include "upper_io.hpp"

namespace duplex::app {

/// --retries / --broadcast; --timeout comes from UpperClientFlags (per try here, default 1 s).
struct DatagramFlags {
  int retries = 2;
  bool broadcast = false;

  void add_to(CLI::App& cmd) {
    cmd.add_option("--retries", retries,
                   "udp:// and unixgram://: send an unanswered datagram again, up to COUNT more "
                   "times")
        ->type_name("COUNT")
        ->capture_default_str()
        ->check(CLI::Range(0, 1000));
    cmd.add_flag("--broadcast", broadcast,
                 "udp://: the address is a broadcast address (such as 10.0.0.255): allow it and "
                 "print every reply, one line per responder (255.255.255.255 and multicast groups "
                 "need no flag)");
  }

  /// The datagram client's options, or UsageError for flags that only streams understand.
  client::DatagramOptions options(const UpperClientFlags& upper, const net::Endpoint& ep) const {
    if (upper.raw || upper.framed)
      throw UsageError(
          fmt::format("--raw and --framed are for stream addresses, not {}", ep.url()));
    if (broadcast && ep.transport != net::Transport::udp)
      throw UsageError(fmt::format("--broadcast is for udp:// addresses, not {}", ep.url()));
    client::DatagramOptions o;
    if (upper.timeout_given())
      o.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(upper.timeout_s * 1000));
    o.retries = retries;
    o.broadcast = broadcast;
    o.log_steps = true;  // -v shows them
    return o;
  }
};

inline bool is_datagram(const net::Endpoint& ep) {
  return ep.transport == net::Transport::udp || ep.transport == net::Transport::unix_dgram;
}

/// Prints the replies to one message: the reply itself for a unicast destination; for a group,
/// one line per responder, `ADDRESS REPLY`; each reply shown as `io` says.
inline void print_replies(const std::vector<client::DatagramReply>& replies, bool group,
                          const UpperIoFlags& io) {
  for (const auto& r : replies) {
    if (group) {
      std::fwrite(r.from.data(), 1, r.from.size(), stdout);
      std::fputc(' ', stdout);
    }
    const std::string shown = io.display(r.payload);
    std::fwrite(shown.data(), 1, shown.size(), stdout);
    std::fputc('\n', stdout);
  }
}

/// One request and its replies, printed at once: a later message that gets no reply must not
/// hide the replies to earlier ones.
inline asio::awaitable<Status> request_and_print(client::DatagramClient& c, std::string msg,
                                                 const UpperIoFlags& io) {
  auto replies = co_await c.request(msg);
  if (!replies) co_return std::move(replies).failure();
  print_replies(*replies, c.to_group(), io);
  std::fflush(stdout);
  co_return Status{};
}

/// request_and_print() for each line of stdin, in turn.
inline asio::awaitable<Status> request_each_stdin_line(client::DatagramClient& c,
                                                       const UpperIoFlags& io) {
  auto ex = co_await asio::this_coro::executor;
  auto in = client::StdinReader::start(ex, STDIN_FILENO, 64 * 1024);
  if (!in) co_return std::move(in).failure();
  co_return co_await for_each_line(
      **in, false, kMaxRawLine,
      [&](std::string line) { return request_and_print(c, std::move(line), io); },
      []() -> asio::awaitable<Status> { co_return Status{}; });
}

}  // namespace duplex::app
