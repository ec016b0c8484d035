// Key fingerprints as text ("SHA256:" + unpadded base64 of a SHA-256, as ssh prints them): the
// one form known_hosts, authorized_keys and logs use. Pure; computing one is net/tls_identity's
// job.
#pragma once

#include <string>
#include <string_view>

#include "duplex/core/result.hpp"

namespace duplex {

inline constexpr std::string_view kFingerprintPrefix = "SHA256:";
/// Unpadded base64 of 32 bytes: 43 characters.
inline constexpr std::size_t kFingerprintBase64Size = 43;

/// Accepts exactly the text a SHA-256 fingerprint is printed as: the prefix, 43 base64
/// characters, and the unused low bits of the last one zero (so equal keys have equal text).
/// The failure's detail is one line quoting (at most 80 bytes of) the text.
Status check_fingerprint(std::string_view text);

}  // namespace duplex
