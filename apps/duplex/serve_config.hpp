// `duplex serve --config FILE`: a TOML file whose keys are serve's own long options.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace duplex::app {

/// Gives every key of the TOML file at `path` to the option of `serve` with that long name
/// (`max-connections = 100`, or `max_connections`; a list for a repeatable option; true/false for
/// a flag), except options the command line set: the command line wins. Throws UsageError
/// ("FILE line N: …") for a file that does not parse, an unknown key or a bad value.
void apply_config_file(CLI::App& serve, const std::string& path);

}  // namespace duplex::app
