// `duplex serve`: run the server until SIGINT/SIGTERM.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <thread>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "duplex/core/token_file.hpp"
#include "duplex/core/version.hpp"
#include "duplex/server/server.hpp"
#include "duplex/services/exec_settings.hpp"

namespace duplex::app {
namespace {

// Seconds, as the command line takes durations.
double seconds(std::chrono::milliseconds d) {
  return std::chrono::duration<double>(d).count();
}

// Defaults come from the structs the server uses, so --help shows the one value in force.
struct ServeOptions {
  std::vector<std::string> listen;
  std::string multicast_if;
  std::size_t threads = 0;
  std::size_t max_connections = Limits{}.max_connections;
  double idle_timeout_s = seconds(Limits{}.idle_timeout);
  std::uint32_t max_frame = Limits{}.max_frame;
  double grace_s = seconds(server::ServerConfig{}.grace);
  bool exec = false;
  bool raw_exec = false;
  std::string token_file;
  std::vector<uid_t> allow_uids;
  std::size_t max_commands = services::ExecSettings{}.max_commands;
  std::size_t max_commands_per_client = services::ExecSettings{}.max_commands_per_client;
  std::size_t max_queued_per_client = services::ExecSettings{}.max_queued_per_client;
  double max_queue_wait_s = seconds(services::ExecSettings{}.max_queue_wait);
  double command_timeout_s = seconds(services::ExecPolicy{}.max_timeout);
  std::uint64_t max_output = services::ExecPolicy{}.max_output;
  double kill_grace_s = seconds(services::ExecPolicy{}.kill_grace);
};

// Each connection is an fd: the usual soft limit (1024) would cap the server far below its
// --max-connections default, so raise it to the hard limit, as nginx and Go's runtime do.
void raise_fd_limit(std::size_t wanted) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur >= r.rlim_max) return;
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur < wanted + 64)
    spdlog::warn("open-file limit is {}: fewer than --max-connections ({}) can be served",
                 r.rlim_cur, wanted);
}

int run_serve(const ServeOptions& o) {
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/true);
  raise_fd_limit(o.max_connections);
  server::ServerConfig cfg;
  for (const auto& url :
       o.listen.empty() ? std::vector<std::string>{"tcp://127.0.0.1:8080"} : o.listen) {
    cfg.listen.push_back(parse_url(url));
  }
  cfg.multicast_if = o.multicast_if;
  cfg.threads = o.threads;
  cfg.limits.max_connections = o.max_connections;
  cfg.limits.idle_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(o.idle_timeout_s * 1000));
  cfg.limits.max_frame = o.max_frame;
  cfg.grace = std::chrono::milliseconds(static_cast<std::int64_t>(o.grace_s * 1000));
  cfg.agent = std::string(duplex::agent());

  auto& ex = cfg.exec;
  ex.enabled = o.exec;
  ex.raw = o.raw_exec;
  ex.max_commands = o.max_commands;
  ex.max_commands_per_client = o.max_commands_per_client;
  ex.max_queued_per_client = o.max_queued_per_client;
  ex.max_queue_wait =
      std::chrono::milliseconds(static_cast<std::int64_t>(o.max_queue_wait_s * 1000));
  ex.policy.max_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(o.command_timeout_s * 1000));
  ex.policy.max_output = o.max_output;
  ex.policy.kill_grace =
      std::chrono::milliseconds(static_cast<std::int64_t>(o.kill_grace_s * 1000));
  if (ex.enabled || ex.raw) {
    // A remote shell on the network without TLS would send the token and every byte in clear.
    for (const auto& ep : cfg.listen)
      if (!ep.is_loopback())
        throw UsageError(
            fmt::format("refusing {} on {}: it is not a loopback address or a Unix socket, and "
                        "duplex has no TLS yet; listen on 127.0.0.1, [::1] or unix:// instead",
                        ex.raw ? "--raw-exec" : "--exec", ep.url()));
  }
  if (ex.enabled) {
    const auto path = o.token_file.empty() ? default_token_path() : o.token_file;
    auto token = load_or_create_token_file(path);
    if (!token) {
      spdlog::error("{}", token.message());
      return kExitFailure;
    }
    ex.auth.token = *token;
    ex.auth.allowed_uids = o.allow_uids.empty() ? std::vector<uid_t>{::getuid()} : o.allow_uids;
    spdlog::info("exec enabled: token in {}; Unix-socket peers with uid {} need no token", path,
                 fmt::join(ex.auth.allowed_uids, ","));
  }
  if (ex.raw)
    spdlog::warn(
        "--raw-exec: anyone who can connect runs commands as this user, without authentication");

  server::Server server(std::move(cfg));
  if (auto opened = server.open(); !opened) {
    spdlog::error("{}", opened.message());
    return kExitFailure;
  }
  // The contract with scripts and tests: one line per listener, once every listener is ready.
  for (const auto& url : server.urls())
    std::printf("listening on %s\n", url.c_str());
  std::fflush(stdout);
  server.run();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace

