// How the command line reads to a user: option types as words (SECONDS, BYTES, N), and a mistyped
// command, flag or dash-led argument told as one line naming the nearest thing that exists.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cli.hpp"

namespace duplex::app {
namespace {

// Edit distance (insert, delete, substitute, swap neighbours): how far a typo is from a name.
std::size_t distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i)
    d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j)
    d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// The closest of `names` to `typed`, if one is close enough to be what was meant.
std::optional<std::string> nearest(std::string_view typed, const std::vector<std::string>& names) {
  std::optional<std::string> best;
  std::size_t best_d = std::max<std::size_t>(2, typed.size() / 3) + 1;
  for (const auto& n : names) {
    const bool prefix = typed.size() >= 3 && n.rfind(typed, 0) == 0;
    const std::size_t d = prefix ? 1 : distance(typed, n);
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view typed, const std::vector<std::string>& names) {
  const auto n = nearest(typed, names);
  return n ? fmt::format(" (did you mean '{}'?)", *n) : std::string();
}

std::vector<std::string> command_names(const CLI::App& root) {
  std::vector<std::string> out;
  for (const auto* c :
       root.get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); }))
    out.push_back(c->get_name());
  return out;
}

std::vector<std::string> long_options(const CLI::App& app) {
  std::vector<std::string> out;
  for (const auto* o : app.get_options())
    for (const auto& l : o->get_lnames())
      out.push_back("--" + l);
  return out;
}

// A short option of `app` (or of the root, whose -v/-q fall through) by its letter.
const CLI::Option* short_option(const CLI::App& app, char c) {
  for (const CLI::App* a : {&app, app.get_parent()}) {
    if (a == nullptr) continue;
    for (const auto* o : a->get_options())
      for (const auto& s : o->get_snames())
        if (s.size() == 1 && s[0] == c) return o;
  }
  return nullptr;
}

// The word for a number in --help, from what the option holds and what it says of itself.
std::string type_word(const CLI::Option& o) {
  const std::string base = o.get_type_name();
  std::string text = o.get_description();
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto says = [&](std::string_view w) { return text.find(w) != std::string::npos; };
  if (base.rfind("FLOAT", 0) == 0)
    return says("second") ? "SECONDS" : says("rate") || says("/s") ? "RATE" : "NUMBER";
  if (base.rfind("UINT", 0) == 0 || base.rfind("INT", 0) == 0)
    return says("bytes") ? "BYTES" : says("port") && !says("ports") ? "PORT" : "N";
  return base;
}

}  // namespace

bool option_takes_value(const CLI::App& app, std::string_view opt) {
  if (opt.find('=') != std::string_view::npos) return false;
  for (const CLI::App* a : {&app, app.get_parent()}) {
    if (a == nullptr) continue;
    for (const auto* o : a->get_options()) {
      if (o->get_expected_max() == 0) continue;
      for (const auto& l : o->get_lnames())
        if (opt == "--" + l) return true;
      for (const auto& sn : o->get_snames())
        if (opt == "-" + sn) return true;
    }
  }
  return false;
}

void words_for_types(CLI::App& app) {
  for (auto* o : app.get_options()) {
    if (o->get_expected_max() == 0) continue;  // a flag takes no value
    // A range check keeps working; it just stops being spelled "UINT:INT in [1 - 1024]".
    // CLI11 joins the validators' descriptions to the type name with ':', so an option without
    // one has nothing to clear: no look-up past its last validator, which CLI11 answers with an
    // exception (14 of them cost a `duplex exec` 8% of its instructions).
    for (int i = 0; o->get_type_name().find(':') != std::string::npos; ++i) {
      CLI::Validator* v = nullptr;
      try {
        v = o->get_validator(i);
      } catch (const CLI::OptionNotFound&) {
        break;
      }
      if (v == nullptr) break;
      v->description("");
    }
    static const std::vector<std::string> kGeneric = {"UINT", "INT", "FLOAT", "TEXT"};
    const std::string base = o->get_type_name();
    const bool generic = std::any_of(kGeneric.begin(), kGeneric.end(),
                                     [&](const std::string& g) { return base.rfind(g, 0) == 0; });
    if (generic) o->type_name(type_word(*o));
  }
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; }))
    words_for_types(*sub);
}

std::optional<std::string> misspelled(const CLI::App& root, int argc, char** argv) {
  const CLI::App* cmd = nullptr;
  const auto takes_next = option_takes_value;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") break;
    if (!a.empty() && a[0] == '-' && takes_next(cmd != nullptr ? *cmd : root, a)) {
      ++i;
      continue;
    }
    if (cmd == nullptr) {
      if (a.empty() || a[0] == '-') continue;  // the root's own flags
      const auto names = command_names(root);
      if (std::find(names.begin(), names.end(), a) != names.end())
        cmd = root.get_subcommand(std::string(a));
      else if (const auto hidden =
                   root.get_subcommands([&](const CLI::App* c) { return c->get_name() == a; });
               !hidden.empty())
        cmd = hidden.front();
      if (cmd == nullptr)
        return fmt::format("unknown command '{}'{}; the commands are: {}", a,
                           did_you_mean(a, command_names(root)),
                           fmt::join(command_names(root), ", "));
      continue;
    }
    if (a.size() > 2 && a[0] == '-' && a[1] == '-') {
      const std::string name(a.substr(0, a.find('=')));
      const auto known = long_options(*cmd);
      const auto root_known = long_options(root);
      if (std::find(known.begin(), known.end(), name) == known.end() &&
          std::find(root_known.begin(), root_known.end(), name) == root_known.end())
        return fmt::format("unknown option '{}' for '{}'{}", name, cmd->get_name(),
                           did_you_mean(name, known));
    } else if (a.size() > 2 && a[0] == '-' && std::isalpha(static_cast<unsigned char>(a[1]))) {
      // A cluster of short flags (-vv), or one short option with its value attached (-c8): any
      // other dash-led word is an argument that needs `--` before it, never a request for help.
      for (std::size_t k = 1; k < a.size(); ++k) {
        const auto* o = short_option(*cmd, a[k]);
        // -h only alone: `send URL -hello` is a message, not a request for help.
        const bool help = a[k] == 'h' && o != nullptr && o->get_expected_max() == 0;
        if (o == nullptr || help)
          return fmt::format(
              "unknown option '{}' for '{}': an argument that starts with '-' goes after --, "
              "as in: duplex {} [OPTIONS] -- {}",
              a, cmd->get_name(), cmd->get_name(), a);
        if (o->get_expected_max() != 0) break;  // the rest is its value
      }
    }
  }
  return std::nullopt;
}

}  // namespace duplex::app
