// known_hosts: the server keys a client has pinned, one `HOST:PORT SHA256:…` line per server, or
// `/path/to.sock SHA256:…` for a Unix socket (ssh's known_hosts in spirit). A pure parser and
// lookup, plus small load and append functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "duplex/core/result.hpp"

namespace duplex {

/// The name a server is pinned under: "host:port", or "[v6]:port" for an IPv6 literal; host
/// names lower-cased (DNS names are case-insensitive).
std::string known_host_name(std::string_view host, std::uint16_t port);

struct KnownHost {
  std::string name;         // as known_host_name() makes it, or a Unix socket's absolute path
  std::string fingerprint;  // "SHA256:…"
  std::size_t line = 0;     // 1-based, for messages
};

enum class HostKeyStatus {
  unknown,  // no line for this host:port: first contact
  known,    // a line pins exactly this key
  changed,  // pinned with another key: refuse, and say both fingerprints
};

struct HostKeyCheck {
  HostKeyStatus status = HostKeyStatus::unknown;
  /// When changed: the pinned fingerprint and its line.
  std::string pinned;
  std::size_t line = 0;
};

class KnownHosts {
 public:
  /// Parses known_hosts text: `HOST:PORT SHA256:… [comment]`, `[HOST]:PORT SHA256:…` or
  /// `/ABSOLUTE/SOCKET/PATH SHA256:…` lines, `#` comments and blank lines. Any other line fails the
  /// whole file ("line 3: …"): a file that decides whom to trust is not guessed at.
  static Result<KnownHosts> parse(std::string_view text);

  /// What the file says about `fingerprint` offered by host:port.
  HostKeyCheck check(std::string_view host, std::uint16_t port, std::string_view fingerprint) const;

  const std::vector<KnownHost>& entries() const noexcept { return entries_; }

 private:
  std::vector<KnownHost> entries_;
};

/// The line that pins `fingerprint` for host:port, newline included.
std::string known_hosts_line(std::string_view host, std::uint16_t port,
                             std::string_view fingerprint);

/// ${XDG_CONFIG_HOME:-~/.config}/duplex/known_hosts
std::string default_known_hosts_path();

/// Reads and parses `path` (owned by us or root, writable by nobody else, no symlink); a missing
/// file is an empty list. The detail names the file and the line.
Result<KnownHosts> load_known_hosts(const std::string& path);

/// Appends the pin for host:port to `path` (created 0600, its directory 0700, when missing).
Status append_known_host(const std::string& path, std::string_view host, std::uint16_t port,
                         std::string_view fingerprint);

/// True when a Unix socket path can be a known_hosts name: absolute, with no blank or control
/// character.
bool can_pin_socket_path(std::string_view socket_path) noexcept;
/// The line that pins `fingerprint` for the Unix socket at `socket_path`, newline included (the
/// path as it is: check can_pin_socket_path() first).
std::string known_socket_line(std::string_view socket_path, std::string_view fingerprint);
/// Appends the pin for the Unix socket at `socket_path` (tls+unix://) to `path`, as
/// append_known_host does; a path can_pin_socket_path() refuses is an error.
Status append_known_socket(const std::string& path, std::string_view socket_path,
                           std::string_view fingerprint);

}  // namespace duplex
