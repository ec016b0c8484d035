// BenchOptions: the names modes, protocols and verifications have in reports.
#include "duplex/loadgen/options.hpp"

namespace duplex::loadgen {

const char* name_of(Mode m) noexcept {
  switch (m) {
    case Mode::pingpong: return "pingpong";
    case Mode::storm: return "storm";
    case Mode::idle: return "idle";
    case Mode::exec: return "exec";
  }
  return "?";
}

const char* name_of(WireProtocol p) noexcept {
  switch (p) {
    case WireProtocol::detect: return "auto";
    case WireProtocol::raw: return "raw";
    case WireProtocol::framed: return "framed";
  }
  return "?";
}

const char* name_of(Verify v) noexcept {
  switch (v) {
    case Verify::upper: return "upper";
    case Verify::echo: return "echo";
    case Verify::none: return "none";
  }
  return "?";
}

}  // namespace duplex::loadgen
