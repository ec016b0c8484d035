// `duplex serve --config FILE`: TOML parsed by toml++, each key handed to the CLI11 option of the
// same name, so the file and the command line share one set of names, checks and defaults.
#include "serve_config.hpp"

#include <algorithm>
#include <string_view>
#include <vector>

// Header-only: the one translation unit that parses TOML, and no shared library to load at the
// start of every client command.
#define TOML_HEADER_ONLY 1
#define TOML_ENABLE_FORMATTERS 0
#include <fmt/format.h>
#include <toml++/toml.h>

#include "cli.hpp"

namespace duplex::app {
namespace {

// Options the file cannot set: the file itself, and those that only print and exit.
bool settable(std::string_view name) {
  return name != "config" && name != "help" && name != "check-config";
}

// One TOML scalar as the command line would have spelled it.
std::optional<std::string> as_argument(const toml::node& v) {
  if (auto s = v.value<std::string>(); s && v.is_string()) return *s;
  if (v.is_boolean()) return *v.value<bool>() ? "true" : "false";
  if (v.is_integer()) return std::to_string(*v.value<std::int64_t>());
  if (v.is_floating_point()) return fmt::format("{}", *v.value<double>());
  return std::nullopt;
}

}  // namespace

void apply_config_file(CLI::App& serve, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    if (where.line == 0)  // not a syntax error: the file could not be read
      throw UsageError(fmt::format("--config {}: {}", path, e.description()));
    throw UsageError(fmt::format("{} line {}: {}", path, where.line, e.description()));
  }
  for (auto&& [key, value] : table) {
    std::string name(key.str());
    std::replace(name.begin(), name.end(), '_', '-');
    const auto line = key.source().begin.line;
    const auto at = [&](std::string_view what) {
      return UsageError(fmt::format("{} line {}: {}", path, line, what));
    };
    CLI::Option* opt = settable(name) ? serve.get_option_no_throw("--" + name) : nullptr;
    if (opt == nullptr)
      throw at(
          fmt::format("unknown key '{}' (keys are `duplex serve` option names: see duplex "
                      "serve --help)",
                      key.str()));
    if (opt->count() > 0) continue;  // given on the command line, which wins

    std::vector<std::string> args;
    if (const auto* list = value.as_array()) {
      if (opt->get_expected_max() <= 1)
        throw at(fmt::format("{} takes one value, not a list", key.str()));
      for (const auto& item : *list) {
        auto a = as_argument(item);
        if (!a)
          throw at(fmt::format("{}: each item must be a string, number or boolean", key.str()));
        args.push_back(std::move(*a));
      }
    } else if (auto a = as_argument(value)) {
      args.push_back(std::move(*a));
    } else {
      throw at(fmt::format("{}: expected a string, number, boolean or list; sections are not used",
                           key.str()));
    }
    try {
      for (auto& a : args)
        opt->add_result(std::move(a));
      opt->run_callback();  // converts and checks the value, as for the command line
    } catch (const CLI::Error& e) {
      throw at(e.what());
    }
  }
}

}  // namespace duplex::app
