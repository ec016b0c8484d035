// Upper transform. Written as a branch-free loop so that GCC vectorises it (see bench/).
#include "duplex/services/upper.hpp"

#include <cstdint>

namespace duplex::services {

void to_upper_in_place(std::span<std::byte> data) noexcept {
  auto* p = reinterpret_cast<std::uint8_t*>(data.data());
  const std::size_t n = data.size();
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t c = p[i];
    // (c - 'a') < 26 as unsigned is true exactly for 'a'..'z'; clearing bit 5 upper-cases them.
    const std::uint8_t is_lower = static_cast<std::uint8_t>(static_cast<std::uint8_t>(c - 'a') < 26);
    p[i] = static_cast<std::uint8_t>(c ^ (is_lower << 5));
  }
}

}  // namespace duplex::services
