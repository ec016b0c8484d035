// Messages for duplex::errc: what happened, phrased for a one-line error.
#include "duplex/core/errors.hpp"

#include <string>

namespace duplex {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "duplex"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::bad_url: return "bad URL";
      case errc::bad_preface: return "not a duplex client (bad protocol preface)";
      case errc::frame_too_large: return "frame larger than the maximum frame size";
      case errc::bad_frame: return "malformed frame header";
      case errc::unknown_message: return "unknown message type";
      case errc::bad_message: return "malformed message";
      case errc::unexpected_message: return "message not expected in this state";
      case errc::version_unsupported: return "protocol version not supported";
      case errc::too_many_connections: return "too many connections";
      case errc::idle_timeout: return "idle timeout";
      case errc::shutting_down: return "server is shutting down";
      case errc::service_disabled: return "service not enabled on this server";
      case errc::auth_failed: return "authentication failed";
      case errc::auth_required: return "authentication required";
      case errc::limit_exceeded: return "limit exceeded";
      case errc::tls_required: return "this listener takes TLS clients only";
      case errc::insecure_channel: return "exec needs TLS on a network connection";
      case errc::penalised: return "too many failed authentications from this address";
      case errc::exec_failed: return "command could not be started";
      case errc::internal: return "internal server error";
    }
    return "unknown duplex error " + std::to_string(v);
  }
};

}  // namespace

const std::error_category& duplex_category() noexcept {
  static const Category c;
  return c;
}

bool is_known_errc(std::uint16_t v) noexcept {
  switch (static_cast<errc>(v)) {
    case errc::bad_url:
    case errc::bad_preface:
    case errc::frame_too_large:
    case errc::bad_frame:
    case errc::unknown_message:
    case errc::bad_message:
    case errc::unexpected_message:
    case errc::version_unsupported:
    case errc::too_many_connections:
    case errc::idle_timeout:
    case errc::shutting_down:
    case errc::service_disabled:
    case errc::auth_failed:
    case errc::auth_required:
    case errc::limit_exceeded:
    case errc::tls_required:
    case errc::insecure_channel:
    case errc::penalised:
    case errc::exec_failed:
    case errc::internal: return true;
  }
  return false;
}

}  // namespace duplex
