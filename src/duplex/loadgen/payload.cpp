// Payload: generated from a small linear congruential sequence, so a run is reproducible.
#include "duplex/loadgen/payload.hpp"

namespace duplex::loadgen {

std::string make_payload(std::size_t size, std::uint32_t seed) {
  // Letters of both cases dominate, so that a server that does not upper-case, or upper-cases
  // too much, fails verification on nearly every byte.
  static constexpr std::string_view kAlphabet =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
  std::string out(size, '\0');
  std::uint32_t x = seed * 2654435761u + 12345u;
  for (auto& c : out) {
    x = x * 1664525u + 1013904223u;  // Numerical Recipes' LCG
    c = kAlphabet[(x >> 16) % kAlphabet.size()];
  }
  return out;
}

std::string upper_of(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::string expected_reply(std::string_view payload, Verify v) {
  switch (v) {
    case Verify::upper: return upper_of(payload);
    case Verify::echo: return std::string(payload);
    case Verify::none: break;
  }
  return {};
}

}  // namespace duplex::loadgen
