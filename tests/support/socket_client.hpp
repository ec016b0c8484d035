// A blocking socket client for tests: exact bytes in and out, with timeouts, resets and half-close.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace duplex::test {

using namespace std::chrono_literals;

class SocketClient {
 public:
  /// Connects to "tcp://host:port", "host:port", "tcp://[v6]:port" or "unix:///path". Fails the
  /// test (throws) when it cannot.
  explicit SocketClient(const std::string& url);
  /// Connects to a tcp:// IPv4 `url` from `source` (e.g. "127.0.0.7": any 127/8 address is this
  /// host's), so that the server sees a peer address the test chose.
  SocketClient(const std::string& url, const std::string& source);
  ~SocketClient();
  SocketClient(SocketClient&& o) noexcept;
  SocketClient(const SocketClient&) = delete;

  int fd() const { return fd_; }
  /// Our end of a TCP/IPv4 connection, "127.0.0.7:PORT": the peer address a server shows for us.
  std::string local_address() const;
  void send_all(std::string_view data);
  /// Reads exactly n bytes; throws on EOF or timeout.
  std::string recv_exact(std::size_t n, std::chrono::milliseconds timeout = 10s);
  /// Reads whatever arrives first (at most max); empty string on EOF; nullopt on timeout.
  std::optional<std::string> recv_some(std::size_t max = 65536,
                                       std::chrono::milliseconds timeout = 10s);
  /// Reads until the peer closes; throws on timeout.
  std::string recv_until_eof(std::chrono::milliseconds timeout = 10s);
  /// True when the peer closed (EOF or reset) within timeout.
  bool wait_closed(std::chrono::milliseconds timeout = 10s);
  void shutdown_write();
  /// Closes with SO_LINGER 0: the peer sees a reset.
  void reset();
  void close();

 private:
  int fd_ = -1;
};

/// Builds the framed preface + HELLO bytes, and other frames, without the library (so that the
/// tests check the wire format independently of the code they test).
std::string frame(std::uint8_t type, std::string_view payload);
std::string preface_and_hello(std::string_view agent = "test");

}  // namespace duplex::test
