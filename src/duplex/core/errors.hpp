// duplex's own error codes: one enum, one std::error_category, readable via ec.message().
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>

namespace duplex {

/// Our error codes. The numeric values are on the wire (ERROR frames): never renumber.
enum class errc : std::uint16_t {
  // URLs and configuration
  bad_url = 1,
  // framing and protocol
  bad_preface = 10,
  frame_too_large = 11,
  bad_frame = 12,  // reserved flags, truncated header fields
  unknown_message = 13,
  bad_message = 14,         // payload does not parse as its type says
  unexpected_message = 15,  // valid message in the wrong state (e.g. before HELLO)
  version_unsupported = 16,
  // server policy
  too_many_connections = 30,
  idle_timeout = 31,
  shutting_down = 32,
  service_disabled = 33,
  auth_failed = 34,
  auth_required = 35,
  limit_exceeded = 36,
  tls_required = 37,      // a plaintext client on a TLS-only listener
  insecure_channel = 38,  // exec asked over plaintext on a network listener (protected mode)
  penalised = 39,         // the source address failed authentication too often: refused a while
  // exec
  exec_failed = 50,
  internal = 99,
};

const std::error_category& duplex_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), duplex_category()};
}

/// An errno value as the system error it is.
inline std::error_code errno_code(int e) noexcept {
  return {e, std::system_category()};
}

/// True when v is one of the errc values above (used when decoding ERROR frames).
bool is_known_errc(std::uint16_t v) noexcept;

}  // namespace duplex

template <>
struct std::is_error_code_enum<duplex::errc> : std::true_type {};
