// ssh_config-like Host blocks: a pure parser over text, the lookup, and loading the file.
#include "duplex/core/client_config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <system_error>

#include <fmt/format.h>

#include "duplex/core/glob.hpp"
#include "duplex/core/secure_file.hpp"

namespace duplex {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Words split on blanks; a "double-quoted" word may hold spaces.
Result<std::vector<std::string>> words(std::string_view s, std::size_t line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    if (s[i] == '"') {
      const auto end = s.find('"', i + 1);
      if (end == std::string_view::npos)
        return fail(std::errc::invalid_argument, fmt::format("line {}: unclosed quote", line));
      out.emplace_back(s.substr(i + 1, end - i - 1));
      i = end + 1;
      continue;
    }
    const auto end = std::min(s.size(), s.find_first_of(" \t", i));
    out.emplace_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace

HostSettings ClientConfig::lookup(std::string_view name, bool* matched) const {
  HostSettings out;
  bool any = false;
  const auto take = [](std::string& into, const std::string& from) {
    if (into.empty()) into = from;
  };
  for (const auto& b : blocks_) {
    bool hit = false, negated = false;
    for (const auto& p : b.patterns) {
      if (!p.empty() && p[0] == '!') {
        if (glob_match(std::string_view(p).substr(1), name)) negated = true;
      } else if (glob_match(p, name)) {
        hit = true;
      }
    }
    if (!hit || negated) continue;
    any = true;
    take(out.address, b.settings.address);
    take(out.token_file, b.settings.token_file);
    take(out.identity, b.settings.identity);
    take(out.fingerprint, b.settings.fingerprint);
    take(out.known_hosts, b.settings.known_hosts);
    take(out.trust, b.settings.trust);
  }
  if (matched != nullptr) *matched = any;
  return out;
}

Result<ClientConfig> ClientConfig::parse(std::string_view text, std::string_view home) {
  ClientConfig cfg;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (const auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    // "Keyword value" or "Keyword=value".
    const auto cut = line.find_first_of(" \t=");
    if (cut == std::string_view::npos)
      return fail(std::errc::invalid_argument,
                  fmt::format("line {}: '{}' has no value", line_no, line));
    const std::string keyword = lower(line.substr(0, cut));
    std::string_view rest = trim(line.substr(cut));
    if (!rest.empty() && rest.front() == '=') rest = trim(rest.substr(1));
    auto values = words(rest, line_no);
    if (!values) return std::move(values).failure();
    if (values->empty())
      return fail(std::errc::invalid_argument,
                  fmt::format("line {}: {} has no value", line_no, keyword));
    if (keyword == "host") {
      cfg.blocks_.push_back(Block{std::move(*values), {}, line_no});
      continue;
    }
    if (cfg.blocks_.empty())
      return fail(std::errc::invalid_argument,
                  fmt::format("line {}: '{}' before any Host line (start a block with: Host NAME)",
                              line_no, keyword));
    if (values->size() != 1)
      return fail(
          std::errc::invalid_argument,
          fmt::format("line {}: {} takes one value (quote it if it has spaces)", line_no, keyword));
    std::string value = std::move(values->front());
    const bool path = keyword == "tokenfile" || keyword == "identity" || keyword == "knownhosts";
    if (path && value.rfind("~/", 0) == 0 && !home.empty())
      value = std::string(home) + value.substr(1);
    auto& s = cfg.blocks_.back().settings;
    if (keyword == "address")
      s.address = value;
    else if (keyword == "tokenfile")
      s.token_file = value;
    else if (keyword == "identity")
      s.identity = value;
    else if (keyword == "fingerprint")
      s.fingerprint = value;
    else if (keyword == "knownhosts")
      s.known_hosts = value;
    else if (keyword == "trust") {
      if (value != "accept-new" && value != "ask" && value != "strict")
        return fail(
            std::errc::invalid_argument,
            fmt::format("line {}: Trust is accept-new, ask or strict, not '{}'", line_no, value));
      s.trust = value;
    } else {
      return fail(std::errc::invalid_argument,
                  fmt::format("line {}: unknown keyword '{}' (known: Host, Address, TokenFile, "
                              "Identity, Fingerprint, KnownHosts, Trust)",
                              line_no, keyword));
    }
  }
  return cfg;
}

Result<ClientConfig> load_client_config() {
  const std::string path = config_path("config");
  auto text = read_private_file(path, FileTrust::trusted);
  if (!text) {
    if (text.error() == std::error_code(ENOENT, std::system_category())) return ClientConfig{};
    return std::move(text).failure();
  }
  const char* home = std::getenv("HOME");
  auto cfg = ClientConfig::parse(*text, home != nullptr ? home : "");
  if (!cfg) return fail(cfg.error(), fmt::format("{}: {}", path, cfg.message()));
  return cfg;
}

}  // namespace duplex
