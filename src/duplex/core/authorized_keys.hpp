// authorized_keys: which client keys the server accepts over TLS, one fingerprint per line with
// optional sshd-style restrictions (command="…", from="…"). A pure parser and the decision, plus a
// small load function.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "duplex/core/result.hpp"

namespace duplex {

/// One from= pattern: an IP address ("10.1.2.3", "::1"), a CIDR block ("10.0.0.0/8",
/// "fd00::/8"), or a glob over the address text with * and ? ("192.168.1.*"); `!` negates.
/// Host names are not patterns: nothing is resolved, a peer is only its address.
struct AddressPattern {
  bool negated = false;
  std::string pattern;  // without the '!'; lower-case
};

/// Parses one pattern as from= takes it ('!' for a negated one); a failure names it as `what`
/// ("from= pattern '10.0.0.1/8' has bits set beyond its prefix length"). --trusted-proxy too.
Result<AddressPattern> parse_address_pattern(std::string_view text,
                                             std::string_view what = "from= pattern");

/// Whether one pattern (its `negated` ignored) matches `address`, an IP address as text without a
/// port (net::Peer::client_key). A v4-mapped IPv6 address matches as its IPv4 form; anything that
/// is not an IP address ("uid:1000" on a Unix socket) matches nothing.
bool address_matches(const AddressPattern& p, std::string_view address);

/// sshd's rule for a from= list: some pattern matches and no negated one does.
bool addresses_allow(std::span<const AddressPattern> patterns, std::string_view address);

struct AuthorizedKey {
  std::string fingerprint;             // "SHA256:…"
  std::string comment;                 // the rest of the line, e.g. "alice@laptop"
  std::optional<std::string> command;  // command="…": the only command this key may run
  std::vector<AddressPattern> from;    // from="…": where it may connect from; empty: anywhere
  std::size_t line = 0;                // 1-based, for logs

  bool allows_address(std::string_view address) const {
    return from.empty() || addresses_allow(from, address);
  }
};

enum class KeyVerdict {
  unknown_key,      // no line has this fingerprint
  address_refused,  // lines have it, but their from= refuses this address
  allowed,
};

struct KeyDecision {
  KeyVerdict verdict = KeyVerdict::unknown_key;
  /// The line that allowed the key (its restrictions apply); when refused, the first line that
  /// named it (for the log). Points into the AuthorizedKeys it came from.
  const AuthorizedKey* key = nullptr;
};

class AuthorizedKeys {
 public:
  /// Parses authorized_keys text. A line is `[OPTIONS] SHA256:… [COMMENT]`; OPTIONS are
  /// `command="…"` (`\"` for a quote inside) and `from="PATTERN,PATTERN"`, separated by commas or
  /// blanks, names case-insensitive. `#` comments and blank lines are skipped. Any other line,
  /// an unknown option included, fails the whole file with one line naming the line number: a
  /// restriction that is silently ignored would be worse than none.
  static Result<AuthorizedKeys> parse(std::string_view text);

  /// The first line with `fingerprint` whose from= allows `address` (sshd tries each line).
  KeyDecision authorize(std::string_view fingerprint, std::string_view address) const;

  const std::vector<AuthorizedKey>& keys() const noexcept { return keys_; }

 private:
  std::vector<AuthorizedKey> keys_;
};

/// Reads and parses `path` (owned by us or root, writable by nobody else, no symlink). The detail
/// names the file and the line.
Result<AuthorizedKeys> load_authorized_keys(const std::string& path);

}  // namespace duplex
