// Exec test fixtures: a `duplex serve --exec` whose token file lives in a temp dir, /proc process
// trees, and small readable-assertion helpers shared by the exec suites.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "support/exec_frames.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAsan = true;
#else
inline constexpr bool kUnderAsan = false;
#endif
#else
inline constexpr bool kUnderAsan = false;
#endif

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kUnderTsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kUnderTsan = true;
#else
inline constexpr bool kUnderTsan = false;
#endif
#else
inline constexpr bool kUnderTsan = false;
#endif

/// Readable ExitStatus in assertion messages ("exit 1", "signal 15").
inline void PrintTo(const ExitStatus& st, std::ostream* os) {
  *os << (st.exited ? "exit " : "signal ") << st.code;
}

/// How a test wants its exec server.
struct ExecServerOptions {
  std::vector<std::string> args;  // extra `duplex serve` flags
  bool tcp = true;                // a tcp://127.0.0.1:0 listener
  bool unix_socket = false;       // a unix:// listener in the server's temp dir
  bool exec = true;               // --exec
  bool quiet = true;              // -q: no per-command audit lines
};

/// `duplex serve --exec --token-file DIR/token` on loopback and/or a Unix socket in a fresh temp
/// dir; the token is read back from the file the server created.
class ExecServer {
 public:
  explicit ExecServer(ExecServerOptions o = {});

  const std::string& url() const { return server_->url(0); }
  std::string tcp_url() const;
  std::string unix_url() const;
  const std::string& token() const { return token_; }
  const std::string& token_path() const { return token_path_; }
  const TempDir& dir() const { return dir_; }
  TestServer& server() { return *server_; }
  pid_t pid() const { return server_->pid(); }

 private:
  TempDir dir_;
  std::string token_path_;
  std::string token_;
  std::unique_ptr<TestServer> server_;
};

/// The state letter of /proc/PID/stat (R, S, Z...), or nullopt when the process is gone.
std::optional<char> proc_state(pid_t pid);
/// True when pid is gone, or a zombie (re-parented to an init that does not reap): not running.
bool not_running(pid_t pid);
/// /proc/PID/cmdline with NULs turned into spaces ("" when gone).
std::string proc_cmdline(pid_t pid);
/// Every descendant of pid (children, grandchildren, ...).
std::vector<pid_t> descendants_of(pid_t pid);
/// Bytes the process has written (/proc/PID/io wchar), or -1 when unreadable.
long long proc_wchar(pid_t pid);
/// The first line of a file, without its newline.
std::string first_line(const std::string& path);
/// A file with these bytes (mode 0600 unless given).
void write_file(const std::string& path, std::string_view bytes, unsigned mode = 0600);
/// SHA-256 of bytes, lower-case hex (OpenSSL).
std::string sha256_hex(std::string_view bytes);

/// EXIT matches how/code (and limit none), with a readable message.
::testing::AssertionResult exited_with(const ExecOutcome& o, int code);
::testing::AssertionResult signaled_with(const ExecOutcome& o, int signo);
/// ERROR with this code, then close.
::testing::AssertionResult refused_with(const ExecOutcome& o, std::uint16_t code);

}  // namespace duplex::test