CLI::App* add_serve(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = root.add_subcommand("serve", "Run the server (upper service) until SIGINT/SIGTERM");
  cmd->add_option("-l,--listen", o->listen,
                  "Address to listen on, repeatable: tcp://HOST:PORT, HOST:PORT, tcp://[::1]:PORT, "
                  "unix:///abs/path, udp://HOST:PORT (a multicast group joins it), "
                  "unixgram:///abs/path (default tcp://127.0.0.1:8080; port 0 picks a free port)");
  cmd->add_option("--multicast-if", o->multicast_if,
                  "Network interface on which udp:// listeners join their multicast groups "
                  "(default: an IPv6 address's %zone, else the kernel's choice)");
  cmd->add_option("-t,--threads", o->threads, "Event-loop threads (default: one per core)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-connections", o->max_connections,
                  "Open connections at most; one more is refused at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  cmd->add_option("--idle-timeout", o->idle_timeout_s,
                  "Close a connection silent for this many seconds (0: never)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--max-frame", o->max_frame, "Largest frame payload accepted, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(1024u, 1u << 30));
  cmd->add_option("--grace", o->grace_s, "Seconds a stop waits for sessions to end")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_flag("--exec", o->exec, "Enable the exec service (authenticated remote commands)");
  cmd->add_flag(
      "--raw-exec", o->raw_exec,
      "Run each chunk from a raw (seed protocol) client as a shell command, like the tutorial's "
      "remote_server.py; no authentication, so loopback and Unix sockets only");
  cmd->add_option("--token-file", o->token_file,
                  "Exec token file, created 0600 with a random token when missing (default "
                  "${XDG_CONFIG_HOME:-~/.config}/duplex/token)");
  cmd->add_option(
      "--allow-uid", o->allow_uids,
      "Unix-socket peer uid allowed without a token, repeatable (default: this server's uid)");
  cmd->add_option("--max-commands", o->max_commands, "Commands running at once on this server")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--max-commands-per-client", o->max_commands_per_client,
                  "Commands running at once per client address or uid")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--max-queued-per-client", o->max_queued_per_client,
                  "Commands of one client that may wait for a free slot when it (or the server) "
                  "runs as many as allowed; one more is refused at once (0: refuse at once)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--max-queue-wait", o->max_queue_wait_s,
                  "Seconds a waiting command may wait for a free slot before it is refused")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--command-timeout", o->command_timeout_s,
                  "Longest a command may run, in seconds, before SIGTERM (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--max-output", o->max_output,
                  "Output bytes per command before it is ended (0: unlimited)")
      ->capture_default_str();
  cmd->add_option("--kill-grace", o->kill_grace_s,
                  "Seconds between SIGTERM and SIGKILL when a command is ended")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  cmd->callback([o, &result] { result.code = run_serve(*o); });
  return cmd;
}

}  // namespace duplex::app
