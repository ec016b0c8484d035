// Server: a front per --listen address, the workers, signals, graceful stop; owns every session.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "duplex/core/limits.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

/// TLS for stream listeners. On when `enabled` or when any listener is tls://.
struct TlsSettings {
  bool enabled = false;  // --tls: every stream listener also takes TLS clients (first-byte sniff)
  bool only = false;     // --tls-only: every stream listener refuses plaintext clients
  std::string key_path;  // empty: ${XDG_CONFIG_HOME:-~/.config}/duplex/server_key.pem
  /// Empty: server_cert.pem beside the default key, or the key's own file when key_path is given
  /// (one PEM file with both blocks); made on first use with the key.
  std::string cert_path;
};

/// A listening socket a service manager bound and passed (socket activation).
struct InheritedListener {
  int fd = -1;       // the server takes it over
  bool tls = false;  // serve it as a tls:// listener
};

struct ServerConfig {
  std::vector<net::Endpoint> listen;
  /// Served beside `listen`, first; never closed or replaced by a reload.
  std::vector<InheritedListener> inherited;
  /// --inetd: no listener; serve the one connection on stdin/stdout, then stop.
  bool inetd = false;
  std::size_t threads = 0;  // 0: one per core
  Limits limits;
  std::chrono::milliseconds grace{1000};  // how long a stop waits for sessions to end
  std::string agent = "duplex";
  std::string multicast_if;  // interface for joining multicast groups; empty: the kernel's choice
  ExecSettings exec;
  TlsSettings tls;
  ProxySettings proxy;  // behind a load balancer: the PROXY protocol from trusted peers
  /// --metrics: where the HTTP metrics endpoint listens (server/metrics.hpp); none when unset.
  std::optional<net::Endpoint> metrics;
};

class Server {
 public:
  explicit Server(ServerConfig cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Loads (or makes, on first use) the TLS key when some listener has TLS, then binds every
  /// --listen address. On failure nothing listens, and the detail is one line naming the file or
  /// the address ("cannot listen on tcp://127.0.0.1:80: permission denied"). Protected mode,
  /// judged from the bound sockets: --raw-exec on a listener that is not loopback or Unix, or
  /// --exec on one without TLS, fails with errc::insecure_channel and a line saying which flag
  /// fixes it.
  Status open();
  /// The bound URLs in --listen order, with real ports (valid after open()).
  std::vector<std::string> urls() const;
  /// The TLS key's fingerprint ("SHA256:…"), empty without TLS (valid after open()).
  std::string fingerprint() const;
  /// Where the metrics endpoint answers ("http://127.0.0.1:PORT/metrics"); empty without
  /// --metrics (valid after open()).
  std::string metrics_url() const;
  /// Serves until SIGINT/SIGTERM or stop(): then stops accepting, closes sessions, waits up to
  /// `grace` for them to end, and returns once every thread has finished.
  void run();
  /// Starts a graceful stop. Safe from any thread.
  void stop();

  /// Makes SIGHUP reload: `load` (run on the control thread) reads the configuration again. Then
  /// listeners no longer in `listen` close (their open sessions go on), new ones open, and the
  /// limits and exec settings apply to connections accepted from then on; what changed is
  /// logged. When `load` fails, a new listener cannot open, or protected mode refuses the
  /// result, the failure is logged in one line and the running configuration stays whole.
  /// Threads, TLS settings and --multicast-if take effect at a restart only (a warning says so).
  /// Call before run().
  void on_reload(std::function<Result<ServerConfig>()> load);
  /// Reloads as SIGHUP does. Safe from any thread.
  void reload();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duplex::server
