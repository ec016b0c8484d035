// BenchOptions: what one run of the load generator does (the command line, parsed).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "duplex/client/connection.hpp"
#include "duplex/loadgen/payload.hpp"
#include "duplex/net/endpoint.hpp"

namespace duplex::loadgen {

enum class Mode { pingpong, storm, idle, exec };

/// raw: the tutorial's protocol (bytes in, the same number of bytes out); framed: duplex's HELLO
/// and frames; detect: what `duplex send` does (framed, unless the server echoes the handshake).
enum class WireProtocol { detect, raw, framed };

struct BenchOptions {
  std::string url;         // as given, for the report
  net::Endpoint endpoint;  // parsed
  Mode mode = Mode::pingpong;
  WireProtocol protocol = WireProtocol::detect;
  std::size_t connections = 1;
  std::size_t threads = 1;
  std::chrono::duration<double> duration{5.0};
  std::chrono::duration<double> warmup{0.5};
  std::size_t size = 64;
  std::optional<double> rate;  // messages/s in total, open loop; none: closed loop
  Verify verify = Verify::upper;
  /// How long one reply (or connect, or command) may take before it counts as a timeout.
  std::chrono::duration<double> timeout{5.0};
  // idle
  std::chrono::duration<double> hold{2.0};
  std::optional<pid_t> server_pid;
  // exec
  std::string command = "true";
  bool new_connection = false;
  std::string token;  // resolved by the caller (DUPLEX_TOKEN, --token-file); empty: the transport
  // TLS (tls://, tls+unix:// or --tls) and how the server's key is believed.
  bool tls = false;
  client::TrustOptions trust;
};

const char* name_of(Mode m) noexcept;
const char* name_of(WireProtocol p) noexcept;
const char* name_of(Verify v) noexcept;

}  // namespace duplex::loadgen
