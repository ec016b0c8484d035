// Socket-level work shared by the stream transports (plain and TLS): connecting to an Endpoint,
// per-transport options, who the peer is, the hang-up watch and keepalive.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <system_error>
#include <variant>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/net/stream.hpp"

namespace duplex::net {

using ConnectedSocket = std::variant<ip::tcp::socket, unix_proto::socket>;

/// SO_SNDBUF for Unix stream sockets, both ends. Unix stream sockets get no buffer autotuning
/// (TCP does): with the 208 KiB default a bulk stream wakes the reader for every small skb.
/// 1 MiB is a ceiling, not an allocation; idle connections cost nothing extra
/// (docs/BENCHMARKS.md: exec bulk output 0.3x -> 0.7x a pipe).
inline constexpr int kUnixSendBuffer = 1 << 20;

/// Told each step of a connect as one line ("resolving localhost", "connecting to
/// 127.0.0.1:8080", "connected to …"), for a client's -v; net itself logs nothing.
using DialSteps = std::function<void(const std::string&)>;

/// Resolves and connects to a tcp:// or unix:// endpoint, trying each resolved address in turn.
/// The failure's detail is one line naming the URL; never throws. `steps`, when set, hears each
/// step.
awaitable<Result<ConnectedSocket>> connect_socket(const Endpoint& ep, DialSteps steps = {});

/// TCP_NODELAY (request/reply traffic must not wait for Nagle).
void tune_socket(ip::tcp::socket& s) noexcept;
/// A larger send buffer: Unix stream sockets get no autotuning (see socket_stream.cpp).
void tune_socket(unix_proto::socket& s) noexcept;

/// The peer as net::Peer describes it: address and client key from the socket's remote address;
/// on a Unix socket, SO_PEERCRED.
Peer socket_peer(ip::tcp::socket& s);
/// The same for a TCP peer whose address is already known (accept(2) tells it).
Peer tcp_peer(const ip::tcp::endpoint& remote);
Peer socket_peer(unix_proto::socket& s);

/// Completes when the peer behind `fd` hung up (FIN, reset), even with unread bytes queued: a
/// private epoll set watching EPOLLRDHUP, since Asio's reactor does not ask for it.
awaitable<std::error_code> wait_socket_hangup(asio::any_io_executor ex, int fd);

/// TCP keepalive probes after `idle`, every `interval`, three tries.
void enable_tcp_keepalive(int fd, std::chrono::seconds idle,
                          std::chrono::seconds interval) noexcept;

/// Whether a bound socket can be reached from this machine only: its own address (getsockname,
/// not the name it was bound by) is a Unix path, 127.0.0.0/8, ::1 or ::ffff:127.x.
bool bound_to_loopback(int fd) noexcept;

}  // namespace duplex::net
