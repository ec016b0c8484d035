// Helpers shared by the integration tests: expected replies, random payloads, "does the server
// still serve?", framed handshakes and ERROR checks, CPU time from /proc.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"

namespace duplex::test {

/// Readable ExitStatus in assertion messages ("exit 1", "signal 15").
inline void PrintTo(const ExitStatus& st, std::ostream* os) {
  *os << (st.exited ? "exit " : "signal ") << st.code;
}

/// Python's bytes.upper(): ASCII a-z mapped, every other byte unchanged.
inline std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (auto& ch : out)
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  return out;
}

/// n pseudo-random bytes (any value, NUL included), reproducible from `seed`.
inline std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& ch : out)
    ch = static_cast<char>(static_cast<unsigned char>(rng() & 0xff));
  return out;
}

/// Compares two (possibly huge) byte strings without printing them whole.
inline ::testing::AssertionResult same_bytes(std::string_view got, std::string_view want) {
  if (got == want) return ::testing::AssertionSuccess();
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i])
    ++i;
  auto r = ::testing::AssertionFailure();
  r << "got " << got.size() << " bytes, want " << want.size() << "; first difference at offset "
    << i;
  if (i < got.size() && i < want.size())
    r << " (got 0x" << std::hex << static_cast<unsigned>(static_cast<unsigned char>(got[i]))
      << ", want 0x" << static_cast<unsigned>(static_cast<unsigned char>(want[i])) << std::dec
      << ")";
  return r;
}

/// A fresh raw client gets the right reply: the server is alive and serving.
inline ::testing::AssertionResult serves_raw(const std::string& url,
                                             std::string_view message = "still serving? grüße ✓") {
  try {
    SocketClient c(url);
    c.send_all(message);
    const auto reply = c.recv_exact(message.size());
    if (reply != ascii_upper(message))
      return ::testing::AssertionFailure() << "raw reply '" << reply << "' to '" << message << "'";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "raw client on " << url << ": " << e.what();
  }
}

/// Sends the preface and HELLO and reads the answer, which must be a well-formed WELCOME.
inline std::optional<WelcomePayload> framed_handshake(SocketClient& c) {
  c.send_all(preface_and_hello());
  const RawFrame f = read_frame(c);
  if (f.type != msg::welcome) {
    ADD_FAILURE() << "handshake answered with type 0x" << std::hex << unsigned{f.type};
    return std::nullopt;
  }
  auto w = parse_welcome(f.payload);
  if (!w) ADD_FAILURE() << "malformed WELCOME payload (" << f.payload.size() << " bytes)";
  return w;
}

/// A fresh framed client completes the handshake and gets a correct UPPER_REPLY.
inline ::testing::AssertionResult serves_framed(const std::string& url,
                                                std::string_view message = "framed still ok? ñ") {
  try {
    SocketClient c(url);
    c.send_all(preface_and_hello() + frame(msg::upper_request, message));
    const RawFrame w = read_frame(c);
    if (w.type != msg::welcome)
      return ::testing::AssertionFailure() << "no WELCOME, type " << unsigned{w.type};
    const RawFrame r = read_frame(c);
    if (r.type != msg::upper_reply || r.payload != ascii_upper(message))
      return ::testing::AssertionFailure()
             << "bad reply: type " << unsigned{r.type} << " '" << r.payload << "'";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "framed client on " << url << ": " << e.what();
  }
}

/// The next frame is ERROR with `code` (and a well-formed payload), and then the server closes
/// without sending anything more.
inline ::testing::AssertionResult error_then_close(SocketClient& c, std::uint16_t code) {
  try {
    const RawFrame f = read_frame(c);
    if (f.type != msg::error)
      return ::testing::AssertionFailure()
             << "expected ERROR (0x03), got type 0x" << std::hex << unsigned{f.type};
    if (f.flags != 0)
      return ::testing::AssertionFailure() << "ERROR frame with flags " << unsigned{f.flags};
    const auto e = parse_error(f.payload);
    if (!e) return ::testing::AssertionFailure() << "malformed ERROR payload";
    if (e->code != code)
      return ::testing::AssertionFailure()
             << "ERROR code " << e->code << " ('" << e->text << "'), want " << code;
    const std::string rest = c.recv_until_eof(std::chrono::seconds(5));
    if (!rest.empty())
      return ::testing::AssertionFailure() << rest.size() << " bytes after the ERROR frame";
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << e.what();
  }
}

/// utime + stime of a process in seconds (/proc/PID/stat fields 14 and 15); -1 if unreadable.
inline double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(f, stat);
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  // Fields after the command name start at 3 (state); utime is 14, stime 15.
  for (int i = 3; i < 14; ++i)
    rest >> field;
  unsigned long long utime = 0, stime = 0;
  rest >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// Open sockets of a process (entries of /proc/PID/fd that link to "socket:[...]").
inline int socket_fd_count(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::error_code lec;
    const auto target = std::filesystem::read_symlink(it->path(), lec);
    if (!lec && target.string().rfind("socket:", 0) == 0) ++n;
  }
  return n;
}

/// The full path of a program found in $PATH, or empty (tests skip when a tool is absent).
inline std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  const std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  for (;;) {
    const auto end = dirs.find(':', start);
    const std::string dir =
        dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (end == std::string::npos) return {};
    start = end + 1;
  }
}

/// Sets an environment variable for the children started while it lives (Process copies the
/// environment at spawn), then restores it. The test process's own sanitizers read their options
/// at start-up and are not affected.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

/// `var`'s current value with `extra` options appended (sanitizer option strings: later wins).
inline std::string with_sanitizer_options(const char* var, const std::string& extra) {
  const char* old = std::getenv(var);
  return old && *old ? std::string(old) + ":" + extra : extra;
}

/// Number of lines in s (a final line without '\n' counts too).
inline std::size_t line_count(std::string_view s) {
  std::size_t n = 0;
  for (char ch : s)
    n += ch == '\n';
  if (!s.empty() && s.back() != '\n') ++n;
  return n;
}

}  // namespace duplex::test
