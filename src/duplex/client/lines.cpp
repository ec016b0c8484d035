// LineSplitter implementation.
#include "duplex/client/lines.hpp"

#include <utility>

namespace duplex::client {

std::string LineSplitter::take() {
  std::string line = std::exchange(partial_, {});
  if (!keep_cr_ && !line.empty() && line.back() == '\r') line.pop_back();
  ++lines_;
  return line;
}

bool LineSplitter::feed(std::string_view in, std::vector<std::string>& out) {
  while (!in.empty()) {
    const auto nl = in.find('\n');
    const auto piece = in.substr(0, nl);
    if (partial_.size() + piece.size() > max_line_) return false;
    partial_.append(piece);
    if (nl == std::string_view::npos) break;
    out.push_back(take());
    in.remove_prefix(nl + 1);
  }
  return true;
}

std::optional<std::string> LineSplitter::finish() {
  if (partial_.empty()) return std::nullopt;
  return take();
}

}  // namespace duplex::client
