// The upper service: the seed's `bytes.upper()`, as a pure transform. No I/O.
#pragma once

#include <cstddef>
#include <span>

namespace duplex::services {

/// Maps ASCII a-z to A-Z in place and leaves every other byte alone (UTF-8 passes unchanged),
/// exactly like Python's bytes.upper().
void to_upper_in_place(std::span<std::byte> data) noexcept;
inline void to_upper_in_place(std::span<char> data) noexcept {
  to_upper_in_place(std::as_writable_bytes(data));
}

}  // namespace duplex::services
