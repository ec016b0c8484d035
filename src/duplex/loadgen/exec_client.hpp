// Exec client for load: authenticate a framed connection once, then run commands on it one after
// another (client/exec_session.hpp runs one command per connection and drives a terminal; a load
// generator needs neither).
#pragma once

#include <string>

#include "duplex/client/connection.hpp"
#include "duplex/core/bytes.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::loadgen {

/// The challenge-response of docs/PROTOCOL.md: AUTH_START, then AUTH_OK at once (the transport
/// identifies us) or AUTH_CHALLENGE, whose server proof is checked before ours is sent.
/// An empty token works only where the transport identifies us.
awaitable<Status> authenticate(client::Connection& conn, const std::string& token);

/// EXEC_START for `sh -c command` with its stdin closed at once, as two frames in one buffer.
Bytes exec_frames(const std::string& command);

/// Writes `frames` (exec_frames) and reads until EXIT, dropping the output. A command that does
/// not exit 0 is a Failure with errc::exec_failed; a lost connection keeps its code.
awaitable<Status> run_command(client::Connection& conn, const Bytes& frames);

}  // namespace duplex::loadgen
