// Shared pieces of the command line: exit codes, usage errors, URL parsing, logging set-up.
#pragma once

#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "duplex/net/endpoint.hpp"

namespace duplex::app {

/// Exit codes (README): 0 ok, 1 runtime failure, 2 usage, 255 connection/protocol/auth
/// failure of the exec client, 128+N killed by signal N.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/// A mistake in how the command was called: printed as one line, exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses a URL argument or throws UsageError("bad URL 'x': why").
net::Endpoint parse_url(const std::string& url);

/// Configures the stderr logger: level from -v/-q counts (base: info for servers, warn for
/// clients).
void setup_logging(int verbose, int quiet, bool server);

/// What a subcommand leaves behind for main: its exit code.
struct CommandResult {
  int code = 0;
};

CLI::App* add_serve(CLI::App& root, CommandResult& result);
CLI::App* add_send(CLI::App& root, CommandResult& result);
CLI::App* add_chat(CLI::App& root, CommandResult& result);
CLI::App* add_exec(CLI::App& root, CommandResult& result);
CLI::App* add_shell(CLI::App& root, CommandResult& result);
CLI::App* add_discover(CLI::App& root, CommandResult& result);
CLI::App* add_keygen(CLI::App& root, CommandResult& result);
CLI::App* add_fingerprint(CLI::App& root, CommandResult& result);
CLI::App* add_bench(CLI::App& root, CommandResult& result);
/// `duplex completion bash|zsh` and the hidden `duplex manpage` (both read the other commands).
CLI::App* add_docs(CLI::App& root, CommandResult& result);

/// Verbosity flags shared by all subcommands (set on the root app).
struct Verbosity {
  int verbose = 0;
  int quiet = 0;
};
Verbosity& verbosity();

}  // namespace duplex::app
