// The upper service: the seed's `bytes.upper()` as a pure transform, and its framed service
// (UPPER_REQUEST -> UPPER_REPLY with the same bytes upper-cased).
#pragma once

#include <cstddef>
#include <span>

#include "duplex/services/service.hpp"

namespace duplex::services {

/// Maps ASCII a-z to A-Z in place and leaves every other byte alone (UTF-8 passes unchanged),
/// exactly like Python's bytes.upper().
void to_upper_in_place(std::span<std::byte> data) noexcept;
inline void to_upper_in_place(std::span<char> data) noexcept {
  to_upper_in_place(std::as_writable_bytes(data));
}

/// UPPER_REQUEST: answered with UPPER_REPLY (an empty request gets an empty reply).
class UpperService final : public Service {
 public:
  explicit UpperService(FrameSink& out) noexcept : out_(out) {}
  awaitable<Handled> handle(wire::MsgType type, ByteView payload) override;

 private:
  FrameSink& out_;
};

}  // namespace duplex::services
