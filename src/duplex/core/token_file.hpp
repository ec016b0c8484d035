// The exec service's shared secret on disk: where it lives, reading it, creating it (0600), and
// which token a client sends.
#pragma once

#include <string>

#include "duplex/core/result.hpp"

namespace duplex {

/// ${XDG_CONFIG_HOME:-~/.config}/duplex/token — the default for both server and client.
std::string default_token_path();

/// Reads a token file: one line of 64 lowercase hex digits (the form load_or_create_token_file
/// writes), read through read_private_file(FileTrust::secret): opened without following a
/// symlink, a regular file owned by our effective uid with no group/other bits, in a directory
/// nobody else can write. The failure's detail is one line naming the file and the fix.
Result<std::string> read_token_file(const std::string& path);

/// Reads the token file, or creates it (and its directory, 0700) with a fresh random token
/// (32 bytes from getrandom, hex) and mode 0600 when nothing is at the path.
Result<std::string> load_or_create_token_file(const std::string& path);

/// The token a client sends: the file `token_file` when given, else $DUPLEX_TOKEN, else the
/// default token file when it exists, else empty (the server then uses the transport's
/// identity, SO_PEERCRED on a Unix socket).
Result<std::string> resolve_token(const std::string& token_file);

/// A token and where it came from, for -v and for naming the credential an authentication
/// failure used.
struct ResolvedToken {
  std::string token;   // empty: none found
  std::string source;  // "--token-file PATH", "$DUPLEX_TOKEN", "PATH" (the default file); empty
                       // when none was found
};
/// resolve_token, saying where the token came from.
Result<ResolvedToken> resolve_token_with_source(const std::string& token_file);

}  // namespace duplex
