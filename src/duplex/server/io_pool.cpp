// IoPool implementation: the threads, their loops and the Workers on them.
#include "duplex/server/io_pool.hpp"

#include <spdlog/spdlog.h>

#include "duplex/server/session.hpp"

namespace duplex::server {

IoPool::IoPool(std::size_t threads) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: each context is driven by exactly one thread, so Asio can skip locking.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
    workers_.push_back(std::make_unique<Worker>());
    workers_.back()->ctx = contexts_.back().get();
  }
}

IoPool::~IoPool() {
  stop();
  // Destroying a context destroys the session frames still in it, whose registrations unlink
  // themselves from their Worker: the contexts go first, explicitly.
  contexts_.clear();
}

void IoPool::start() {
  for (auto& ctx : contexts_) {
    threads_.emplace_back([c = ctx.get()] {
      for (;;) {
        try {
          c->run();
          return;
        } catch (const std::exception& e) {
          // A handler let an exception escape. Log it and keep the loop serving the others.
          spdlog::error("event loop: {}", e.what());
        }
      }
    });
  }
}

void IoPool::stop() {
  guards_.clear();
  for (auto& ctx : contexts_)
    ctx->stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

Worker& IoPool::next() noexcept {
  return *workers_[next_.fetch_add(1, std::memory_order_relaxed) % workers_.size()];
}

}  // namespace duplex::server
