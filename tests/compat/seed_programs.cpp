// Running the seed's Python programs: copies with the port changed, server.py as a fixture.
#include "seed_programs.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace duplex::test {
namespace {

constexpr std::string_view kSeedPort = "8080";
constexpr std::string_view kServerStarted = "服务端开始启动";

bool python3_on_path() {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";
    if (::access((std::filesystem::path(dir) / "python3").c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

std::string seed_unavailable_reason() {
#ifdef DUPLEX_SEED_DIR_DEFAULT
  // ctest passes DUPLEX_SEED_DIR; this default also covers running compat_tests by hand. An
  // explicit value (even one naming no folder) wins.
  if (!std::getenv("DUPLEX_SEED_DIR")) ::setenv("DUPLEX_SEED_DIR", DUPLEX_SEED_DIR_DEFAULT, 0);
#endif
  if (seed_dir().empty()) {
    const char* d = std::getenv("DUPLEX_SEED_DIR");
    return "seed programs not found at " + std::string(d && *d ? d : "(DUPLEX_SEED_DIR unset)") +
           ": the interoperability tests need ../shared/seed/python beside the project";
  }
  if (!python3_on_path())
    return "python3 not found on PATH: the interoperability tests run the seed's Python programs";
  return {};
}

std::string seed_copy(const TempDir& dir, const std::string& name, int port) {
  std::string text = read_file(std::filesystem::path(seed_dir()) / name);
  const std::string to = std::to_string(port);
  std::size_t replaced = 0;
  for (auto at = text.find(kSeedPort); at != std::string::npos;
       at = text.find(kSeedPort, at + to.size())) {
    text.replace(at, kSeedPort.size(), to);
    ++replaced;
  }
  if (replaced == 0)
    throw std::runtime_error(name + " no longer contains the port " + std::string(kSeedPort));
  const auto out = dir.file(name);
  std::ofstream f(out, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f.flush()) throw std::runtime_error("cannot write " + out);
  return out;
}

std::vector<std::string> python(const std::string& script) {
  return {"python3", "-u", script};
}

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

SeedServer::SeedServer(const TempDir& dir) {
  // Another process may take the port between free_tcp_port() and server.py's bind: then
  // server.py dies with "Address already in use" and we try another port.
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_tcp_port();
    proc_ = std::make_unique<Process>(python(seed_copy(dir, "server.py", port_)));
    if (auto line = proc_->read_line(10s)) {
      if (line->find(kServerStarted) != std::string::npos) return;
      throw std::runtime_error("server.py printed an unexpected first line: " + *line);
    }
    if (!proc_->wait(1s))
      throw std::runtime_error("server.py did not print its start-up line within 10 s");
    // It exited before starting (port taken): next attempt.
  }
  throw std::runtime_error("server.py could not start: " + proc_->read_all_stderr(1s));
}

SeedServer::~SeedServer() {
  if (proc_ && !proc_->wait(0ms)) {
    proc_->signal(SIGKILL);
    proc_->wait(5s);
  }
}

std::string describe(const std::optional<ExitStatus>& st) {
  if (!st) return "still running";
  return (st->exited ? "exit " : "signal ") + std::to_string(st->code);
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const auto nl = s.find('\n');
    out.emplace_back(s.substr(0, nl));
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  return out;
}

std::vector<std::string> printed_replies(std::string_view client_stdout) {
  std::vector<std::string> out;
  for (const auto& line : split_lines(client_stdout))
    if (line.rfind(kReplyPrefix, 0) == 0) out.push_back(line.substr(kReplyPrefix.size()));
  return out;
}

}  // namespace duplex::test
