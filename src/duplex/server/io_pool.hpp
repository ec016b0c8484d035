// IoPool: the worker threads, one io_context each (muduo's one loop per thread), and the Worker
// that runs on each: a session lives on one worker for its whole life, so it needs no strand.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include "duplex/net/asio.hpp"

namespace duplex::server {

struct Worker;  // session.hpp: one loop's sessions, its idle sweep

class IoPool {
 public:
  /// `threads` workers (at least one), not yet running.
  explicit IoPool(std::size_t threads);
  /// Stops the loops, then destroys what they still hold (session frames) while the Workers
  /// those frames are registered with still exist.
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  /// Starts one thread per worker. They run until stop().
  void start();
  /// Lets every loop finish: pending handlers are abandoned, then threads are joined. Idempotent.
  void stop();

  std::size_t size() const noexcept { return workers_.size(); }
  Worker& worker(std::size_t i) noexcept { return *workers_[i]; }
  /// Round robin: the worker that takes the next connection. Any thread.
  Worker& next() noexcept;

 private:
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<Worker>> workers_;  // workers_[i] runs on contexts_[i]
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace duplex::server
