// The exec service's settings in one place, each with its one default (`duplex serve` flags map
// 1:1 and show these values in --help). Plain data; shared read-only by every worker thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace duplex::services {

/// Who may run commands: a shared token (any transport) or, on a Unix socket, the peer's uid.
struct AuthPolicy {
  std::string token;                // empty: no token accepted
  std::vector<uid_t> allowed_uids;  // Unix-socket peers with these uids need no token
};

/// Server-side rules for every command.
struct ExecPolicy {
  std::chrono::milliseconds max_timeout{0};    // cap on a command's run time; 0: none
  std::uint64_t max_output = 0;                // stdout + stderr bytes; 0: unlimited
  std::chrono::milliseconds kill_grace{1000};  // SIGTERM to SIGKILL
  std::string default_cwd;                     // empty: the account's home directory
};

struct ExecSettings {
  bool enabled = false;  // --exec: framed EXEC_START after AUTH
  bool raw = false;      // --raw-exec: raw connections run each chunk as a command
  AuthPolicy auth;
  ExecPolicy policy;
  std::size_t max_commands = 64;                     // running at once on this server
  std::size_t max_commands_per_client = 8;           // per client (net::Peer::client_key)
  std::size_t max_queued_per_client = 64;            // waiting for a slot, per client
  std::chrono::milliseconds max_queue_wait{30'000};  // longest wait for a slot
};

}  // namespace duplex::services
