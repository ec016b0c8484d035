// Template part of process.hpp.
#pragma once

#include <thread>

namespace duplex::test {

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= end) return pred();
    std::this_thread::sleep_for(10ms);
  }
}

}  // namespace duplex::test
