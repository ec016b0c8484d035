// The stats service: STATS_REQUEST answered with STATS_REPLY, a JSON document of the server's
// connections and counters, for clients that authenticated as exec's do. The document itself
// comes from the server (StatsSource), which alone sees every worker's sessions.
#pragma once

#include <cstddef>
#include <string>

#include "duplex/net/asio.hpp"
#include "duplex/services/service.hpp"

namespace duplex::services {

/// Where the stats document comes from: implemented by the server (server/stats.hpp).
class StatsSource {
 public:
  virtual ~StatsSource() = default;
  /// The document as JSON text of at most `max_bytes` (connection rows are left out past it, and
  /// the document says how many). Completes on the caller's executor.
  virtual awaitable<std::string> document(std::size_t max_bytes) = 0;
};

/// STATS_REQUEST (empty) -> STATS_REPLY. Only an identified client (SessionContext::identified)
/// is answered; any other is refused with auth_required, an upper-only client included.
class StatsService final : public Service {
 public:
  /// `source` null: the server serves no stats (service_disabled). `max_frame`: the largest
  /// payload an authenticated client accepts (Limits::max_frame).
  StatsService(StatsSource* source, SessionContext& session, std::size_t max_frame) noexcept
      : source_(source), session_(session), max_frame_(max_frame) {}
  awaitable<Handled> handle(wire::MsgType type, ByteView payload) override;

 private:
  StatsSource* source_;
  SessionContext& session_;
  std::size_t max_frame_;
};

}  // namespace duplex::services
