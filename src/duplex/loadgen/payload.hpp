// Payload: the bytes a workload sends and the reply it expects back (upper-cased, or echoed).
// Pure; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duplex::loadgen {

/// What a reply is checked against: the upper service's answer, an echo, or nothing.
enum class Verify { upper, echo, none };

/// `size` printable bytes, mixed-case letters among digits and punctuation, different for each
/// `seed`: an upper server changes them and an echo does not, so either can be told apart.
std::string make_payload(std::size_t size, std::uint32_t seed);

/// ASCII a-z to A-Z, every other byte unchanged (Python's bytes.upper()).
std::string upper_of(std::string_view s);

/// The reply expected for `payload` (empty for Verify::none: nothing is compared).
std::string expected_reply(std::string_view payload, Verify v);

/// True when `reply` is what `v` expects for the payload whose expected reply is `expected`.
inline bool reply_matches(Verify v, std::string_view expected, std::string_view reply) noexcept {
  return v == Verify::none || reply == expected;
}

}  // namespace duplex::loadgen
