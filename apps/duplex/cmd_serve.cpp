// `duplex serve`: run the server until SIGINT/SIGTERM.
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <thread>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "duplex/core/authorized_keys.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/core/token_file.hpp"
#include "duplex/core/version.hpp"
#include "duplex/net/socket_activation.hpp"
#include "duplex/server/server.hpp"
#include "duplex/services/auth.hpp"
#include "duplex/services/exec.hpp"
#include "duplex/services/exec_settings.hpp"
#include "serve_config.hpp"
#include "systemd_notify.hpp"

namespace duplex::app {
namespace {

// Seconds, as the command line takes durations.
double seconds(std::chrono::milliseconds d) {
  return std::chrono::duration<double>(d).count();
}

// Defaults come from the structs the server uses, so --help shows the one value in force.
struct ServeOptions {
  std::vector<std::string> listen;
  std::vector<std::string> addresses;  // positional: the same as -l
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
  // TLS and who may connect (issue 7)
  bool tls = false;
  bool tls_only = false;
  std::string tls_cert;
  std::string tls_key;
  std::string authorized_keys;
  double auth_timeout_s = seconds(Limits{}.auth_deadline);
  std::uint32_t max_frame_unauthenticated = Limits{}.max_frame_unauthenticated;
  std::size_t max_unauthenticated = Limits{}.max_unauthenticated;
  std::size_t max_connections_per_address = Limits{}.max_connections_per_address;
  std::size_t reserved_connections = Limits{}.reserved_connections;
  std::size_t max_auth_failures = services::PenaltySettings{}.max_failures;
  double penalty_s = seconds(services::PenaltySettings{}.penalty);
  std::string user;
  bool allow_root = false;
  std::vector<std::string> env_allow = services::ExecPolicy{}.env_allow;
  bool proxy_protocol = false;               // behind a load balancer (issue 10)
  std::vector<std::string> trusted_proxies;  // --trusted-proxy, repeatable
  std::string metrics;                       // --metrics URL: the HTTP metrics endpoint
  std::string config;                        // --config FILE (TOML)
  bool check_config = false;  // --check-config: check the options and the file, then exit
  bool inetd = false;         // --inetd: one connection on stdin/stdout
};

// --user NAME: the account commands run as, looked up once (getpwnam_r: no static buffer).
Result<services::RunAs> lookup_user(const std::string& name) {
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd pw{};
  passwd* found = nullptr;
  const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr)
    return fail(std::errc::invalid_argument,
                fmt::format("--user {}: no such user{}", name,
                            rc != 0 ? fmt::format(" ({})", std::strerror(rc)) : ""));
  services::RunAs r;
  r.name = pw.pw_name;
  r.uid = pw.pw_uid;
  r.gid = pw.pw_gid;
  r.home = pw.pw_dir ? pw.pw_dir : "/";
  r.shell = pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh";
  return r;
}

// Fds a server keeps apart from its connections, per worker thread: listeners, each command's
// pipes, pidfds and files (the usual soft limit, 1024, is far below --max-connections' default).
constexpr std::size_t kFdReservePerThread = 64;

// Raises the open-file limit to the hard limit, as nginx and Go's runtime do, and returns how many
// connections fit in it: `wanted`, or fewer (with one warning saying why) when the fds do not.
std::size_t raise_fd_limit(std::size_t wanted, std::size_t threads) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return wanted;
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
  }
  if (r.rlim_cur == RLIM_INFINITY) return wanted;
  const std::size_t limit = static_cast<std::size_t>(r.rlim_cur);
  // Half the limit at most: a small limit (tests, containers) still serves connections.
  const std::size_t reserve = std::min(kFdReservePerThread * (threads + 1), limit / 2);
  const std::size_t fits = limit > reserve + 1 ? limit - reserve : 1;
  if (wanted <= fits) return wanted;
  spdlog::warn(
      "--max-connections lowered from {} to {}: the open-file limit is {} (RLIMIT_NOFILE, raised "
      "to its hard limit) and {} fds are kept for listeners, commands' pipes and files",
      wanted, fits, limit, reserve);
  return fits;
}

