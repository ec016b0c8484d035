// duplex: the command-line entry point. The only catch-all of the program lives here.
#include <csignal>
#include <cstdio>
#include <exception>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "duplex/core/version.hpp"

int main(int argc, char** argv) {
  using namespace duplex::app;
  // Writes to a closed socket or pipe must fail with EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  CLI::App app{
      "duplex: a socket toolkit: an upper-case echo server and remote command execution "
      "over TCP, IPv6 and Unix sockets"};
  app.set_version_flag("--version", std::string("duplex ") + duplex::version());
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
  add_serve(app, result);
  add_send(app, result);
  add_chat(app, result);
  add_exec(app, result);
  add_shell(app, result);
  add_discover(app, result);
  add_keygen(app, result);
  add_fingerprint(app, result);
  add_bench(app, result);
  add_docs(app, result);  // last: it lists the commands above
  words_for_types(app);

  app.name("duplex");  // the usage line names the command, not the path it was run by
  if (argc < 2) {
    // Alone, it lists what it can do (as git does), and says that was not a command.
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  if (auto wrong = misspelled(app, argc, argv)) {
    std::fprintf(stderr, "duplex: %s\n", wrong->c_str());
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
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
