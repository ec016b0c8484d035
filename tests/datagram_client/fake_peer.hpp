// FakePeer: a datagram upper-echo the test controls (drop, duplicate, answer from a wrong
// address, never answer), on 127.0.0.1, ::1 or a temp Unix path, so the client's timeouts,
// retries and filtering can be seen without the real server.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace duplex::test {

using namespace std::chrono_literals;

class FakePeer {
 public:
  enum class Family { v4, v6, unix_dgram };

  struct Policy {
    /// Datagram number (0-based, in arrival order) -> leave it unanswered. Default: answer all.
    std::function<bool(std::size_t)> drop;
    /// Before each reply, send "WRONG SOURCE" to the client from another socket of ours.
    bool wrong_source_first = false;
    /// Replies per answered datagram (2: a duplicate follows the reply at once).
    int copies = 1;
    /// Non-empty: every reply is this text instead of the upper-cased request (a server that
    /// repeats itself, which the client must not take for late duplicates).
    std::string constant_reply = {};
    /// Non-zero: a relay instead of an echo. Each datagram not dropped is passed to the UDP
    /// server on 127.0.0.1:forward_port, and its reply back, unless `drop` (counting replies
    /// on their own) drops it too.
    int forward_port = 0;
  };

  /// Binds (port 0, or `unix_path`) and starts answering on a thread of its own.
  FakePeer(Family family, Policy policy, std::string unix_path = {});
  ~FakePeer();
  FakePeer(const FakePeer&) = delete;
  FakePeer& operator=(const FakePeer&) = delete;

  /// udp://127.0.0.1:P, udp://[::1]:P or unixgram:///path.
  const std::string& url() const { return url_; }
  /// Datagrams received so far.
  std::size_t received();
  /// Each datagram's sender: "127.0.0.1:P", "[::1]:P", or the sender's Unix path.
  std::vector<std::string> senders();
  /// Waits until at least `n` datagrams arrived; false when `timeout` passed first.
  bool wait_received(std::size_t n, std::chrono::milliseconds timeout = 10s);

 private:
  void run();

  Policy policy_;
  int fd_ = -1;
  int other_fd_ = -1;       // the "wrong source"
  int upstream_fd_ = -1;    // the relay's socket to the server
  int stop_[2] = {-1, -1};  // a pipe: written to stop the thread
  std::string url_, path_;
  std::mutex mu_;
  std::condition_variable arrived_;
  std::vector<std::string> senders_;
  std::thread thread_;
};

}  // namespace duplex::test
