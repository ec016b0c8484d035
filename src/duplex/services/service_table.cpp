// Message type -> service: the one switch that knows which service owns which message.
#include "duplex/services/service_table.hpp"

namespace duplex::services {

ServiceTable::ServiceTable(const ServerServices& shared, SessionContext& session)
    : upper_(session.sink()),
      ping_(session.sink()),
      exec_(shared.exec, session),
      stats_(shared.stats, session, shared.exec.max_frame) {}

Service* ServiceTable::route(wire::MsgType type) noexcept {
  using wire::MsgType;
  switch (type) {
    case MsgType::upper_request: return &upper_;
    case MsgType::ping: return &ping_;
    case MsgType::auth:
    case MsgType::auth_start:
    case MsgType::auth_proof:
    case MsgType::exec_start:
    case MsgType::stdin_data:
    case MsgType::stdin_eof:
    case MsgType::signal:
    case MsgType::window_size: return &exec_;
    case MsgType::stats_request: return &stats_;
    // HELLO is the session's own (and only first); the rest are never sent by a client.
    default: return nullptr;
  }
}

void ServiceTable::end(wire::Exit::Limit why) noexcept {
  exec_.end(why);
}

}  // namespace duplex::services
