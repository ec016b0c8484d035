// Shared pieces of the command line: exit codes, usage errors, URL parsing, logging set-up.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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

/// The URL for an address as people type it: a bare port (8080, :8080) is tcp://127.0.0.1:PORT,
/// a path (/run/x.sock, ./x.sock, ../x.sock) a Unix socket, and a ./ or ../ path after unix://,
/// unixgram:// or tls+unix:// is made absolute against the working directory. Anything else is
/// returned as it is.
std::string spell_out_address(const std::string& typed);
/// Parses an address (after spell_out_address) or throws UsageError("bad URL 'x': why").
net::Endpoint parse_url(const std::string& url);

/// Configures the stderr logger: level from --log-level, else from -v/-q counts (base: info for
/// servers, warn for clients); --log-format text or json (one object per line); no colour when
/// NO_COLOR is set; every line cut at kMaxLogLine bytes.
void setup_logging(int verbose, int quiet, bool server);
inline constexpr std::size_t kMaxLogLine = 4096;

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
CLI::App* add_stats(CLI::App& root, CommandResult& result);
/// `duplex completion bash|zsh` and the hidden `duplex manpage` (both read the other commands).
CLI::App* add_docs(CLI::App& root, CommandResult& result);

/// Names each option's value by what it is (SECONDS, BYTES, N, URL) rather than its C++ type and
/// range, in --help, the manual page and the completions. Call once every command is added.
void words_for_types(CLI::App& app);
/// A mistyped command, an unknown option, or a dash-led argument that is not an option (`send URL
/// -hello`), as the one-line error to print (exit 2) with the nearest existing name; nullopt when
/// the command line reads well (CLI11 then parses it).
std::optional<std::string> misspelled(const CLI::App& root, int argc, char** argv);

/// True when `opt` ("--timeout", "-c") is an option of `app` (or of the root) that takes the
/// next word as its value, whatever that word looks like.
bool option_takes_value(const CLI::App& app, std::string_view opt);
/// The command line with a Host alias from the client config expanded (`duplex exec web1 …`):
/// the alias becomes its Address, and its TokenFile, Identity, Fingerprint, KnownHosts and Trust
/// become the options they name unless the command line gave them. Throws UsageError for a
/// config file that cannot be read or parsed.
std::vector<std::string> expand_host_alias(const CLI::App& root, std::vector<std::string> args);

/// Verbosity flags shared by all subcommands (set on the root app).
struct Verbosity {
  int verbose = 0;
  int quiet = 0;
  std::string level;            // --log-level: overrides -v/-q when set
  std::string format = "text";  // --log-format text|json
};
Verbosity& verbosity();

}  // namespace duplex::app
