// The version, in one place: `duplex --version`, the agent string in HELLO/WELCOME.
#pragma once

namespace duplex {

/// The project's version ("0.1.0"), from CMake's project(VERSION).
const char* version() noexcept;
/// "duplex/0.1.0": how we name ourselves to peers (HELLO and WELCOME agent strings).
const char* agent() noexcept;

}  // namespace duplex
