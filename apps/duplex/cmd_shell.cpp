// `duplex shell URL`: an interactive login shell on the server, over a PTY.
// The PTY is sized like our terminal, which is in raw mode for the session (always restored).
// Exit status: the remote shell's.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "cli.hpp"
#include "client_common.hpp"
#include "duplex/client/exec_result.hpp"
#include "duplex/client/exec_session.hpp"
#include "duplex/client/terminal.hpp"
#include "duplex/core/exit_status.hpp"
#include "duplex/core/token_file.hpp"
#include "duplex/core/version.hpp"

namespace duplex::app {
namespace {

struct ShellOptions {
  std::string url;
  std::string token_file;
  TlsClientFlags tls;
};

int run_shell(const ShellOptions& o) {
  client::ensure_std_fds();
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/false);
  client::ExecRequest req;
  req.endpoint = parse_url(o.url);
  if (!req.endpoint.is_stream())
    throw UsageError("shell needs a stream URL (tls://, tcp:// or unix://), not " + o.url);
  req.tls = o.tls.tls;
  req.trust = o.tls.trust_options();
  auto token = resolve_token(o.token_file);
  if (!token) {
    std::fprintf(stderr, "duplex: %s\n", token.message().c_str());
    return kExitConnection;
  }
  req.token = *token;
  req.agent = std::string(duplex::agent());

  // A PTY even when our stdin is not a terminal (a script driving the shell): the remote side
  // still behaves like an interactive login.
  const auto size = client::terminal_size(STDIN_FILENO).value_or(client::TerminalSize{});
  const char* term = std::getenv("TERM");
  req.start.login = true;
  req.start.pty = true;
  req.start.rows = size.rows;
  req.start.cols = size.cols;
  req.start.term = term && *term ? term : "dumb";
  req.stdin_fd = STDIN_FILENO;
  // In raw mode Ctrl-C and Ctrl-\ are bytes for the remote PTY; these signals only come from
  // kill(1), and are passed on. SIGTERM/SIGHUP end our side: the terminal is restored on the way
  // out, and the server hangs up the remote shell when we disconnect.
  req.forward_signals = {SIGINT, SIGQUIT};
  req.stop_signals = {SIGTERM, SIGHUP};

  std::optional<client::RawMode> raw;
  client::ExecHooks hooks;
  hooks.on_stdout = [](ByteView b) { return client::write_all(STDOUT_FILENO, b); };
  hooks.on_stderr = [](ByteView b) { client::write_all(STDERR_FILENO, b); };
  hooks.on_started = [&] { raw.emplace(STDIN_FILENO); };
  hooks.window_size = client::window_size_of(STDIN_FILENO);

  asio::io_context ctx(1);
  const client::ExecResult r = run_sync(ctx, client::run_exec(req, hooks));
  raw.reset();  // the terminal is back to normal before we say anything
  if (const std::string line = client::end_message(r, req.start); !line.empty())
    std::fprintf(stderr, "duplex: %s\n", line.c_str());
  return client::exit_status(r);
}

}  // namespace

CLI::App* add_shell(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<ShellOptions>();
  auto* cmd = root.add_subcommand(
      "shell", "Open an interactive login shell on a duplex server (serve --exec)");
  cmd->add_option("url", o->url,
                  "Server address (tls://HOST:PORT, tcp://HOST:PORT, HOST:PORT, unix:///path, "
                  "tls+unix:///path)")
      ->required();
  cmd->add_option("--token-file", o->token_file,
                  "Token file (default: $DUPLEX_TOKEN, then ~/.config/duplex/token)");
  o->tls.add_to(*cmd);
  cmd->callback([o, &result] { result.code = run_shell(*o); });
  return cmd;
}

}  // namespace duplex::app
