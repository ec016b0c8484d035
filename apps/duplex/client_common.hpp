// Helpers shared by the stream clients (send, chat, exec, shell): TLS and trust flags, options,
// and running a coroutine.
#pragma once

#include <unistd.h>

#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "duplex/client/connection.hpp"
#include "duplex/client/exec_session.hpp"
#include "duplex/client/terminal.hpp"
#include "duplex/core/fingerprint.hpp"
#include "duplex/core/version.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::app {

/// --tls, --fingerprint, --trust, -i/--identity, --known-hosts: how a client speaks TLS and
/// decides to believe the server's key (client/trust.hpp).
struct TlsClientFlags {
  bool tls = false;
  std::string fingerprint;
  std::string trust = "ask";
  std::string identity;
  std::string known_hosts;

  void add_to(CLI::App& cmd) {
    cmd.add_flag("--tls", tls, "Speak TLS, as if the URL were tls:// (or tls+unix://)");
    cmd.add_option("--fingerprint", fingerprint,
                   "The server key expected (SHA256:..., from `duplex fingerprint` on the server); "
                   "pinned in known_hosts when it matches, refused when it does not")
        ->type_name("SHA256:...");
    cmd.add_option("--trust", trust,
                   "A server key known_hosts does not list: accept-new pins it, ask asks on a "
                   "terminal (else refuses), strict always refuses; a changed key is always "
                   "refused")
        ->check(CLI::IsMember({"accept-new", "ask", "strict"}))
        ->capture_default_str();
    cmd.add_option("-i,--identity", identity,
                   "Client key to present over TLS (default: ~/.config/duplex/id_ed25519 when it "
                   "exists; make one with `duplex keygen`)")
        ->type_name("FILE");
    cmd.add_option("--known-hosts", known_hosts,
                   "Pinned server keys (default: ~/.config/duplex/known_hosts)")
        ->type_name("FILE");
  }

  /// Throws UsageError for a --fingerprint that is not one.
  client::TrustOptions trust_options() const {
    if (!fingerprint.empty()) {
      if (auto ok = check_fingerprint(fingerprint); !ok)
        throw UsageError(fmt::format("--fingerprint: {}", ok.message()));
    }
    client::TrustOptions t;
    t.fingerprint = fingerprint;
    t.accept_new = trust == "accept-new";
    // ssh asks only when someone is there to answer; the answer is read from /dev/tty.
    t.interactive = trust == "ask" && ::isatty(STDIN_FILENO) == 1 && ::isatty(STDERR_FILENO) == 1;
    t.known_hosts = known_hosts;
    t.identity = identity;
    return t;
  }

  /// Throws UsageError when a TLS flag was given for `url`, a datagram address (udp://,
  /// unixgram://): TLS needs a stream.
  void refuse_for_datagrams(const std::string& url) const {
    if (tls || !fingerprint.empty() || !identity.empty())
      throw UsageError(
          "--tls, --fingerprint and --identity need a stream address (tls://, tls+unix://, "
          "tcp://, unix://), not " +
          url);
  }
};

/// --raw / --framed / --timeout, as understood by every upper-service client.
struct UpperClientFlags {
  bool raw = false;
  bool framed = false;
  double timeout_s = 10.0;
  CLI::Option* timeout_option = nullptr;
  TlsClientFlags tls;

  void add_to(CLI::App& cmd) {
    tls.add_to(cmd);
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
    o.tls = tls.tls;
    o.trust = tls.trust_options();
    o.log_steps = true;  // -v shows them
    return o;
  }
};

/// -t / -T on the commands that open a shell, as ssh takes them.
enum class PtyChoice { automatic, force, never };

/// Whether an interactive shell (`duplex shell`, `duplex exec URL` with no command) gets a PTY:
/// -t forces one, -T refuses one, else one exactly when stdin is a terminal. A shell fed from a
/// pipe or file then reads its commands from there, and ssh's warning says why there is no PTY.
inline bool shell_wants_pty(PtyChoice choice) {
  if (choice != PtyChoice::automatic) return choice == PtyChoice::force;
  if (::isatty(STDIN_FILENO) == 1) return true;
  spdlog::warn(
      "pseudo-terminal will not be allocated because stdin is not a terminal (-t forces one)");
  return false;
}

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

/// The first steps of the exec service's clients (exec, shell, stats): standard fds, client
/// logging, the URL as a stream endpoint (or a UsageError naming `command`), and how to speak
/// TLS and trust the server from the flags.
inline client::ExecRequest exec_request_for(std::string_view command, const std::string& url,
                                            const TlsClientFlags& flags) {
  client::ensure_std_fds();
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/false);
  client::ExecRequest req;
  req.endpoint = parse_url(url);
  if (!req.endpoint.is_stream())
    throw UsageError(
        fmt::format("{} needs a stream URL (tls://, tcp:// or unix://), not {}", command, url));
  req.tls = flags.tls;
  req.trust = flags.trust_options();
  return req;
}

}  // namespace duplex::app
