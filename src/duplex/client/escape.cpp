// EscapeFilter: the line-start state machine of ssh's escapes (clientloop.c process_escapes).
#include "duplex/client/escape.hpp"

namespace duplex::client {

EscapeFilter::Output EscapeFilter::feed(ByteView typed) {
  Output out;
  out.forward.reserve(typed.size() + 1);
  for (const std::byte b : typed) {
    if (pending_) {
      pending_ = false;
      if (b == std::byte{'.'}) {
        out.disconnect = true;
        return out;
      }
      if (b == std::byte{'?'}) {
        ++out.help;
        // The help leaves the cursor on a fresh line: another escape may follow at once.
        at_line_start_ = true;
        continue;
      }
      if (b != kEscape) out.forward.push_back(kEscape);  // not an escape: both bytes go
      out.forward.push_back(b);
      at_line_start_ = b == std::byte{'\r'} || b == std::byte{'\n'};
      continue;
    }
    if (at_line_start_ && b == kEscape) {
      pending_ = true;
      continue;
    }
    out.forward.push_back(b);
    at_line_start_ = b == std::byte{'\r'} || b == std::byte{'\n'};
  }
  return out;
}

std::string_view EscapeFilter::help_text() noexcept {
  return "\r\nSupported escape sequences:\r\n"
         " ~.   - terminate the session (disconnect)\r\n"
         " ~?   - this message\r\n"
         " ~~   - send the escape character by typing it twice\r\n"
         "(Note that escapes are only recognized immediately after newline.)\r\n";
}

}  // namespace duplex::client
