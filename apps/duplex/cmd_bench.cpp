// `duplex bench`: load generation against any upper/echo or exec server (engine in loadgen/).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "cli.hpp"
#include "client_common.hpp"
#include "duplex/core/token_file.hpp"
#include "duplex/loadgen/engine.hpp"
#include "duplex/loadgen/report.hpp"

namespace duplex::app {
namespace {

// Could not connect at all: ssh's 255, as `duplex exec` reports it.
constexpr int kExitNoConnection = 255;

struct BenchFlags {
  std::string url;
  std::string mode = "pingpong";
  std::size_t connections = 1;
  double duration_s = 5.0;
  std::size_t size = 64;
  std::optional<double> rate;
  std::string verify = "upper";
  std::string protocol = "auto";
  std::size_t threads = 0;
  double warmup_s = 0.5;
  std::optional<pid_t> server_pid;
  double hold_s = 2.0;
  double timeout_s = 5.0;
  bool json = false;
  std::string command = "true";
  bool new_connection = false;
  std::string token_file;
  TlsClientFlags tls;
};

loadgen::BenchOptions to_options(const BenchFlags& f) {
  using namespace loadgen;
  BenchOptions o;
  o.url = f.url;
  o.endpoint = parse_url(f.url);
  o.mode = f.mode == "storm"  ? Mode::storm
           : f.mode == "idle" ? Mode::idle
           : f.mode == "exec" ? Mode::exec
                              : Mode::pingpong;
  o.protocol = f.protocol == "raw"      ? WireProtocol::raw
               : f.protocol == "framed" ? WireProtocol::framed
                                        : WireProtocol::detect;
  o.verify = f.verify == "echo" ? Verify::echo : f.verify == "none" ? Verify::none : Verify::upper;
  o.connections = f.connections;
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  o.threads = f.threads > 0 ? f.threads : std::min(f.connections, cores);
  o.duration = std::chrono::duration<double>(f.duration_s);
  o.warmup = std::chrono::duration<double>(f.warmup_s);
  o.size = f.size;
  o.rate = f.rate;
  o.hold = std::chrono::duration<double>(f.hold_s);
  o.server_pid = f.server_pid;
  o.timeout = std::chrono::duration<double>(f.timeout_s);
  o.command = f.command;
  o.new_connection = f.new_connection;

  const bool datagram = o.endpoint.transport == net::Transport::udp ||
                        o.endpoint.transport == net::Transport::unix_dgram;
  if (datagram) {
    f.tls.refuse_for_datagrams(f.url);
    if (o.mode != Mode::pingpong)
      throw UsageError(
          fmt::format("--mode {} needs a stream address; {} carries datagrams "
                      "(pingpong only)",
                      f.mode, f.url));
    if (f.protocol == "framed")
      throw UsageError("--protocol framed needs a stream address: datagrams are raw");
    o.protocol = WireProtocol::raw;
  } else {
    o.tls = f.tls.tls;
    o.trust = f.tls.trust_options();
  }
  if (o.mode == Mode::exec) {
    if (f.protocol == "raw") throw UsageError("--mode exec speaks the framed protocol, not raw");
    auto token = resolve_token(f.token_file);
    if (!token) throw UsageError(token.message());
    o.token = *token;
  }
  if (o.mode != Mode::exec && o.size == 0 && o.protocol != WireProtocol::framed)
    throw UsageError("-s 0: an empty message cannot be sent in the raw protocol");
  return o;
}

int run_bench(const BenchFlags& f) {
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/false);
  const auto opt = to_options(f);
  auto outcome = loadgen::run_bench(opt);
  if (!outcome) {
    std::fprintf(stderr, "duplex: %s\n", outcome.message().c_str());
    return kExitNoConnection;
  }
  const auto& [stats, facts] = **outcome;
  const auto report = loadgen::make_report(opt, stats, facts);
  for (std::size_t k = 0; k < loadgen::kErrorKinds; ++k) {
    if (report.errors_by_kind[k] == 0) continue;
    std::fprintf(stderr, "duplex: %llu %s error%s, the first: %s\n",
                 static_cast<unsigned long long>(report.errors_by_kind[k]),
                 std::string(loadgen::name_of(static_cast<loadgen::ErrorKind>(k))).c_str(),
                 report.errors_by_kind[k] == 1 ? "" : "s", report.first_errors[k].c_str());
  }
  const std::string text = f.json ? loadgen::to_json(report) + "\n" : loadgen::to_text(report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (std::fflush(stdout) != 0) return kExitFailure;
  return report.errors == 0 ? kExitOk : kExitFailure;
}

}  // namespace

CLI::App* add_bench(CLI::App& root, CommandResult& result) {
  auto f = std::make_shared<BenchFlags>();
  auto* cmd = root.add_subcommand("bench", "Measure a server: message rate, latency, errors");
  cmd->add_option("url", f->url,
                  "Server address (tcp://HOST:PORT, HOST:PORT, unix:///path, tls://HOST:PORT, "
                  "tls+unix:///path, udp://HOST:PORT)")
      ->required();
  cmd->add_option("--mode", f->mode,
                  "pingpong: send, read the whole reply, verify, repeat; storm: connect, one "
                  "round trip, close; idle: open -c connections and hold them; exec: commands "
                  "through the exec service")
      ->check(CLI::IsMember({"pingpong", "storm", "idle", "exec"}))
      ->capture_default_str();
  cmd->add_option("-c,--connections", f->connections, "Connections (exec: workers) in parallel")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  cmd->add_option("-d,--duration", f->duration_s, "SECONDS measured (after the warm-up)")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  cmd->add_option("-s,--size", f->size, "BYTES of payload in each message")
      ->check(CLI::Range(std::size_t{0}, std::size_t{64} << 20))
      ->capture_default_str();
  cmd->add_option("--rate", f->rate,
                  "Messages/s in total, open loop: latency counts from when each message was "
                  "due (default: closed loop, as fast as replies come)")
      ->check(CLI::Range(1e-3, 1e9));
  cmd->add_option("--verify", f->verify,
                  "Check each reply: upper (a-z upper-cased), echo (identical), none")
      ->check(CLI::IsMember({"upper", "echo", "none"}))
      ->capture_default_str();
  cmd->add_option("--protocol", f->protocol,
                  "raw: the tutorial's bytes in, bytes out; framed: duplex's frames; auto: "
                  "framed unless the server echoes the handshake (as `duplex send`)")
      ->check(CLI::IsMember({"auto", "raw", "framed"}))
      ->capture_default_str();
  cmd->add_option("-t,--threads", f->threads,
                  "Load generator threads (default: the smaller of -c and the cores)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}));
  cmd->add_option("--warmup", f->warmup_s, "SECONDS run first and not counted")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--server-pid", f->server_pid,
                  "idle: the server's pid, whose RSS is read before and with the connections "
                  "open");
  cmd->add_option("--hold", f->hold_s, "idle: SECONDS the connections are held open")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  cmd->add_option("--timeout", f->timeout_s,
                  "SECONDS a reply, connect or command may take before it counts as a timeout "
                  "error")
      ->check(CLI::Range(0.001, 1e6))
      ->capture_default_str();
  cmd->add_flag("--json", f->json, "Print one JSON object on stdout instead of the text report");
  cmd->add_option("--command", f->command, "exec: the command, run with sh -c")
      ->capture_default_str();
  cmd->add_flag("--new-connection", f->new_connection,
                "exec: one connection per command (default: one persistent connection per "
                "worker)");
  cmd->add_option("--token-file", f->token_file,
                  "exec: token file (default: $DUPLEX_TOKEN, then ~/.config/duplex/token)");
  f->tls.add_to(*cmd);
  cmd->callback([f, &result] { result.code = run_bench(*f); });
  return cmd;
}

}  // namespace duplex::app
