// Helpers shared by the upper-service clients (send, chat): options and running a coroutine.
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include <CLI/CLI.hpp>

#include "duplex/client/connection.hpp"
#include "duplex/core/version.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::app {

/// --raw / --framed / --timeout, as understood by every upper-service client.
struct UpperClientFlags {
  bool raw = false;
  bool framed = false;
  double timeout_s = 10.0;
  CLI::Option* timeout_option = nullptr;

  void add_to(CLI::App& cmd) {
    auto* r = cmd.add_flag("--raw", raw, "Speak the seed tutorial's raw protocol (no handshake)");
    cmd.add_flag("--framed", framed, "Require a duplex server (no fallback to the raw protocol)")
        ->excludes(r);
    timeout_option = cmd.add_option("--timeout", timeout_s,
                                    "SECONDS to wait for each reply (0: forever); for udp:// and "
                                    "unixgram:// addresses, for each try, and 1 unless given")
                         ->type_name("SECONDS")
                         ->capture_default_str()
                         ->check(CLI::Range(0.0, 1e6));
  }
  /// True when --timeout was on the command line (datagram clients have their own default).
  bool timeout_given() const { return timeout_option && timeout_option->count() > 0; }
  client::ClientOptions options() const {
    client::ClientOptions o;
    o.protocol = raw      ? client::Protocol::raw
                 : framed ? client::Protocol::framed
                          : client::Protocol::detect;
    o.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
    o.agent = std::string(duplex::agent());
    return o;
  }
};

/// Runs one coroutine on `ctx` to completion and returns its value (rethrowing its exception).
template <class T>
T run_sync(asio::io_context& ctx, asio::awaitable<T> a) {
  std::optional<T> value;
  std::exception_ptr error;
  // Stored from inside the coroutine: co_spawn's own result passing needs T default-constructible.
  auto store = [](asio::awaitable<T> inner, std::optional<T>& out) -> asio::awaitable<void> {
    out.emplace(co_await std::move(inner));
  };
  asio::co_spawn(ctx, store(std::move(a), value), [&](std::exception_ptr e) { error = e; });
  ctx.restart();
  ctx.run();
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

}  // namespace duplex::app
