// `duplex stats URL [--json] [--sort KEY]`: a running server's connections and counters, from
// inside it (the tutorial's `netstat -an`). Authenticates as `duplex exec` does.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli.hpp"
#include "client_common.hpp"
#include "duplex/client/exec_session.hpp"
#include "duplex/client/stats.hpp"
#include "duplex/client/terminal.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/core/exit_status.hpp"
#include "duplex/core/token_file.hpp"
#include "duplex/core/version.hpp"

namespace duplex::app {
namespace {

struct StatsOptions {
  std::string url;
  bool json = false;
  std::string sort = "age";
  double timeout_s = 10.0;
  std::string token_file;
  TlsClientFlags tls;
};

// What the user reads for a failure: the server's refusal says why; an auth failure only that.
std::string described(const Failure& f, const std::string& url) {
  if (f.code == errc::auth_failed) return "authentication failed";
  if (f.code == errc::service_disabled)
    return fmt::format(
        "{} serves no exec, so there is no authentication for stats: ask over its Unix socket as "
        "the user it runs as, or start it with --exec",
        url);
  return f.message();
}

int run_stats(const StatsOptions& o) {
  client::ExecRequest req = exec_request_for("stats", o.url, o.tls);
  const auto sort = client::parse_stats_sort(o.sort);
  if (!sort)
    throw UsageError(fmt::format("--sort {}: expected age, idle, bytes, peer or id", o.sort));
  req.agent = std::string(duplex::agent());
  // A token is needed only if the server asks for one (its owner on its Unix socket is answered
  // without): a token that cannot be read is reported only then.
  auto token = resolve_token(o.token_file);
  std::string token_problem;
  if (token)
    req.token = *token;
  else
    token_problem = token.message();

  asio::io_context ctx(1);
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  const auto doc = run_sync(ctx, client::fetch_stats(req, timeout));
  if (!doc) {
    const bool no_token = !token_problem.empty() && doc.failure().code == errc::auth_failed;
    std::fprintf(
        stderr, "duplex: %s\n",
        no_token ? token_problem.c_str() : described(doc.failure(), req.endpoint.url()).c_str());
    return kExitConnection;
  }
  if (o.json) {
    client::write_all(STDOUT_FILENO, as_bytes(*doc + "\n"));
    return kExitOk;
  }
  const auto table = client::stats_table(*doc, *sort);
  if (!table) {
    std::fprintf(stderr, "duplex: %s (try --json)\n", table.message().c_str());
    return kExitConnection;
  }
  client::write_all(STDOUT_FILENO, as_bytes(*table));
  return kExitOk;
}

}  // namespace

CLI::App* add_stats(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<StatsOptions>();
  auto* cmd = root.add_subcommand(
      "stats", "Show a running server's connections and counters (authenticates as exec does)");
  cmd->footer(
      "Exit status: 0 shown; 255 connection, protocol or authentication failure (a client that\n"
      "cannot authenticate, or the server has no --exec and this is no Unix socket of its "
      "owner).");
  cmd->add_option("url", o->url,
                  "Server address (tls://HOST:PORT, tcp://HOST:PORT, HOST:PORT, unix:///path, "
                  "tls+unix:///path)")
      ->required();
  cmd->add_flag("--json", o->json, "Print the server's JSON document as it came");
  cmd->add_option("--sort", o->sort,
                  "Order of the connections: age (oldest first), idle (longest idle first), bytes "
                  "(most first), peer, id")
      ->type_name("KEY")
      ->capture_default_str();
  cmd->add_option("--timeout", o->timeout_s, "SECONDS to wait for the answer (0: forever)")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--token-file", o->token_file,
                  "Token file (default: $DUPLEX_TOKEN, then ~/.config/duplex/token)");
  o->tls.add_to(*cmd);
  auto& v = verbosity();
  cmd->add_flag("-v,--verbose", v.verbose, "More log output (repeatable)");
  cmd->add_flag("-q,--quiet", v.quiet, "Less log output (repeatable)");
  cmd->callback([o, &result] { result.code = run_stats(*o); });
  return cmd;
}

}  // namespace duplex::app
