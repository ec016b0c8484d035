// IoPool implementation.
#include "duplex/server/io_pool.hpp"

#include <spdlog/spdlog.h>

namespace duplex::server {

IoPool::IoPool(std::size_t threads) {
  if (threads == 0) threads = 1;
  for (std::size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: each context is driven by exactly one thread, so Asio can skip locking.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

IoPool::~IoPool() {
  stop();
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

asio::io_context& IoPool::next() noexcept {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

}  // namespace duplex::server
