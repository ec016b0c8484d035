// Exec test fixtures. Also sets XDG_CONFIG_HOME to a temp dir for the whole test binary, so that
// no server or client started by these tests ever reads or creates a token in the real home.
#include "exec/exec_fixture.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/sha.h>

namespace duplex::test {
namespace {

// A /proc file's bytes, or nullopt when the process is gone. POSIX read, not ifstream: reading
// the file of a process that exits meanwhile fails with ESRCH, and libstdc++'s filebuf throws
// on a failed read whatever the stream's exception mask says.
std::optional<std::string> read_proc(pid_t pid, const char* file) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

class IsolatedConfig : public ::testing::Environment {
 public:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>();
    ::setenv("XDG_CONFIG_HOME", dir_->file("config").c_str(), 1);
    ::unsetenv("DUPLEX_TOKEN");  // a developer's own token must not change what the tests see
  }
  void TearDown() override { dir_.reset(); }

 private:
  std::unique_ptr<TempDir> dir_;
};

[[maybe_unused]] ::testing::Environment* const kIsolatedConfig =
    ::testing::AddGlobalTestEnvironment(new IsolatedConfig);

}  // namespace

ExecServer::ExecServer(ExecServerOptions o) : token_path_(dir_.file("token")) {
  std::vector<std::string> args;
  if (o.quiet) args.push_back("-q");
  if (o.exec) args.insert(args.end(), {"--exec", "--token-file", token_path_});
  if (o.tcp) args.insert(args.end(), {"--listen", "tcp://127.0.0.1:0"});
  if (o.unix_socket) args.insert(args.end(), {"--listen", "unix://" + dir_.file("exec.sock")});
  args.insert(args.end(), o.args.begin(), o.args.end());
  server_ = std::make_unique<TestServer>(args);
  if (o.exec) token_ = first_line(token_path_);
}

std::string ExecServer::tcp_url() const {
  for (const auto& u : server_->urls())
    if (u.rfind("tcp://", 0) == 0) return u;
  throw std::runtime_error("no tcp listener");
}

std::string ExecServer::unix_url() const {
  for (const auto& u : server_->urls())
    if (u.rfind("unix://", 0) == 0) return u;
  throw std::runtime_error("no unix listener");
}

std::optional<char> proc_state(pid_t pid) {
  const auto stat = read_proc(pid, "stat");
  if (!stat) return std::nullopt;
  const auto close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return std::nullopt;
  return (*stat)[close + 2];
}

bool not_running(pid_t pid) {
  const auto st = proc_state(pid);
  return !st || *st == 'Z' || *st == 'X';
}

std::string proc_cmdline(pid_t pid) {
  std::string s = read_proc(pid, "cmdline").value_or("");
  for (auto& c : s)
    if (c == '\0') c = ' ';
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

std::vector<pid_t> descendants_of(pid_t pid) {
  std::vector<pid_t> out;
  std::vector<pid_t> todo{pid};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children_of(p)) {
      out.push_back(c);
      todo.push_back(c);
    }
  }
  return out;
}

long long proc_wchar(pid_t pid) {
  std::istringstream f(read_proc(pid, "io").value_or(""));
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("wchar:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

std::string first_line(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::string line;
  std::getline(f, line);
  return line;
}

void write_file(const std::string& path, std::string_view bytes, unsigned mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("cannot write " + path);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  ::fchmod(fd, static_cast<mode_t>(mode));
  ::close(fd);
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), d);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : d) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}

namespace {

::testing::AssertionResult exit_is(const ExecOutcome& o, std::uint8_t how, int code) {
  if (o.error)
    return ::testing::AssertionFailure()
           << "ERROR " << o.error->code << " '" << o.error->text << "' instead of EXIT";
  if (!o.exit)
    return ::testing::AssertionFailure() << "no EXIT (connection closed: " << o.closed << ")";
  if (o.exit->how != how || o.exit->code != code || o.exit->limit != ExitPayload::none) {
    ExitPayload want;
    want.how = how;
    want.code = code;
    return ::testing::AssertionFailure() << "EXIT " << describe(*o.exit) << ", want "
                                         << describe(want) << "; stderr: '" << o.err << "'";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult exited_with(const ExecOutcome& o, int code) {
  return exit_is(o, ExitPayload::exited, code);
}
::testing::AssertionResult signaled_with(const ExecOutcome& o, int signo) {
  return exit_is(o, ExitPayload::signaled, signo);
}

::testing::AssertionResult refused_with(const ExecOutcome& o, std::uint16_t code) {
  if (o.exit)
    return ::testing::AssertionFailure()
           << "EXIT " << describe(*o.exit) << " instead of ERROR " << code;
  if (!o.error)
    return ::testing::AssertionFailure() << "no ERROR (connection closed: " << o.closed << ")";
  if (o.error->code != code)
    return ::testing::AssertionFailure()
           << "ERROR " << o.error->code << " '" << o.error->text << "', want " << code;
  if (!o.closed) return ::testing::AssertionFailure() << "the server did not close after ERROR";
  return ::testing::AssertionSuccess();
}

}  // namespace duplex::test
