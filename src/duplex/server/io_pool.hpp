// IoPool: one io_context per thread (muduo's one-loop-per-thread): sessions never need a strand.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "duplex/net/asio.hpp"

namespace duplex::server {

class IoPool {
 public:
  explicit IoPool(std::size_t threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  /// Starts one thread per io_context. They run until stop().
  void start();
  /// Lets every loop finish: pending handlers are abandoned, then threads are joined.
  void stop();

  std::size_t size() const noexcept { return contexts_.size(); }
  asio::io_context& context(std::size_t i) { return *contexts_[i]; }
  /// Round-robin choice for the next connection.
  asio::io_context& next() noexcept;

 private:
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace duplex::server
