// The stats service: access first (as exec's), then the server's document, in one reply.
#include "duplex/services/stats.hpp"

#include <utility>

#include "duplex/core/errors.hpp"

namespace duplex::services {

awaitable<Handled> StatsService::handle(wire::MsgType type, ByteView payload) {
  if (type != wire::MsgType::stats_request)
    co_return duplex::fail(errc::unexpected_message, "not a stats message");
  if (!wire::decode_stats_request(payload))
    co_return duplex::fail(errc::bad_message, "STATS_REQUEST carries no payload");
  // The table names every client and what it runs: as much as exec would let it see.
  if (!session_.identified())
    co_return duplex::fail(errc::auth_required,
                           "stats need authentication as for exec (a token, a client key, or a "
                           "Unix-socket peer uid the server trusts)");
  if (source_ == nullptr)
    co_return duplex::fail(errc::service_disabled, "stats are not served by this server");
  session_.set_service("stats");
  std::string doc = co_await source_->document(max_frame_);
  auto p = Payload::copy_of(as_bytes(doc));
  const bool sent = co_await session_.sink().send(wire::MsgType::stats_reply, std::move(p));
  co_return after_send(sent);
}

}  // namespace duplex::services