// The server's configuration as the options say (the file's already applied). Throws UsageError.
// `activated`: sockets came from the service manager, so no default address is added.
server::ServerConfig make_config(const ServeOptions& o, bool activated) {
  server::ServerConfig cfg;
  std::vector<std::string> listen = o.addresses;
  listen.insert(listen.end(), o.listen.begin(), o.listen.end());
  if (listen.empty() && !activated) listen.push_back("tcp://127.0.0.1:8080");
  for (const auto& url : listen) {
    cfg.listen.push_back(parse_url(url));
  }
  if (!o.metrics.empty()) {
    cfg.metrics = parse_url(o.metrics);
    if (!cfg.metrics->is_stream() || cfg.metrics->tls)
      throw UsageError(fmt::format(
          "--metrics {}: the metrics endpoint is plain HTTP over tcp://HOST:PORT or unix:///PATH",
          o.metrics));
  }
  cfg.multicast_if = o.multicast_if;
  cfg.threads = o.threads;
  const std::size_t threads =
      o.threads != 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  cfg.limits.max_connections = raise_fd_limit(o.max_connections, threads);
  cfg.limits.idle_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(o.idle_timeout_s * 1000));
  cfg.limits.max_frame = o.max_frame;
  cfg.grace = std::chrono::milliseconds(static_cast<std::int64_t>(o.grace_s * 1000));
  cfg.agent = std::string(duplex::agent());
  cfg.limits.auth_deadline =
      std::chrono::milliseconds(static_cast<std::int64_t>(o.auth_timeout_s * 1000));
  cfg.limits.max_frame_unauthenticated = std::min(o.max_frame_unauthenticated, o.max_frame);
  cfg.limits.max_unauthenticated = o.max_unauthenticated;
  cfg.limits.max_connections_per_address = o.max_connections_per_address;
  cfg.limits.reserved_connections = o.reserved_connections;
  cfg.tls.enabled = o.tls || o.tls_only;
  cfg.tls.only = o.tls_only;
  cfg.tls.key_path = o.tls_key;
  cfg.tls.cert_path = o.tls_cert;

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
  ex.policy.env_allow = o.env_allow;
  ex.penalties.max_failures = o.max_auth_failures;
  ex.penalties.penalty = std::chrono::milliseconds(static_cast<std::int64_t>(o.penalty_s * 1000));
  if ((ex.enabled || ex.raw) && !o.user.empty()) {
    auto who = lookup_user(o.user);
    if (!who) throw UsageError(who.message());
    if (::geteuid() != 0 && who->uid != ::geteuid())
      throw UsageError(
          fmt::format("--user {}: only a server started as root can run commands as "
                      "another user",
                      o.user));
    ex.policy.run_as = std::move(*who);
  }
  // Root without --user: refused unless --allow-root (issue 7, privilege part).
  if ((ex.enabled || ex.raw) && ::geteuid() == 0 && !ex.policy.run_as && !o.allow_root)
    throw UsageError(
        "refusing to run commands as root: add --user NAME (commands run as that account), or "
        "--allow-root if root is really meant");
  if (auto ok = services::check_env_allow(ex.policy.env_allow); !ok) throw UsageError(ok.message());
  cfg.proxy.enabled = o.proxy_protocol;
  for (const auto& t : o.trusted_proxies)
    if (auto ok = cfg.proxy.add_trusted(t); !ok) throw UsageError(ok.message());
  if (o.proxy_protocol && o.trusted_proxies.empty())
    throw UsageError(
        "--proxy-protocol needs --trusted-proxy ADDRESS (the load balancer's address or network, "
        "or unix): only those peers' PROXY headers are believed");
  if (!o.proxy_protocol && !o.trusted_proxies.empty())
    throw UsageError("--trusted-proxy takes effect only with --proxy-protocol: add it");
  return cfg;
}

// A configured address the service manager already bound (a socket unit listing the same
// port) is served by the inherited socket, never bound a second time; `tls` is the address's.
void absorb_inherited(server::ServerConfig& cfg, const std::vector<net::InheritedSocket>& sockets) {
  std::erase_if(cfg.listen, [&](const net::Endpoint& ep) {
    net::Endpoint plain = ep;
    plain.tls = false;
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (sockets[i].endpoint.url() != plain.url()) continue;
      if (i < cfg.inherited.size()) cfg.inherited[i].tls = cfg.inherited[i].tls || ep.tls;
      return true;
    }
    return false;
  });
}

