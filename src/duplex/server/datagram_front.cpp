// Datagram front: the receive loop, on a thread of its own per socket, blocked in recvmmsg: one
// thread keeps up with the C reference and more (docs/BENCHMARKS.md), with fewer system calls per
// datagram than waking through the control loop's epoll.
#include "duplex/server/datagram_front.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
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

using std::chrono::milliseconds;

// 32 datagrams per recvmmsg/sendmmsg: with 50 peers in flight one wake-up answers most of them
// in two system calls. The slots' buffers (2 MiB of address space) are touched only as large
// datagrams arrive.
constexpr std::size_t kBatch = 32;

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
      : socket_(std::move(socket)), ctx_(ctx) {}
  ~DatagramFront() override { close(); }

  const net::Endpoint& endpoint() const noexcept override { return socket_.endpoint(); }

  void start() override {
    // Every front is bound by now, so the listeners a probe is told about are all known.
    discovery_json_ = discovery_json(ctx_.state);
    if (!socket_.group().empty())
      spdlog::info("{}: joined multicast group {}", url(), socket_.group());
    thread_ = std::thread([this] { serve(); });
  }

  void close() noexcept override {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);  // so that a pause() between its check and its wait sees it
      closing_.store(true);
    }
    backoff_.notify_all();
    socket_.shutdown();  // wakes the thread blocked in receive()
    try {
      thread_.join();
    } catch (const std::system_error& e) {
      spdlog::error("{}: cannot join its thread: {}", url(), e.what());
    }
    const DatagramCounters& c = counters_;
    spdlog::debug(
        "{}: {} datagrams received, {} replied, {} truncated, {} replies dropped, {} without "
        "a reply address, {} probes answered, {} bad probes, {} receive errors",
        url(), c.received.load(), c.replied.load(), c.truncated.load(), c.dropped.load(),
        c.unaddressed.load(), c.probes_answered.load(), c.bad_probes.load(),
        c.receive_errors.load());
  }

 private:
  void serve() noexcept;
  bool closing() const noexcept { return closing_.load(std::memory_order_acquire); }
  /// Sleeps for `d` unless close() comes first; false once closing.
  bool pause(milliseconds d) {
    std::unique_lock lock(mu_);
    return !backoff_.wait_for(lock, d, [this] { return closing(); });
  }
  void answer(net::DatagramBatch& batch);
  void answer_probe(net::DatagramBatch& batch, std::size_t i);

  net::DatagramSocket socket_;
  FrontContext ctx_;
  DatagramCounters counters_;
  std::string discovery_json_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable backoff_;
  std::atomic<bool> closing_{false};  // stored under mu_, read anywhere
};

// The front's own thread: block until datagrams are queued, take up to a batch, answer them
// all, send the replies in one call. Two system calls per wake-up however many peers.
void DatagramFront::serve() noexcept {
  try {
    net::DatagramBatch batch(kBatch);
    auto backoff = kFirstBackoff;
    for (;;) {
      auto got = socket_.receive(batch, /*wait=*/true);
      if (closing()) return;  // a receive woken by shutdown() takes nothing to answer
      if (!got) {
        const int e = got.error().value();
        counters_.receive_errors.fetch_add(1, std::memory_order_relaxed);
        if (is_peer_error(e)) {
          spdlog::debug("{}: receive: {} (a peer's ICMP error); serving on", url(),
                        got.error().message());
          continue;
        }
        // Out of memory or buffers: trying again at once would spin on the same error.
        spdlog::debug("{}: receive: {}; pausing {} ms", url(), got.error().message(),
                      backoff.count());
        if (!pause(backoff)) return;
        backoff = std::min(backoff * 2, kMaxBackoff);
        continue;
      }
      backoff = kFirstBackoff;
      if (*got == 0) continue;
      answer(batch);
      const net::SendCounts sent = socket_.send_replies(batch);
      counters_.replied.fetch_add(sent.sent, std::memory_order_relaxed);
      if (sent.dropped > 0) {
        counters_.dropped.fetch_add(sent.dropped, std::memory_order_relaxed);
        spdlog::debug("{}: {} replies dropped: {}", url(), sent.dropped, sent.last_error.message());
      }
    }
  } catch (const std::exception& e) {
    // Only allocation can throw here (a batch, a log line): say so instead of terminating.
    spdlog::error("{}: datagram service stopped: {}", url(), e.what());
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
  if (state.settings.get()->exec.enabled) services.push_back("exec");
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
  auto socket = net::DatagramSocket::open(ep, options);
  if (!socket) return std::move(socket).failure();
  return std::unique_ptr<Front>(std::make_unique<DatagramFront>(std::move(*socket), ctx));
}

Result<std::unique_ptr<Front>> adopt_datagram_front(int fd, const FrontContext& ctx) {
  auto socket = net::DatagramSocket::adopt(fd);
  if (!socket) return std::move(socket).failure();
  return std::unique_ptr<Front>(std::make_unique<DatagramFront>(std::move(*socket), ctx));
}

}  // namespace duplex::server
