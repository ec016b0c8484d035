// Server: listeners, the worker threads, signals and graceful stop. Owns every session's lifetime.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "duplex/core/limits.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/server/session.hpp"

namespace duplex::server {

struct ServerConfig {
  std::vector<net::Endpoint> listen;
  std::size_t threads = 0;  // 0: one per core
  Limits limits;
  std::chrono::milliseconds grace{1000};  // how long a stop waits for sessions to end
  std::string agent = "duplex";
  ExecSettings exec;
};

class Server {
 public:
  explicit Server(ServerConfig cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds every listener. On failure `why` holds a one-line reason and nothing listens.
  bool open(std::string& why);
  /// The bound URLs in --listen order, with real ports (valid after open()).
  std::vector<std::string> urls() const;
  /// Serves until SIGINT/SIGTERM or stop(): then stops accepting, closes sessions, waits up to
  /// `grace` for them to end, and returns once every thread has finished.
  void run();
  /// Starts a graceful stop. Safe from any thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace duplex::server
