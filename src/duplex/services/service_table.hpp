// The services of one framed session and the table that routes each message type to the one
// that owns it. Adding a message type or a service touches this table and that service, never
// the session (docs/ARCHITECTURE.md, "Adding a service").
#pragma once

#include "duplex/services/exec_session.hpp"
#include "duplex/services/ping.hpp"
#include "duplex/services/service.hpp"
#include "duplex/services/stats.hpp"
#include "duplex/services/upper.hpp"

namespace duplex::services {

/// What the server gives every session's services: state shared by all sessions and threads.
struct ServerServices {
  ExecContext exec;
  StatsSource* stats = nullptr;  // null: STATS_REQUEST is refused (service_disabled)
};

class ServiceTable {
 public:
  ServiceTable(const ServerServices& shared, SessionContext& session);

  /// The service that handles `type` from a client; nullptr when no service takes it (the
  /// session answers ERROR: unknown_message, or unexpected_message for a known type).
  Service* route(wire::MsgType type) noexcept;

  /// Work that runs beside the session's reader for the session's whole life (the exec
  /// session's command loop); returns after end().
  awaitable<void> run() { return exec_.run(); }
  /// The session's reader has stopped (client gone, breach, shutdown): services end what they
  /// run, reporting `why` (Limit::shutdown when the server stops).
  void end(wire::Exit::Limit why) noexcept;

 private:
  UpperService upper_;
  PingService ping_;
  ExecSession exec_;
  StatsService stats_;
};

}  // namespace duplex::services
