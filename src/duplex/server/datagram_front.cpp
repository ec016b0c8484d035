// Datagram front: the receive loop. Runs on the control loop: one socket needs no more than one
// thread to keep up with its peers (docs/BENCHMARKS.md), and the control loop outlives the front.
#include "duplex/server/datagram_front.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "duplex/core/version.hpp"
#include "duplex/net/datagram_socket.hpp"
#include "duplex/server/state.hpp"
#include "duplex/services/upper.hpp"
#include "duplex/wire/discovery.hpp"

namespace duplex::server {
namespace {

using net::use_tuple;
using std::chrono::milliseconds;

// 32 datagrams per recvmmsg/sendmmsg: with 50 peers in flight one wake-up answers most of them
// in two system calls. The slots' buffers (2 MiB of address space) are touched only as large
// datagrams arrive.
constexpr std::size_t kBatch = 32;
// Under a flood the socket never runs dry: after this many full batches the loop lets the
// control loop's other work (signals, accept loops) run.
constexpr int kFullBatchesPerTurn = 8;
constexpr milliseconds kFirstBackoff{10};
constexpr milliseconds kMaxBackoff{1000};

// Errors that concern one peer, not the socket: reported once (after an ICMP error about an
// earlier reply, udp(7)) and gone; the next receive works.
bool is_peer_error(int e) noexcept {
  switch (e) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EPROTO:
    case ENOPROTOOPT:
    case EMSGSIZE:
    case ETIMEDOUT:
    case EPERM: return true;
    default: return false;
  }
}

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

class DatagramFront final : public Front {
 public:
  DatagramFront(net::DatagramSocket socket, const FrontContext& ctx)
      : socket_(std::move(socket)), ctx_(ctx), backoff_timer_(ctx.control) {}

  const net::Endpoint& endpoint() const noexcept override { return socket_.endpoint(); }

  void start() override {
    // Every front is bound by now, so the listeners a probe is told about are all known.
    discovery_json_ = discovery_json(ctx_.state);
    if (!socket_.group().empty())
      spdlog::info("{}: joined multicast group {}", url(), socket_.group());
    asio::co_spawn(ctx_.control, serve_loop(), [url = url()](std::exception_ptr e) {
      if (e) spdlog::error("datagram loop on {} ended unexpectedly", url);
    });
  }

  void close() noexcept override {
    socket_.close();
    backoff_timer_.cancel();
    const DatagramCounters& c = counters_;
    spdlog::debug(
        "{}: {} datagrams received, {} replied, {} truncated, {} replies dropped, {} without "
        "a reply address, {} probes answered, {} bad probes, {} receive errors",
        url(), c.received.load(), c.replied.load(), c.truncated.load(), c.dropped.load(),
        c.unaddressed.load(), c.probes_answered.load(), c.bad_probes.load(),
        c.receive_errors.load());
  }

 private:
  awaitable<void> serve_loop();
  void answer(net::DatagramBatch& batch);
  void answer_probe(net::DatagramBatch& batch, std::size_t i);

