// Shell-style wildcards (`*` any run, `?` one character), as sshd matches from= and Host patterns.
#pragma once

#include <string>
#include <string_view>

namespace duplex {

/// Whether `text` matches `pattern`. Backtracks only to the last star, so a hostile pattern
/// ("a*a*a*…b") costs linear time, never exponential.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

/// `s` with A-Z lowered and nothing else touched: host names and option names compare without
/// case, as sshd compares them, whatever the locale.
std::string ascii_lower(std::string_view s);

}  // namespace duplex
