// `duplex bench`: load generation against any upper/echo or exec server (engine in loadgen/).
#include <memory>
#include <string>

#include "cli.hpp"

namespace duplex::app {

CLI::App* add_bench(CLI::App& root, CommandResult& result) {
  auto url = std::make_shared<std::string>();
  auto* cmd = root.add_subcommand("bench", "Measure a server: message rate, latency, errors");
  cmd->add_option("url", *url, "Server address")->required();
  cmd->callback([&result] { result.code = kExitFailure; });
  return cmd;
}

}  // namespace duplex::app
