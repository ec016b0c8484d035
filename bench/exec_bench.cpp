// Exec service throughput, each beside its local baseline measured in the same run:
//   round trips of `true` per second (Unix socket, TCP)  vs  posix_spawn + waitpid of `true`;
//   bulk output MB/s of `head -c SIZE /dev/zero`          vs  the same command read through a local
//   pipe.
// Usage: exec_bench DUPLEX_BINARY [round_trips=300] [bulk_bytes=1073741824]
// Starts its own `duplex serve --exec` on a temp Unix socket and 127.0.0.1:0, stops it at the end.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "duplex/client/connection.hpp"
#include "duplex/net/endpoint.hpp"
#include "duplex/wire/messages.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using duplex::Bytes;
namespace wire = duplex::wire;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double baseline_spawn_true(int n) {
  const auto t = Clock::now();
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    if (posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ) != 0) std::exit(1);
    int st;
    waitpid(pid, &st, 0);
  }
  return n / seconds_since(t);
}

double baseline_pipe(std::uint64_t bytes) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) std::exit(1);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  const std::string count = std::to_string(bytes);
  std::vector<std::string> args{"head", "-c", count, "/dev/zero"};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  const auto t = Clock::now();
  posix_spawnp(&pid, "head", &fa, nullptr, argv.data(), environ);
  close(p[1]);
  std::vector<char> buf(64 * 1024);
  std::uint64_t got = 0;
  for (ssize_t n; (n = read(p[0], buf.data(), buf.size())) > 0;)
    got += static_cast<std::uint64_t>(n);
  close(p[0]);
  int st;
  waitpid(pid, &st, 0);
  return static_cast<double>(got) / 1e6 / seconds_since(t);
}

// One authenticated connection; runs commands to their EXIT and counts stdout bytes.
struct ExecConn {
  asio::io_context ctx;
  std::optional<duplex::client::Connection> conn;

  explicit ExecConn(const std::string& url, const std::string& token) {
    auto ep = *duplex::net::parse_endpoint(url);
    run([&]() -> asio::awaitable<void> {
      duplex::client::ClientOptions o;
      o.protocol = duplex::client::Protocol::framed;
      o.timeout = std::chrono::milliseconds(0);
      auto c = co_await duplex::client::Connection::open(ep, o);
      if (!c) std::exit(1);
      conn.emplace(std::move(*c));
      Bytes f;
      wire::encode(wire::Auth{token}, f);
      auto w = co_await conn->write(f);
      auto r = co_await conn->read_frame();
      if (!w) std::exit(1);
      if (!r || r->type != wire::MsgType::auth_ok) std::exit(1);
    });
  }
  template <class F>
  void run(F f) {
    std::exception_ptr err;
    asio::co_spawn(ctx, f(), [&](std::exception_ptr e) { err = e; });
    ctx.restart();
    ctx.run();
    if (err) std::rethrow_exception(err);
  }
  std::uint64_t exec(std::vector<std::string> argv) {
    std::uint64_t out = 0;
    run([&]() -> asio::awaitable<void> {
      Bytes f;
      wire::ExecStart req;
      req.argv = argv;
      wire::encode(req, f);
      wire::encode_frame(wire::MsgType::stdin_eof, {}, f);
      auto w = co_await conn->write(f);
      if (!w) std::exit(1);
      for (;;) {
        auto r = co_await conn->read_frame();
        if (!r) std::exit(1);
        if (r->type == wire::MsgType::stdout_data) out += r->payload.size();
        if (r->type == wire::MsgType::exit) co_return;
      }
    });
    return out;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: exec_bench DUPLEX_BINARY [round_trips] [bulk_bytes]\n");
    return 2;
  }
  const std::string bin = argv[1];
  const int n = argc > 2 ? std::atoi(argv[2]) : 300;
  const std::uint64_t bulk = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : (1ull << 30);

  char dir_tmpl[] = "/tmp/duplex-bench-XXXXXX";
  const std::string dir = mkdtemp(dir_tmpl);
  const std::string sock = dir + "/d.sock", token_file = dir + "/token", out_file = dir + "/out";
  // As root the server runs commands only when told that root is meant (a benchmark of our own
  // `true` and `head`).
  const std::string cmd = bin + " -q serve --exec" + (geteuid() == 0 ? " --allow-root" : "") +
                          " --token-file " + token_file + " --listen unix://" + sock +
                          " --listen tcp://127.0.0.1:0 > " + out_file + " & echo $!";
  FILE* p = popen(cmd.c_str(), "r");
  int server_pid = 0;
  if (!p || std::fscanf(p, "%d", &server_pid) != 1) return 1;
  pclose(p);
  std::string tcp_url;
  for (int i = 0; i < 200 && tcp_url.empty(); ++i) {
    usleep(20000);  // polling a file the server writes once; this is a benchmark, not a test
    FILE* f = std::fopen(out_file.c_str(), "r");
    char line[256];
    while (f && std::fgets(line, sizeof line, f))
      if (std::string l = line; l.find("tcp://") != std::string::npos)
        tcp_url = l.substr(l.find("tcp://"), l.find('\n') - l.find("tcp://"));
    if (f) std::fclose(f);
  }
  std::string token;
  if (FILE* f = std::fopen(token_file.c_str(), "r")) {
    char buf[256];
    if (std::fgets(buf, sizeof buf, f))
      token = std::string(buf).substr(0, std::string(buf).find('\n'));
    std::fclose(f);
  }

  const double base_rt = baseline_spawn_true(n);
  ExecConn unix_conn("unix://" + sock, token);
  auto t = Clock::now();
  for (int i = 0; i < n; ++i)
    unix_conn.exec({"true"});
  const double unix_rt = n / seconds_since(t);
  ExecConn tcp_conn(tcp_url, token);
  t = Clock::now();
  for (int i = 0; i < n; ++i)
    tcp_conn.exec({"true"});
  const double tcp_rt = n / seconds_since(t);

  const double base_bulk = baseline_pipe(bulk);
  t = Clock::now();
  const auto got = unix_conn.exec({"head", "-c", std::to_string(bulk), "/dev/zero"});
  const double unix_bulk = static_cast<double>(got) / 1e6 / seconds_since(t);
  t = Clock::now();
  const auto got_tcp = tcp_conn.exec({"head", "-c", std::to_string(bulk), "/dev/zero"});
  const double tcp_bulk = static_cast<double>(got_tcp) / 1e6 / seconds_since(t);

  std::printf("round trips of `true` (%d sequential):\n", n);
  std::printf("  baseline posix_spawn+wait   %8.0f /s\n", base_rt);
  std::printf("  duplex exec over unix       %8.0f /s  (%.2f of baseline)\n", unix_rt,
              unix_rt / base_rt);
  std::printf("  duplex exec over tcp        %8.0f /s  (%.2f of baseline)\n", tcp_rt,
              tcp_rt / base_rt);
  std::printf("bulk output of head -c %llu /dev/zero:\n", static_cast<unsigned long long>(bulk));
  std::printf("  baseline local pipe         %8.0f MB/s\n", base_bulk);
  std::printf("  duplex exec over unix       %8.0f MB/s  (%.2f of baseline)\n", unix_bulk,
              unix_bulk / base_bulk);
  std::printf("  duplex exec over tcp        %8.0f MB/s  (%.2f of baseline)\n", tcp_bulk,
              tcp_bulk / base_bulk);
  kill(server_pid, SIGTERM);
  waitpid(server_pid, nullptr, 0);
  std::filesystem::remove_all(dir);
  return (got == bulk && got_tcp == bulk) ? 0 : 1;
}
