// Shell-style wildcards (`*` any run, `?` one character), as sshd matches from= and Host patterns.
#pragma once

#include <string_view>

namespace duplex {

/// Whether `text` matches `pattern`. Backtracks only to the last star, so a hostile pattern
/// ("a*a*a*…b") costs linear time, never exponential.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

}  // namespace duplex
