// The client's own config file (${XDG_CONFIG_HOME:-~/.config}/duplex/config): ssh_config-like
// Host blocks that give a server a short name and the address, token, key and fingerprint to use.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "duplex/core/result.hpp"

namespace duplex {

/// What a Host block may set. Empty: not set.
struct HostSettings {
  std::string address;      // Address: a URL or HOST:PORT
  std::string token_file;   // TokenFile
  std::string identity;     // Identity: the client key to present over TLS
  std::string fingerprint;  // Fingerprint: the server key expected (SHA256:…)
  std::string known_hosts;  // KnownHosts
  std::string trust;        // Trust: accept-new, ask or strict
};

/// Parsed Host blocks, in file order.
class ClientConfig {
 public:
  struct Block {
    std::vector<std::string> patterns;  // aliases; '*' and '?' match as in a shell, '!' negates
    HostSettings settings;
    std::size_t line = 0;
  };

  /// Everything the blocks matching `name` set; as in ssh, the first value found wins, so
  /// specific blocks go first and a `Host *` of defaults last. `matched` says whether any did.
  HostSettings lookup(std::string_view name, bool* matched = nullptr) const;
  const std::vector<Block>& blocks() const noexcept { return blocks_; }

  /// Parses the file's text: `Host PATTERN…` starts a block; then `Keyword value` lines (keywords
  /// case-insensitive, `Keyword=value` also accepted); '#' comments, blank lines. A `~/` at the
  /// start of a path value is the home directory. A mistake is one line naming its line number.
  static Result<ClientConfig> parse(std::string_view text, std::string_view home = {});

 private:
  std::vector<Block> blocks_;
};

/// Loads config_path("config") when it exists (an absent file is an empty config). Like
/// known_hosts, it decides what is trusted, so it must be ours (or root's) and not writable by
/// others.
Result<ClientConfig> load_client_config();

}  // namespace duplex
