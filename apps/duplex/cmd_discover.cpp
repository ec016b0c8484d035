// `duplex discover`: probe the LAN by broadcast and multicast, list the duplex servers that answer.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "client_common.hpp"
#include "duplex/client/datagram_client.hpp"

namespace duplex::app {
namespace {

struct DiscoverOptions {
  std::uint16_t port = 8080;
  double timeout_s = 1.0;
  bool json = false;
  std::string via = "all";
};

// "udp://10.0.0.9:8080" before "udp://10.0.0.10:8080": digit runs compare as numbers.
bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      std::size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie])))
        ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je])))
        ++je;
      const auto na = std::stoull(a.substr(i, std::min<std::size_t>(ie - i, 18)));
      const auto nb = std::stoull(b.substr(j, std::min<std::size_t>(je - j, 18)));
      if (na != nb) return na < nb;
      i = ie;
      j = je;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

std::string joined(const std::vector<std::string>& v) {
  return v.empty() ? "-" : fmt::format("{}", fmt::join(v, ","));
}

void print_table(const std::vector<client::DiscoveredServer>& servers) {
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"ADDRESS", "NAME", "VERSION", "SERVICES", "LISTENERS"});
  for (const auto& s : servers)
    rows.push_back({s.address, s.name.empty() ? "-" : s.name, s.version.empty() ? "-" : s.version,
                    joined(s.services), joined(s.listeners)});
  std::array<std::size_t, 5> width{};
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c)
      width[c] = std::max(width[c], r[c].size());
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t c = 0; c < r.size(); ++c)
      line += c + 1 < r.size() ? fmt::format("{:<{}}  ", r[c], width[c]) : r[c];
    std::puts(line.c_str());
  }
}

void print_json(const std::vector<client::DiscoveredServer>& servers) {
  auto out = nlohmann::json::array();
  for (const auto& s : servers) {
    auto j = nlohmann::json::parse(s.json, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) j = nlohmann::json::object();
    j["address"] = s.address;
    out.push_back(std::move(j));
  }
  const std::string text = out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  std::puts(text.c_str());
}

int run_discover(const DiscoverOptions& o) {
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/false);
  client::DiscoverOptions opt;
  opt.port = o.port;
  opt.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.timeout_s * 1000));
  opt.via_broadcast = o.via != "multicast";
  opt.via_multicast = o.via != "broadcast";
  asio::io_context ctx(1);
  auto found = run_sync(ctx, client::discover(opt));
  if (!found) {
    std::fprintf(stderr, "duplex: %s\n", found.message().c_str());
    return kExitFailure;
  }
  auto& servers = *found;
  std::sort(servers.begin(), servers.end(),
            [](const auto& a, const auto& b) { return natural_less(a.address, b.address); });
  if (o.json) {
    print_json(servers);
  } else if (!servers.empty()) {
    print_table(servers);
  }
  if (servers.empty())
    std::fprintf(stderr, "duplex: no servers found on udp port %u within %g s\n",
                 static_cast<unsigned>(o.port), o.timeout_s);
  if (std::fflush(stdout) != 0) return kExitFailure;
  return servers.empty() ? kExitFailure : kExitOk;
}

}  // namespace

CLI::App* add_discover(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<DiscoverOptions>();
  auto* cmd = root.add_subcommand(
      "discover",
      "Find duplex servers on the local network: a probe is broadcast (255.255.255.255) and sent "
      "to the multicast group 239.255.42.99 (and ff02::42:99 on each IPv6 interface); every "
      "server with a udp:// listener on PORT answers. Exit status: 0 when at least one server "
      "answered, 1 when none did (like grep)");
  cmd->add_option("--port", o->port, "The udp PORT the servers listen on")
      ->type_name("PORT")
      ->capture_default_str();
  cmd->add_option("--timeout", o->timeout_s, "SECONDS to collect replies")
      ->type_name("SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_flag("--json", o->json, "Print a JSON array (one object per server) instead of a table");
  cmd->add_option("--via", o->via,
                  "How the probe is sent: all, broadcast (only 255.255.255.255) or multicast "
                  "(only the groups)")
      ->type_name("MODE")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "broadcast", "multicast"}));
  cmd->callback([o, &result] { result.code = run_discover(*o); });
  return cmd;
}

}  // namespace duplex::app
