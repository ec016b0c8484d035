// `duplex exec web1 -- uptime`: a Host alias from the client config expanded on the command line,
// as if its settings had been typed (what is typed wins), before CLI11 reads it.
#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli.hpp"
#include "duplex/core/client_config.hpp"

namespace duplex::app {
namespace {

// Commands whose first argument is a server address.
bool takes_server(std::string_view cmd) {
  return cmd == "send" || cmd == "chat" || cmd == "exec" || cmd == "shell" || cmd == "bench" ||
         cmd == "stats";
}

// Whether `args` (up to a `--`) already spell option `opt` ("--fingerprint", or "-i").
bool given(const std::vector<std::string>& args, const CLI::Option& opt) {
  for (const auto& a : args) {
    if (a == "--") return false;
    for (const auto& l : opt.get_lnames())
      if (a == "--" + l || a.rfind("--" + l + "=", 0) == 0) return true;
    for (const auto& s : opt.get_snames())
      if (a == "-" + s) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> expand_host_alias(const CLI::App& root, std::vector<std::string> args) {
  // Find the command and its first positional word, skipping options and their values.
  const CLI::App* cmd = nullptr;
  std::size_t cmd_at = 0, word_at = 0;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (!a.empty() && a[0] == '-') {
      if (option_takes_value(cmd != nullptr ? *cmd : root, a)) ++i;
      continue;
    }
    if (cmd == nullptr) {
      if (!takes_server(a)) return args;
      cmd = root.get_subcommand(a);
      cmd_at = i;
      continue;
    }
    word_at = i;
    break;
  }
  if (cmd == nullptr || word_at == 0) return args;

  auto cfg = load_client_config();
  if (!cfg) throw UsageError(cfg.message());
  bool matched = false;
  const HostSettings host = cfg->lookup(args[word_at], &matched);
  if (!matched) return args;
  if (!host.address.empty()) args[word_at] = host.address;
  // Settings become options placed right after the command name, where any option may stand.
  std::vector<std::string> added;
  const auto add = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    const CLI::Option* opt = cmd->get_option_no_throw(name);
    if (opt == nullptr || given(args, *opt)) return;
    added.insert(added.end(), {name, value});
  };
  add("--token-file", host.token_file);
  add("--identity", host.identity);
  add("--fingerprint", host.fingerprint);
  add("--known-hosts", host.known_hosts);
  add("--trust", host.trust);
  args.insert(args.begin() + static_cast<std::ptrdiff_t>(cmd_at) + 1, added.begin(), added.end());
  return args;
}

}  // namespace duplex::app