  net::DatagramSocket socket_;
  FrontContext ctx_;
  asio::steady_timer backoff_timer_;
  DatagramCounters counters_;
  std::string discovery_json_;
};

awaitable<void> DatagramFront::serve_loop() {
  net::DatagramBatch batch(kBatch);
  auto backoff = kFirstBackoff;
  int full_batches = 0;
  for (;;) {
    if (ctx_.state.stopping.load()) co_return;
    auto got = socket_.receive(batch);
    if (!got) {
      const int e = got.error().value();
      if (e == EBADF) co_return;  // closed
      counters_.receive_errors.fetch_add(1, std::memory_order_relaxed);
      if (is_peer_error(e)) {
        spdlog::debug("{}: receive: {} (a peer's ICMP error); serving on", url(),
                      got.error().message());
        continue;
      }
      // Out of memory or buffers: waking again at once would spin on the same error.
      spdlog::debug("{}: receive: {}; pausing {} ms", url(), got.error().message(),
                    backoff.count());
      backoff_timer_.expires_after(backoff);
      co_await backoff_timer_.async_wait(use_tuple);
      backoff = std::min(backoff * 2, kMaxBackoff);
      continue;
    }
    backoff = kFirstBackoff;
    if (*got > 0) {
      answer(batch);
      const net::SendCounts sent = socket_.send_replies(batch);
      counters_.replied.fetch_add(sent.sent, std::memory_order_relaxed);
      if (sent.dropped > 0) {
        counters_.dropped.fetch_add(sent.dropped, std::memory_order_relaxed);
        spdlog::debug("{}: {} replies dropped: {}", url(), sent.dropped, sent.last_error.message());
      }
    }
    if (*got == batch.capacity()) {
      if (++full_batches % kFullBatchesPerTurn == 0)
        co_await asio::post(ctx_.control, asio::use_awaitable);
      continue;
    }
    // The queue was empty when read: sleep until the next datagram (its arrival is a new edge
    // for the reactor, even if it came while this batch was answered).
    full_batches = 0;
    if (const auto ec = co_await socket_.wait_readable(); ec) {
      if (ec == asio::error::operation_aborted || ctx_.state.stopping.load()) co_return;
      spdlog::debug("{}: wait: {}", url(), ec.message());
    }
  }
}

void DatagramFront::answer(net::DatagramBatch& batch) {
  counters_.received.fetch_add(batch.size(), std::memory_order_relaxed);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch.truncated(i)) {
      // The tail is gone: an upper-cased prefix would be a wrong reply.
      counters_.truncated.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}: datagram from {} longer than {} bytes: not answered", url(),
                    batch.sender(i), net::kMaxDatagram);
      continue;
    }
    if (!batch.has_sender(i)) {
      counters_.unaddressed.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}: datagram from an unbound socket: no address to reply to", url());
      continue;
    }
    const std::span<std::byte> data = batch.datagram(i);
    if (wire::is_discovery(data)) {
      answer_probe(batch, i);
      continue;
    }
    services::to_upper_in_place(data);
    batch.reply(i, data.size());
  }
}

void DatagramFront::answer_probe(net::DatagramBatch& batch, std::size_t i) {
  const auto probe = wire::decode_probe(batch.datagram(i));
  if (!probe) {
    counters_.bad_probes.fetch_add(1, std::memory_order_relaxed);
    spdlog::debug("{}: malformed discovery probe ({} bytes) from {}: ignored", url(),
                  batch.datagram(i).size(), batch.sender(i));
    return;
  }
  const Bytes reply = wire::encode_reply({probe->nonce, discovery_json_});
  const std::span<std::byte> out = batch.buffer(i);
  if (reply.size() > out.size()) {
    spdlog::warn("{}: discovery reply of {} bytes does not fit a datagram", url(), reply.size());
    return;
  }
  std::copy(reply.begin(), reply.end(), out.begin());
  batch.reply(i, reply.size());
  counters_.probes_answered.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

std::string discovery_json(const ServerState& state) {
  nlohmann::ordered_json services = nlohmann::ordered_json::array({"upper"});
  if (state.exec.enabled) services.push_back("exec");
  const nlohmann::ordered_json j = {
      {"name", host_name()},
      {"version", std::string(duplex::version())},
      {"agent", std::string(duplex::agent())},
      {"listeners", state.urls},
      {"services", std::move(services)},
      {"pid", static_cast<long>(::getpid())},
  };
  // Replace: a host name or path that is not UTF-8 must not make dump() throw.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

Result<std::unique_ptr<Front>> open_datagram_front(const net::Endpoint& ep,
                                                   const FrontContext& ctx) {
  net::DatagramOptions options;
  options.multicast_if = ctx.state.multicast_if;
  auto socket = net::DatagramSocket::open(ctx.control, ep, options);
  if (!socket) return std::move(socket).failure();
  return std::unique_ptr<Front>(std::make_unique<DatagramFront>(std::move(*socket), ctx));
}

}  // namespace duplex::server
