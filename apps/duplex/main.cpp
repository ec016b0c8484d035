// duplex: the command-line entry point. The only catch-all of the program lives here.
#include <csignal>
#include <cstdio>
#include <exception>
#include <string_view>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "duplex/core/version.hpp"

namespace {

// `duplex --version`: the version, then the build and its features (what a bug report needs).
std::string version_text() {
  return fmt::format(
      "duplex {}\nbuild: {}, {}, GCC {}.{}\nfeatures: tcp, unix, udp, unixgram, tls ({}), exec, "
      "pty, config (TOML), systemd (notify), man page, bash/zsh completion",
      duplex::version(), DUPLEX_BUILD_TYPE,
      DUPLEX_STATIC_DEPS ? "libraries linked in (glibc shared)" : "shared libraries", __GNUC__,
      __GNUC_MINOR__, OpenSSL_version(OPENSSL_VERSION));
}

}  // namespace

namespace duplex::app {
namespace {

struct Command {
  std::string_view name;
  CLI::App* (*add)(CLI::App&, CommandResult&);
};

// Every subcommand but the documentation ones, in --help's order.
constexpr Command kCommands[] = {
    {"serve", add_serve},   {"send", add_send},
    {"chat", add_chat},     {"exec", add_exec},
    {"shell", add_shell},   {"discover", add_discover},
    {"keygen", add_keygen}, {"fingerprint", add_fingerprint},
    {"bench", add_bench},   {"stats", add_stats},
};

// The subcommand named by the command line's first word that is not an option, if it is one of
// kCommands. A value of a root option (--log-level debug) is that word too: no command, so all.
const Command* named_command(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "--") break;
    if (word.empty() || word.front() == '-') continue;
    for (const auto& c : kCommands)
      if (c.name == word) return &c;
    break;
  }
  return nullptr;
}

}  // namespace
}  // namespace duplex::app

int main(int argc, char** argv) {
  using namespace duplex::app;
  // Writes to a closed socket or pipe must fail with EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{
      "duplex: a socket toolkit: an upper-case echo server and remote command execution "
      "over TCP, IPv6 and Unix sockets"};
  app.set_version_flag("--version", version_text, "Print the version and what this build has");
  app.require_subcommand(1);
  app.fallthrough();  // -v/-q are accepted after the subcommand too
  auto& v = verbosity();
  app.add_flag("-v,--verbose", v.verbose, "More log output (repeatable)");
  app.add_flag("-q,--quiet", v.quiet, "Less log output (repeatable)");
  app.add_option("--log-level", v.level, "Log LEVEL: trace, debug, info, warn, error or off")
      ->type_name("LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  app.add_option("--log-format", v.format, "Log lines as text or json (one object per line)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"text", "json"}));

  CommandResult result;
  // A command line that names its subcommand gets that one alone: building the others' options
  // cost a `duplex exec` more instructions than its connection and command together. Anything
  // else (help, a typo, the documentation commands) gets them all.
  if (const Command* named = named_command(argc, argv)) {
    named->add(app, result);
  } else {
    for (const auto& c : kCommands)
      c.add(app, result);
    add_docs(app, result);  // last: it lists the commands above
  }
  words_for_types(app);

  app.name("duplex");  // the usage line names the command, not the path it was run by
  if (argc < 2) {
    // Alone, it lists what it can do (as git does), and says that was not a command.
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  // A Host alias of the client config, expanded as if its settings had been typed.
  std::vector<std::string> args(argv, argv + argc);
  try {
    args = expand_host_alias(app, std::move(args));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "duplex: %s\n", e.what());
    return kExitUsage;
  }
  std::vector<char*> args_c;
  for (auto& a : args)
    args_c.push_back(a.data());
  const int args_n = static_cast<int>(args_c.size());
  args_c.push_back(nullptr);
  if (auto wrong = misspelled(app, args_n, args_c.data())) {
    std::fprintf(stderr, "duplex: %s\n", wrong->c_str());
    return kExitUsage;
  }
  try {
    app.parse(args_n, args_c.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "duplex: %s (see --help)\n", e.what());
    return kExitUsage;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "duplex: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duplex: %s\n", e.what());
    return kExitFailure;
  }
  return result.code;
}
