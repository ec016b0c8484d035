// Workloads: what one connection does for the whole run, one coroutine per mode (the engine puts
// one in Plan::workload). Each reconnects after an error and ends when its worker stops.
#pragma once

#include "duplex/loadgen/worker.hpp"
#include "duplex/net/asio.hpp"

namespace duplex::loadgen {

/// Sends, reads the whole reply, verifies, repeats (paced by --rate when given).
awaitable<void> pingpong(Worker& w, Slot& s);
/// pingpong over datagrams: one socket per connection; a reply not back within the timeout is a
/// timeout error and the next datagram goes.
awaitable<void> datagram_pingpong(Worker& w, Slot& s);
/// Connect, one exchange, close; the latency is the whole of it.
awaitable<void> storm(Worker& w, Slot& s);
/// Connect, one exchange, then hold the connection until the worker stops.
awaitable<void> idle(Worker& w, Slot& s);
/// Commands through the exec service, on one connection or a new one each (--new-connection).
awaitable<void> exec(Worker& w, Slot& s);

}  // namespace duplex::loadgen
