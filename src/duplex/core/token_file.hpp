// The exec service's shared secret on disk: where it lives, reading it, creating it (0600).
#pragma once

#include <string>

#include "duplex/core/result.hpp"

namespace duplex {

/// ${XDG_CONFIG_HOME:-~/.config}/duplex/token — the default for both server and client.
std::string default_token_path();

/// Reads a token file: its first line, surrounding whitespace removed. Refuses a file that
/// others can read or write (like ssh with private keys), and an empty token.
/// `why` gets a one-line reason on failure.
Result<std::string> read_token_file(const std::string& path, std::string& why);

/// Reads the token file, or creates it (and its directory, 0700) with a fresh random token
/// (32 bytes from getrandom, hex) and mode 0600 when it does not exist.
Result<std::string> load_or_create_token_file(const std::string& path, std::string& why);

}  // namespace duplex
