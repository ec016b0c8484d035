// Progress: the rate since the previous line, written over itself with a carriage return.
#include "duplex/loadgen/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace duplex::loadgen {

ProgressLine::ProgressLine() : enabled_(::isatty(STDERR_FILENO) == 1) {}

void ProgressLine::update(double t, std::uint64_t done) {
  if (!enabled_) return;
  const double dt = t - last_t_;
  const double rate = dt > 0 ? static_cast<double>(done - last_done_) / dt : 0.0;
  std::fprintf(stderr, "\r%6.1f s  %12llu done  %10.0f /s\x1b[K", t,
               static_cast<unsigned long long>(done), rate);
  std::fflush(stderr);
  shown_ = true;
  last_t_ = t;
  last_done_ = done;
}

void ProgressLine::clear() {
  if (!shown_) return;
  std::fputs("\r\x1b[K", stderr);
  std::fflush(stderr);
  shown_ = false;
}

}  // namespace duplex::loadgen
