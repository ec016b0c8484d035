// Escape sequences typed into an interactive session (ssh's `~.`, `~~`, `~?`): a pure filter over
// the bytes read from the terminal. No I/O; the exec session acts on what it reports.
#pragma once

#include <string_view>

#include "duplex/core/bytes.hpp"

namespace duplex::client {

/// The escape character, recognised only at the start of a line (after CR or LF, or as the
/// first byte of the session), as ssh(1) "ESCAPE CHARACTERS" describes:
///   ~.  disconnect;  ~?  list the escapes;  ~~  send one ~;
///   ~ followed by anything else sends both bytes unchanged.
/// A ~ at the end of one read is held until the next byte decides what it was.
class EscapeFilter {
 public:
  static constexpr std::byte kEscape{'~'};

  struct Output {
    Bytes forward;            // what to send to the remote side, in order
    bool disconnect = false;  // ~. was typed: nothing after it is forwarded
    int help = 0;             // times ~? was typed (show help_text() that often)
  };

  /// Filters the next bytes typed.
  Output feed(ByteView typed);

  /// The list of escapes, with CR LF line ends (the terminal is raw while they apply).
  static std::string_view help_text() noexcept;

 private:
  bool at_line_start_ = true;
  bool pending_ = false;  // a ~ at a line start, not yet forwarded
};

}  // namespace duplex::client
