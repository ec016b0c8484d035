// `duplex exec URL [--] CMD [ARG...]` / `duplex exec URL -c STRING`: one remote command.
// Like `ssh host CMD`, but with the argv kept exact; with no command, a login shell (`ssh host`).
// Options in, exit status out; the work is in duplex/client/exec_session.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli.hpp"
#include "client_common.hpp"
#include "duplex/client/exec_result.hpp"
#include "duplex/client/exec_session.hpp"
#include "duplex/client/terminal.hpp"
#include "duplex/client/text.hpp"
#include "duplex/core/exit_status.hpp"
#include "duplex/core/token_file.hpp"
#include "duplex/core/version.hpp"
#include "duplex/proc/pipe.hpp"

namespace duplex::app {
namespace {

constexpr std::size_t kSmallOutput = 64 * 1024;   // the server's first read of a command's output
constexpr std::size_t kStdoutPipe = 1024 * 1024;  // the server's largest frame, by default

struct ExecOptions {
  std::string url;
  std::string shell_string;       // -c
  bool has_shell_string = false;  // -c was given (even as '')
  bool no_stdin = false;          // -n
  bool pty = false;               // -t
  bool no_pty = false;            // -T
  bool json = false;
  std::vector<std::string> env;
  std::string cwd;
  double timeout_s = 0;
  std::string encoding;
  std::string token_file;
  TlsClientFlags tls;
  std::vector<std::string> after_separator;  // CMD ARG... given after `--`
};

// The command's argv, from one of the two places CLI11 leaves it (see add_exec).
std::vector<std::string> command_argv(const ExecOptions& o, const CLI::App& cmd) {
  if (!o.after_separator.empty()) return o.after_separator;
  std::vector<std::string> rest = cmd.remaining();
  if (rest == std::vector<std::string>{"--"}) return {};
  // Before CMD, only our own options may appear: a leading "-x" is an option we do not know.
  if (!rest.empty() && rest.front().size() > 1 && rest.front().front() == '-')
    throw UsageError(fmt::format("unknown option '{}' (put the command after --)", rest.front()));
  return rest;
}

wire::ExecStart build_start(const ExecOptions& o, std::vector<std::string> argv) {
  wire::ExecStart s;
  const bool has_cmd = !argv.empty();
  if (o.has_shell_string && has_cmd)
    throw UsageError("give either CMD [ARG...] or -c 'SHELL STRING', not both");
  bool pty = o.pty;
  if (o.has_shell_string) {
    s.shell = true;
    s.argv = {o.shell_string};
  } else if (has_cmd) {
    s.argv = std::move(argv);
  } else {
    // No command: the account's login shell, as `ssh host` opens it (and as `duplex shell`).
    s.login = true;
    pty = shell_wants_pty(o.pty      ? PtyChoice::force
                          : o.no_pty ? PtyChoice::never
                                     : PtyChoice::automatic);
  }
  for (const auto& kv : o.env) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError(fmt::format("-e '{}': expected KEY=VALUE", kv));
    s.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  s.cwd = o.cwd;
  s.timeout_ms = static_cast<std::uint32_t>(std::llround(o.timeout_s * 1000));
  if (pty) {
    const auto size = client::terminal_size(STDIN_FILENO).value_or(client::TerminalSize{});
    s.pty = true;
    s.rows = size.rows;
    s.cols = size.cols;
    const char* term = std::getenv("TERM");
    s.term = term && *term ? term : "dumb";
  }
  return s;
}

int run_exec_command(const ExecOptions& o, const CLI::App& cmd) {
  client::ExecRequest req = exec_request_for("exec", o.url, o.tls);
  req.start = build_start(o, command_argv(o, cmd));

  std::optional<client::Transcoder> out_tr, err_tr;
  if (!o.encoding.empty()) {
    auto out = client::Transcoder::open(o.encoding);
    auto err = client::Transcoder::open(o.encoding);
    if (!out || !err) throw UsageError(fmt::format("--encoding: {}", out.message()));
    out_tr.emplace(std::move(*out));
    err_tr.emplace(std::move(*err));
  }

  auto token = resolve_token_with_source(o.token_file);
  if (!token) {
    std::fprintf(stderr, "duplex: %s\n", token.message().c_str());
    return kExitConnection;
  }
  req.token = token->token;
  req.token_source = token->source;
  req.stdin_fd = o.no_stdin ? -1 : STDIN_FILENO;
  req.agent = std::string(duplex::agent());
  // Ctrl-C and Ctrl-\ reach the remote command, and we keep waiting for its exit; a second
  // Ctrl-C within 2 s gives up waiting. kill and hang-up end our side at once. Either way we
  // disconnect, and the server ends the command.
  req.forward_signals = {SIGINT, SIGQUIT};
  req.stop_signals = {SIGTERM, SIGHUP};
  req.double_interrupt_stops = true;

  // Output: streamed to fd 1/2 as it comes, or kept for the one --json object.
  std::string out_text, err_text;
  auto convert = [](std::optional<client::Transcoder>& tr, ByteView b) {
    return tr ? tr->feed(b) : std::string(as_chars(b));
  };
  client::ExecHooks hooks;
  if (o.json) {
    hooks.on_stdout = [&](ByteView b) {
      out_text += convert(out_tr, b);
      return true;
    };
    hooks.on_stderr = [&](ByteView b) { err_text += convert(err_tr, b); };
  } else if (out_tr) {
    hooks.on_stdout = [&](ByteView b) {
      return client::write_all(STDOUT_FILENO, as_bytes(out_tr->feed(b)));
    };
    hooks.on_stderr = [&](ByteView b) {
      client::write_all(STDERR_FILENO, as_bytes(err_tr->feed(b)));
    };
  } else {
    // Bulk output (frames past the server's first 64 KiB read) into a pipe: a larger pipe lets
    // us hand over a whole frame while the reader drains it, instead of waking it and waiting
    // every 64 KiB (`duplex exec … | cat` spent most of its time there). Asked once; a file or a
    // terminal is left as it is.
    hooks.on_stdout = [asked = false](ByteView b) mutable {
      if (!asked && b.size() > kSmallOutput) {
        asked = true;
        proc::grow_pipe(STDOUT_FILENO, kStdoutPipe);
      }
      return client::write_all(STDOUT_FILENO, b);
    };
    hooks.on_stderr = [](ByteView b) { client::write_all(STDERR_FILENO, b); };
    // A pipe takes bulk output straight from the socket (splice), which never calls the hook
    // above: grow it now (one fcntl), as the hook would at the first bulk frame.
    struct stat st {};
    if (::fstat(STDOUT_FILENO, &st) == 0 && S_ISFIFO(st.st_mode)) {
      hooks.stdout_pipe = STDOUT_FILENO;
      proc::grow_pipe(STDOUT_FILENO, kStdoutPipe);
    }
  }

  // -t on a terminal: the remote PTY does the echo and line editing, so ours steps aside
  // (Ctrl-C then travels as a byte, as with ssh -t), and window changes follow.
  std::optional<client::RawMode> raw;
  if (req.start.pty && client::is_terminal(STDIN_FILENO)) {
    hooks.on_started = [&] { raw.emplace(STDIN_FILENO); };
    hooks.window_size = client::window_size_of(STDIN_FILENO);
    req.escapes = !o.no_stdin;  // `~.` after a newline leaves a hung session
  }

  asio::io_context ctx(1);
  const client::ExecResult r = run_sync(ctx, client::run_exec(req, hooks));
  raw.reset();  // the terminal is back to normal before we say anything

  if (out_tr) {
    const std::string tail = out_tr->finish();
    if (o.json)
      out_text += tail;
    else
      client::write_all(STDOUT_FILENO, as_bytes(tail));
  }
  if (err_tr) {
    const std::string tail = err_tr->finish();
    if (o.json)
      err_text += tail;
    else
      client::write_all(STDERR_FILENO, as_bytes(tail));
  }
  if (o.json) {
    const std::string j = client::result_json(r, out_text, err_text, req.start) + "\n";
    client::write_all(STDOUT_FILENO, as_bytes(j));
  } else if (const std::string line = client::end_message(r, req.start); !line.empty()) {
    std::fprintf(stderr, "duplex: %s\n", line.c_str());
  }
  return client::exit_status(r);
}

}  // namespace

CLI::App* add_exec(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<ExecOptions>();
  auto* cmd = root.add_subcommand("exec",
                                  "Run a command on a duplex server (serve --exec) with its stdin, "
                                  "stdout, stderr and exit status");
  cmd->footer(
      "Forms:\n  duplex exec [OPTIONS] URL [--] CMD [ARG...]   argv passed exactly, no shell\n"
      "  duplex exec [OPTIONS] URL -c 'SHELL STRING'   run with /bin/sh -c\n"
      "  duplex exec [OPTIONS] URL                     a login shell (as duplex shell)\n"
      "Unlike ssh, a single word such as 'ls | wc -l' is a program name, not a shell line: it "
      "fails\n(127, with a hint); give shell lines with -c.\n"
      "Exit status: the command's; 128+N if killed by signal N; 127 not found; 126 cannot "
      "execute\n"
      "or no such --cwd; 255 connection, protocol or authentication failure.\n"
      "Ctrl-C is passed to the command; a second Ctrl-C within 2 s, SIGTERM or SIGHUP disconnect "
      "at once\n(the server then ends the command). On a pseudo-terminal typed at a terminal, "
      "~. after a newline\ndisconnects, ~? lists the escapes, ~~ sends one ~.");
  cmd->add_option("url", o->url,
                  "Server address (tls://HOST:PORT, tcp://HOST:PORT, HOST:PORT, unix:///path, "
                  "tls+unix:///path)")
      ->required();
  auto* c_opt =
      cmd->add_option("-c", o->shell_string, "Run this string with /bin/sh -c instead of CMD");
  cmd->add_flag("-n", o->no_stdin,
                "Do not read stdin; the command gets end of file at once (like ssh -n)");
  auto* t = cmd->add_flag("-t", o->pty, "Run the command on a pseudo-terminal (like ssh -t)");
  cmd->add_flag("-T", o->no_pty,
                "No pseudo-terminal for the login shell opened when no command is given (like ssh "
                "-T)")
      ->excludes(t);
  cmd->add_option("-e", o->env, "Set KEY=VALUE in the command's environment (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--cwd", o->cwd, "Working directory of the command");
  cmd->add_option("--timeout", o->timeout_s, "Seconds the command may run (0: the server's limit)")
      ->check(CLI::Range(0.0, 4.0e6));
  cmd->add_flag("--json", o->json,
                "Print one JSON object: stdout, stderr, exit_code, signal, duration_ms, ...");
  cmd->add_option("--encoding", o->encoding,
                  "Convert the output from this character set (e.g. gbk) to UTF-8");
  cmd->add_option("--token-file", o->token_file,
                  "Token file (default: $DUPLEX_TOKEN, then ~/.config/duplex/token)");
  o->tls.add_to(*cmd);
  auto& v = verbosity();
  cmd->add_flag("-v,--verbose", v.verbose, "More log output (repeatable)");
  cmd->add_flag("-q,--quiet", v.quiet, "Less log output (repeatable)");

  // The command and its arguments must arrive exactly as typed, even words that look like our
  // options (`duplex exec URL ls -l -c x`). CLI11 2.1 has no "rest of the line" positional, so:
  // - prefix_command: from the first word that is no option of ours and no URL (CMD), every
  //   word is left untouched in remaining();
  // - fallthrough off: otherwise that word would be offered to the root command and rejected;
  // - `--` then CMD: CLI11 would hand `--` back to the root command unless a positional were
  //   still open, so `command` is one, and its validator (run on positionals, thanks to
  //   validate_positionals) takes words only once `--` has been seen. After `--` CLI11 reads
  //   every word as a positional, so all of them land in `command` unchanged.
  cmd->fallthrough(false);
  cmd->prefix_command();
  cmd->validate_positionals();
  cmd->add_option("command", o->after_separator,
                  "The command and its arguments, passed exactly (after --)")
      ->check(CLI::Validator(
          [cmd](std::string&) -> std::string {
            const auto rest = cmd->remaining();
            return std::find(rest.begin(), rest.end(), "--") != rest.end() ? "" : "not after --";
          },
          "", "after --"));
  cmd->callback([o, cmd, c_opt, &result] {
    o->has_shell_string = c_opt->count() > 0;
    result.code = run_exec_command(*o, *cmd);
  });
  return cmd;
}

}  // namespace duplex::app
