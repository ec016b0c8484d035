// Progress: the live line on stderr, once a second, only when stderr is a terminal.
#pragma once

#include <cstdint>

namespace duplex::loadgen {

class ProgressLine {
 public:
  ProgressLine();
  bool enabled() const noexcept { return enabled_; }
  /// `t` seconds into the run, `done` exchanges so far (warm-up included).
  void update(double t, std::uint64_t done);
  /// Erases the line, so that the report starts on a clean one.
  void clear();

 private:
  bool enabled_ = false;
  bool shown_ = false;
  double last_t_ = 0;
  std::uint64_t last_done_ = 0;
};

}  // namespace duplex::loadgen
