// Shared command-line helpers.
#include "cli.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

namespace duplex::app {

net::Endpoint parse_url(const std::string& url) {
  auto ep = net::parse_endpoint(url);
  if (!ep) throw UsageError(fmt::format("bad URL '{}': {}", url, ep.message()));
  return *ep;
}

void setup_logging(int verbose, int quiet, bool server) {
  auto logger = spdlog::stderr_color_mt("duplex");
  logger->set_pattern(server ? "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v" : "duplex: %^%l%$: %v");
  spdlog::set_default_logger(logger);
  int level = (server ? spdlog::level::info : spdlog::level::warn) - verbose + quiet;
  level = std::clamp(level, static_cast<int>(spdlog::level::trace),
                     static_cast<int>(spdlog::level::off));
  spdlog::set_level(static_cast<spdlog::level::level_enum>(level));
}

Verbosity& verbosity() {
  static Verbosity v;
  return v;
}

}  // namespace duplex::app