// Loads the exec token (made when missing: `made` says so) and the authorized keys into `ex`.
Status load_exec_credentials(const ServeOptions& o, services::ExecSettings& ex,
                             std::string& token_path, bool& made) {
  if (!ex.enabled) return {};
  const auto path = o.token_file.empty() ? default_token_path() : o.token_file;
  struct stat st {};
  made = ::lstat(path.c_str(), &st) != 0 && errno == ENOENT;
  token_path = path;
  auto token = load_or_create_token_file(path);
  if (!token) return std::move(token).failure();
  ex.auth.token_key = services::token_key(*token);
  ex.auth.allowed_uids = o.allow_uids.empty() ? std::vector<uid_t>{::getuid()} : o.allow_uids;
  if (o.authorized_keys.empty()) return {};
  auto keys = load_authorized_keys(o.authorized_keys);
  if (!keys) return std::move(keys).failure();
  ex.auth.authorized_keys = std::make_shared<const AuthorizedKeys>(std::move(*keys));
  ex.auth.authorized_keys_path = o.authorized_keys;
  return {};
}

// `reread`, when set (--config), reads the file again over the command line's options: SIGHUP.
int run_serve(const ServeOptions& o, const std::function<const ServeOptions&()>& reread) {
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/true);
  // Taken (and removed from the environment) before anything else could pass them on.
  auto inherited = net::take_inherited_sockets();
  if (!inherited) {
    spdlog::error("socket activation: {}", inherited.message());
    return kExitFailure;
  }
  const bool activated = !inherited->empty() || o.inetd;
  server::ServerConfig cfg = make_config(o, activated);
  if (o.inetd) {
    // stdin/stdout is the connection: no listener, one thread, nothing printed on stdout.
    cfg.inetd = true;
    cfg.listen.clear();
    inherited->clear();
    cfg.threads = 1;
  }
  for (const auto& s : *inherited)
    cfg.inherited.push_back({s.fd, s.name.starts_with("tls")});
  absorb_inherited(cfg, *inherited);
  auto& ex = cfg.exec;
  if (o.check_config) {
    // Everything above has been checked (addresses, the user, the allow list); nothing is
    // bound and no file is made.
    std::printf("configuration OK: %zu listener(s)%s%s\n", cfg.listen.size() + cfg.inherited.size(),
                ex.enabled ? ", exec" : "", cfg.tls.enabled ? ", TLS" : "");
    return kExitOk;
  }
  std::string token_path;
  bool token_made = false;  // by this start: removed again if the start is refused
  if (auto ok = load_exec_credentials(o, ex, token_path, token_made); !ok) {
    if (token_made) ::unlink(token_path.c_str());
    spdlog::error("{}", ok.message());
    return kExitFailure;
  }
  // Said once the server has started (a refusal stays one line).
  std::vector<std::string> exec_notes;
  if (o.proxy_protocol)
    exec_notes.push_back(fmt::format(
        "PROXY protocol: connections from {} must start with a PROXY header (v1 or v2); their "
        "clients' addresses are used",
        fmt::join(o.trusted_proxies, ", ")));
  if (ex.enabled)
    exec_notes.push_back(
        fmt::format("exec enabled: token in {}; Unix-socket peers with uid {} need no token",
                    token_path, fmt::join(ex.auth.allowed_uids, ",")));
  if (ex.auth.authorized_keys)
    exec_notes.push_back(fmt::format("exec: {} client key(s) from {}",
                                     ex.auth.authorized_keys->keys().size(), o.authorized_keys));

  const bool cfg_raw_exec = ex.raw;
  server::Server server(std::move(cfg));
  if (reread) {
    std::vector<net::InheritedSocket> kept = std::move(*inherited);
    server.on_reload([&reread, activated, kept]() -> Result<server::ServerConfig> {
      try {
        const ServeOptions& now = reread();
        server::ServerConfig next = make_config(now, activated);
        absorb_inherited(next, kept);
        std::string path;
        bool made = false;
        if (auto ok = load_exec_credentials(now, next.exec, path, made); !ok)
          return std::move(ok).failure();
        return next;
      } catch (const std::exception& e) {  // UsageError: "FILE line N: ..." and its kind
        return fail(std::errc::invalid_argument, e.what());
      }
    });
  }
  if (auto opened = server.open(); !opened) {
    // Protected mode (judged from the bound sockets) is a matter of flags: usage, exit 2.
    if (token_made) ::unlink(token_path.c_str());  // a refused start leaves nothing behind
    if (opened.error() == errc::insecure_channel) throw UsageError(opened.message());
    spdlog::error("{}", opened.message());
    return kExitFailure;
  }
  // Only once protected mode has let it start: a refusal stays one line.
  for (const auto& note : exec_notes)
    spdlog::info("{}", note);
  if (cfg_raw_exec)
    spdlog::warn(
        "--raw-exec: anyone who can connect runs commands as this user, without authentication");
  // The contract with scripts and tests: one line per listener, once every listener is ready,
  // then the TLS key's fingerprint when there is TLS (what clients pin).
  for (const auto& url : server.urls())
    std::printf("listening on %s\n", url.c_str());
  if (const auto fp = server.fingerprint(); !fp.empty() && !o.inetd)
    std::printf("fingerprint %s\n", fp.c_str());
  if (const auto m = server.metrics_url(); !m.empty()) std::printf("metrics on %s\n", m.c_str());
  std::fflush(stdout);
  notify_service_manager(
      fmt::format("READY=1\nSTATUS=listening on {}", fmt::join(server.urls(), ", ")));
  server.run();
  notify_service_manager("STOPPING=1");
  spdlog::info("stopped");
  return kExitOk;
}

