// Version strings; DUPLEX_VERSION is defined for this file only (core/CMakeLists.txt).
#include "duplex/core/version.hpp"

namespace duplex {

const char* version() noexcept {
  return DUPLEX_VERSION;
}
const char* agent() noexcept {
  return "duplex/" DUPLEX_VERSION;
}

}  // namespace duplex
