// The exec service's settings in one place, each with its one default (`duplex serve` flags map
// 1:1 and show these values in --help). Plain data; shared read-only by every worker thread.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "duplex/core/authorized_keys.hpp"

namespace duplex::services {

/// Who may run commands: a shared token (any transport, proved by challenge-response, never
/// sent), a client key listed in authorized_keys (TLS), or, on a Unix socket, the peer's uid.
struct AuthPolicy {
  /// SHA-256 of the token: the key of the challenge-response; the token itself is not kept.
  std::optional<std::array<std::byte, 32>> token_key;
  std::vector<uid_t> allowed_uids;  // Unix-socket peers with these uids need no token
  /// --authorized-keys: client keys accepted over TLS, with their restrictions; null: none.
  std::shared_ptr<const AuthorizedKeys> authorized_keys;
  std::string authorized_keys_path;  // for logs
};

/// sshd's PerSourcePenalties in small: a source address that fails authentication
/// `max_failures` times within `window` is refused at accept for `penalty` (doubling while it
/// keeps failing, up to `max_penalty`).
struct PenaltySettings {
  std::size_t max_failures = 10;  // zero: never penalise
  std::chrono::milliseconds window = std::chrono::minutes(1);
  std::chrono::milliseconds penalty = std::chrono::seconds(30);
  std::chrono::milliseconds max_penalty = std::chrono::minutes(10);
};

/// The account commands run as when the server was started as root (`--user NAME`): looked up
/// once at start; the child takes no supplementary groups (setgroups, setgid, setuid).
struct RunAs {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;
  std::string shell;
};

/// Server-side rules for every command.
struct ExecPolicy {
  std::chrono::milliseconds max_timeout{0};    // cap on a command's run time; 0: none
  std::uint64_t max_output = 0;                // stdout + stderr bytes; 0: unlimited
  std::chrono::milliseconds kill_grace{1000};  // SIGTERM to SIGKILL
  std::string default_cwd;                     // empty: the account's home directory
  std::optional<RunAs> run_as;                 // --user; none: the server's own account
  /// Client-supplied variables (-e KEY=VALUE) the server lets through, by name; "LC_*" style
  /// prefixes end in '*'. LD_*, BASH_ENV, ENV and IFS are refused whatever this says.
  std::vector<std::string> env_allow = {"LANG", "LC_*", "TERM", "TZ", "COLORTERM"};
};

struct ExecSettings {
  bool enabled = false;  // --exec: framed EXEC_START after AUTH
  bool raw = false;      // --raw-exec: raw connections run each chunk as a command
  AuthPolicy auth;
  PenaltySettings penalties;
  ExecPolicy policy;
  std::size_t max_commands = 64;                     // running at once on this server
  std::size_t max_commands_per_client = 8;           // per client (net::Peer::client_key)
  std::size_t max_queued_per_client = 64;            // waiting for a slot, per client
  std::chrono::milliseconds max_queue_wait{30'000};  // longest wait for a slot
};

}  // namespace duplex::services
