// The hostile-client suite's shared pieces: the server's resources read from /proc, crowds of raw
// connections (from any loopback address), a TLS client speaking bytes, and sanitizer scaling.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "integration/helpers.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/tls_talk.hpp"

namespace duplex::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif
#else
inline constexpr bool kAsan = false;
#endif

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif
#else
inline constexpr bool kTsan = false;
#endif

/// ThreadSanitizer keeps 4 bytes of shadow per byte of application memory: RSS bounds scale.
inline constexpr long kShadow = kTsan ? 4 : 1;
/// How much slower the server's CPU-bound paths run under a sanitizer (ASan ~2-3x, TSan 5-15x):
/// time bounds that the issue does not fix scale with it, and each test says where.
inline constexpr int kSlowdown = kTsan ? 10 : kAsan ? 3 : 1;

using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

/// What a process holds, from /proc.
struct Usage {
  int fds = 0;
  int sockets = 0;
  long rss_kib = 0;
  double cpu_s = 0;  // utime + stime
  std::size_t children = 0;
};
Usage usage_of(pid_t pid);
std::ostream& operator<<(std::ostream& os, const Usage& u);

/// Every process in `pgid`'s process group (scanning /proc/*/stat), zombies excluded.
std::vector<pid_t> group_members(pid_t pgid);

/// Turns off AddressSanitizer's quarantine for servers started while it lives: freed memory
/// would otherwise stay resident (up to 256 MiB) and read as growth. No effect without ASan.
class NoQuarantine {
 public:
  NoQuarantine();

 private:
  ScopedEnv env_;
};

/// A blocking TCP connection to 127.0.0.1:port from `source` (a loopback address such as
/// 127.0.0.2; empty: the kernel's choice). Throws when it cannot connect.
int connect_tcp(int port, const std::string& source = {});
/// Writes all of `bytes` (MSG_NOSIGNAL); false when the peer is gone.
bool send_bytes(int fd, std::string_view bytes);

/// Many connections held open at once, fed bytes, watched for the server closing them.
class Crowd {
 public:
  /// Opens `n` connections to 127.0.0.1:port (from `source` when given); each connect is
  /// complete (accepted by the kernel) when this returns.
  Crowd(int port, std::size_t n, const std::string& source = {});
  ~Crowd();
  Crowd(const Crowd&) = delete;
  Crowd& operator=(const Crowd&) = delete;

  std::size_t size() const { return fds_.size(); }
  /// When connection i finished connecting.
  Clock::time_point opened(std::size_t i) const { return opened_[i]; }
  /// Sends `bytes` on every connection still open (a closed one is skipped).
  void send_each(std::string_view bytes);
  void send_to(std::size_t i, std::string_view bytes);
  /// Reads what has arrived (waiting up to `timeout` for something); notes connections the
  /// server has closed.
  void poll(Ms timeout);
  void poll_now() { poll(Ms(0)); }
  /// Waits up to `timeout` for every connection to be closed by the server; true when all are.
  bool wait_all_closed(Ms timeout);
  std::size_t closed_count() const;
  bool is_closed(std::size_t i) const { return closed_at_[i].has_value(); }
  /// When the server closed connection i (seen by this process), or nullopt while open.
  std::optional<Clock::time_point> closed_at(std::size_t i) const { return closed_at_[i]; }
  /// Everything connection i received so far.
  const std::string& received(std::size_t i) const { return received_[i]; }
  /// Closes every connection from this side.
  void close_all();

 private:
  std::vector<int> fds_;
  std::vector<Clock::time_point> opened_;
  std::vector<std::optional<Clock::time_point>> closed_at_;
  std::vector<std::string> received_;
};

/// A raw (seed protocol) client over TLS gets its upper-cased echo.
::testing::AssertionResult serves_raw_over_tls(const std::string& url,
                                               const std::string& message = "raw in tls");

/// Waits until the server's sessions are all gone (only its `listeners` sockets left) and its fds
/// are no more than at `baseline` (fewer is fine: a sanitizer runtime may hold a transient fd).
::testing::AssertionResult fds_back(pid_t pid, const Usage& baseline, int listeners,
                                    Ms timeout = Ms(10'000));

/// The first frame in `bytes`, once it has arrived whole.
std::optional<RawFrame> first_frame(std::string_view bytes);

/// Highest VmRSS of a process while this lives, sampled every 20 ms from another thread.
class RssPeak {
 public:
  explicit RssPeak(pid_t pid);
  ~RssPeak() { stop(); }
  RssPeak(const RssPeak&) = delete;
  RssPeak& operator=(const RssPeak&) = delete;
  /// Stops sampling; the peak seen.
  long stop();

 private:
  std::atomic<bool> stop_{false};
  std::atomic<long> peak_{0};
  std::thread thread_;
};

/// The median of `samples` (sorted in place).
double median(std::vector<double>& samples);

}  // namespace duplex::test