// An address option's check at parse time, so that a bad address in --config is reported with
// its line.
CLI::Validator url_check() {
  return CLI::Validator(
      [](std::string& url) -> std::string {
        try {
          parse_url(url);
        } catch (const UsageError& e) {
          return e.what();
        }
        return {};
      },
      "");
}

}  // namespace

CLI::App* add_serve(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = root.add_subcommand("serve", "Run the server (upper service) until SIGINT/SIGTERM");
  cmd->add_option("-l,--listen", o->listen,
                  "Address to listen on, repeatable: tcp://HOST:PORT, HOST:PORT, PORT (on "
                  "127.0.0.1), tcp://[::1]:PORT, tls://HOST:PORT, unix:///path or a path "
                  "(/run/x.sock, ./x.sock), udp://HOST:PORT (a multicast group joins it), "
                  "unixgram:///path (default tcp://127.0.0.1:8080; port 0 picks a free port)")
      ->type_name("URL")
      ->check(url_check());
  cmd->add_option("address", o->addresses,
                  "Addresses to listen on, as for -l (`duplex serve 8080`, `duplex serve "
                  "./duplex.sock`)")
      ->type_name("URL");
  cmd->add_option("--multicast-if", o->multicast_if,
                  "Network interface on which udp:// listeners join their multicast groups "
                  "(default: an IPv6 address's %zone, else the kernel's choice)")
      ->type_name("IFNAME");
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
                  "${XDG_CONFIG_HOME:-~/.config}/duplex/token)")
      ->type_name("FILE");
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
  cmd->add_flag("--tls", o->tls,
                "Also take TLS 1.3 clients on every stream listener (told apart by their first "
                "byte); the key and certificate are made on first use");
  cmd->add_flag("--tls-only", o->tls_only,
                "Refuse plaintext clients on every stream listener (implies --tls; a tls:// "
                "listener does this for itself)");
  cmd->add_option("--tls-cert", o->tls_cert,
                  "Certificate FILE (PEM) (default server_cert.pem beside the token)")
      ->type_name("FILE");
  cmd->add_option("--tls-key", o->tls_key,
                  "Private key FILE (PEM, 0600) (default server_key.pem beside the token)")
      ->type_name("FILE");
  cmd->add_option("--authorized-keys", o->authorized_keys,
                  "Client keys allowed to run commands over TLS: one SHA256:… fingerprint per "
                  "line, optionally restricted by command=\"…\" and from=\"…\"")
      ->type_name("FILE");
  cmd->add_option("--auth-timeout", o->auth_timeout_s,
                  "SECONDS from connect by which TLS and authentication must be done (0: none)")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_option("--max-frame-unauthenticated", o->max_frame_unauthenticated,
                  "Largest frame payload, in BYTES, from a client that has not authenticated")
      ->type_name("BYTES")
      ->capture_default_str()
      ->check(CLI::Range(256u, 1u << 30));
  cmd->add_option("--max-unauthenticated", o->max_unauthenticated,
                  "Connections not yet authenticated at once; past it the oldest is dropped "
                  "(0: no cap)")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--max-connections-per-address", o->max_connections_per_address,
                  "Open connections from one client address (0: no cap)")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--reserved-connections", o->reserved_connections,
                  "Of --max-connections, slots kept for Unix-socket clients of an allowed uid")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--max-auth-failures", o->max_auth_failures,
                  "Failed authentications from one address within a minute before it is refused "
                  "for a while (0: never)")
      ->type_name("N")
      ->capture_default_str();
  cmd->add_option("--penalty", o->penalty_s,
                  "SECONDS an address is refused after too many failures (doubles while it goes "
                  "on failing, up to 10 minutes)")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--user", o->user,
                  "Run commands as this account (server started as root); no supplementary "
                  "groups")
      ->type_name("NAME");
  cmd->add_flag("--allow-root", o->allow_root,
                "Let a server started as root run commands as root (without --user)");
  cmd->add_option("--env-allow", o->env_allow,
                  "Names of client-supplied environment variables let through, repeatable; "
                  "NAME* matches a prefix (LD_*, BASH_ENV, ENV, IFS never)")
      ->type_name("NAME")
      ->capture_default_str();
  cmd->add_flag("--proxy-protocol", o->proxy_protocol,
                "Behind a load balancer: connections from a --trusted-proxy must start with a "
                "PROXY header (HAProxy's v1 or v2), and the client it names is used for limits, "
                "logs and authorized_keys' from=; other peers are served directly, and refused if "
                "they send one");
  cmd->add_option("--trusted-proxy", o->trusted_proxies,
                  "A load balancer allowed to send PROXY headers, repeatable: an IP address, "
                  "ADDRESS/BITS, a glob (10.0.0.*), or unix for every Unix-socket peer")
      ->type_name("ADDRESS")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            // Checked here too, so that a bad value in --config is reported with its line.
            server::ProxySettings probe;
            auto ok = probe.add_trusted(text);
            return ok ? std::string() : ok.message();
          },
          ""));
  cmd->add_option("--metrics", o->metrics,
                  "Serve Prometheus metrics over plain HTTP (GET /metrics) on this address: "
                  "tcp://127.0.0.1:PORT, a PORT, or unix:///path; off by default")
      ->type_name("URL")
      ->check(url_check());
  cmd->add_option("--config", o->config,
                  "Read options from a TOML FILE: one `option-name = value` per line (a list "
                  "for a repeatable option, true/false for a flag); the command line wins")
      ->type_name("FILE");
  cmd->add_flag("--inetd", o->inetd,
                "Serve one connection on stdin/stdout and exit when it ends, as inetd or a "
                "systemd socket with Accept=yes starts it (a socket, or pipes: printf 'hi\\n' | "
                "duplex serve --inetd); no listener, logs on stderr");
  cmd->add_flag("--check-config", o->check_config,
                "Check the options and the --config file, print one line, and exit (0 if good)");
  cmd->callback([o, cmd, &result] {
    if (o->config.empty()) {
      result.code = run_serve(*o, nullptr);
      return;
    }
    // What the command line said, kept for SIGHUP: the file is read again over it, and an
    // option the file no longer sets goes back to its default.
    const ServeOptions from_command_line = *o;
    std::set<std::string> given;
    for (const CLI::Option* opt : cmd->get_options())
      if (opt->count() > 0) given.insert(opt->get_name());
    apply_config_file(*cmd, o->config);
    const std::function<const ServeOptions&()> reread = [o, cmd, from_command_line,
                                                         given]() -> const ServeOptions& {
      *o = from_command_line;
      for (CLI::Option* opt : cmd->get_options())
        if (given.count(opt->get_name()) == 0) opt->clear();
      apply_config_file(*cmd, o->config);
      return *o;
    };
    result.code = run_serve(*o, reread);
  });
  return cmd;
}

}  // namespace duplex::app
