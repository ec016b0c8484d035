// `duplex shell URL`: an interactive login shell on the server, over a PTY when stdin is a
// terminal (sized like it; ours is in raw mode for the session, always restored; `~.` leaves),
// else over pipes, reading its commands from stdin as `ssh host < script` does.
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
  bool force_pty = false;  // -t
  bool no_pty = false;     // -T
  TlsClientFlags tls;
};

int run_shell(const ShellOptions& o) {
  client::ExecRequest req = exec_request_for("shell", o.url, o.tls);
  auto token = resolve_token_with_source(o.token_file);
  if (!token) {
    std::fprintf(stderr, "duplex: %s\n", token.message().c_str());
    return kExitConnection;
  }
  req.token = token->token;
  req.token_source = token->source;
  req.agent = std::string(duplex::agent());

  req.start.login = true;
  req.start.pty = shell_wants_pty(o.force_pty ? PtyChoice::force
                                  : o.no_pty  ? PtyChoice::never
                                              : PtyChoice::automatic);
  if (req.start.pty) {
    const auto size = client::terminal_size(STDIN_FILENO).value_or(client::TerminalSize{});
    const char* term = std::getenv("TERM");
    req.start.rows = size.rows;
    req.start.cols = size.cols;
    req.start.term = term && *term ? term : "dumb";
  }
  req.stdin_fd = STDIN_FILENO;
  // Typed at a terminal into a PTY: `~.` after a newline is the way out of a hung session.
  const bool typed = req.start.pty && client::is_terminal(STDIN_FILENO);
  req.escapes = typed;
  // In raw mode Ctrl-C and Ctrl-\ are bytes for the remote PTY; these signals only come from
  // kill(1), and are passed on. SIGTERM/SIGHUP end our side: the terminal is restored on the way
  // out, and the server hangs up the remote shell when we disconnect.
  req.forward_signals = {SIGINT, SIGQUIT};
  req.stop_signals = {SIGTERM, SIGHUP};

  std::optional<client::RawMode> raw;
  client::ExecHooks hooks;
  hooks.on_stdout = [](ByteView b) { return client::write_all(STDOUT_FILENO, b); };
  hooks.on_stderr = [](ByteView b) { client::write_all(STDERR_FILENO, b); };
  if (typed) {
    hooks.on_started = [&] { raw.emplace(STDIN_FILENO); };
    hooks.window_size = client::window_size_of(STDIN_FILENO);
  }

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
  auto* t = cmd->add_flag("-t", o->force_pty,
                          "A pseudo-terminal even when stdin is not a terminal (like ssh -tt)");
  cmd->add_flag("-T", o->no_pty,
                "No pseudo-terminal: the shell reads commands from stdin (like ssh -T)")
      ->excludes(t);
  o->tls.add_to(*cmd);
  cmd->footer(
      "With a terminal, the shell runs on a pseudo-terminal; else it reads its commands from "
      "stdin\n(ssh's rule; a warning says so). Escapes, after a newline: ~. disconnects, ~? lists "
      "them,\n~~ sends one ~.");
  cmd->callback([o, &result] { result.code = run_shell(*o); });
  return cmd;
}

}  // namespace duplex::app
