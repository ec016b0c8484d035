// Private files (keys, known_hosts, authorized_keys): where they live by default, and reading and
// writing them without following links, checked by owner and mode as sshd's StrictModes does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "duplex/core/result.hpp"

namespace duplex {

/// ${XDG_CONFIG_HOME:-~/.config}/duplex/<name>: where duplex keeps its files by default.
std::string config_path(std::string_view name);

/// How much a file must be protected to be believed.
enum class FileTrust {
  /// Holds a secret (a private key): owned by the effective uid, no group/other bits at all.
  secret,
  /// Decides who is trusted (known_hosts, authorized_keys): owned by the effective uid or root,
  /// writable by nobody else.
  trusted,
};

/// Reads a whole file opened with O_NOFOLLOW and checked on its descriptor (fstat): a regular
/// file, owner and mode as `trust` says, at most `max_size` bytes, in a directory owned by the
/// effective uid or root that others cannot write. The failure's detail is one line naming the
/// file and, where there is one, the fix ("run: chmod 600 PATH").
Result<std::string> read_private_file(const std::string& path, FileTrust trust,
                                      std::size_t max_size = 1 << 20);

/// Creates `path` with `data`, mode 0600, with O_CREAT|O_EXCL|O_NOFOLLOW (fails with EEXIST when
/// anything is there, a link included); its directory is made 0700 when missing.
Status create_private_file(const std::string& path, std::string_view data);

/// Replaces `path` with `data` atomically (a fresh 0600 file beside it, then rename(2)): readers
/// see the old content or the new, never a mix. Makes the directory like create_private_file.
Status replace_private_file(const std::string& path, std::string_view data);

/// Appends `data` to `path` (O_APPEND|O_NOFOLLOW), creating it as create_private_file does; an
/// existing file must pass read_private_file's checks for `FileTrust::trusted`.
Status append_private_file(const std::string& path, std::string_view data);

}  // namespace duplex
