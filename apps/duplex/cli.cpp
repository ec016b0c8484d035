// Shared command-line helpers.
#include "cli.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "duplex/core/secure_file.hpp"

namespace duplex::app {

std::string spell_out_address(const std::string& typed) {
  namespace fs = std::filesystem;
  const auto absolute = [](std::string_view rel) {
    return fs::absolute(fs::path(rel)).lexically_normal().string();
  };
  // 8080 or :8080, as `-l 8080` means for most servers: the default host.
  std::string_view port = typed;
  if (!port.empty() && port.front() == ':') port.remove_prefix(1);
  if (!port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }))
    return fmt::format("tcp://127.0.0.1:{}", port);
  // /run/x.sock, ./x.sock, ../x.sock: a Unix socket, as nc -U and socat take it.
  if (typed.starts_with('/')) return "unix://" + typed;
  if (typed.starts_with("./") || typed.starts_with("../")) return "unix://" + absolute(typed);
  // unix://./x.sock: a path relative to here, made absolute (the URL form wants one). It must
  // say so with ./ or ../: unix://x.sock is more likely a missing slash than a relative path.
  for (const std::string_view scheme : {"unix://", "unixgram://", "tls+unix://"}) {
    const std::string_view rest =
        std::string_view(typed).substr(typed.starts_with(scheme) ? scheme.size() : typed.size());
    if (rest.starts_with("./") || rest.starts_with("../"))
      return std::string(scheme) + absolute(rest);
  }
  return typed;
}

net::Endpoint parse_url(const std::string& typed) {
  const std::string url = spell_out_address(typed);
  auto ep = net::parse_endpoint(url);
  if (!ep) {
    // A plain word may have been meant as a Host alias of the client config.
    const bool word = typed.find_first_of(":/") == std::string::npos;
    throw UsageError(fmt::format(
        "bad URL '{}': {}{}", typed, ep.message(),
        word ? fmt::format("; or name it in a Host block of {}", config_path("config")) : ""));
  }
  return *ep;
}

namespace {

// A message longer than kMaxLogLine is cut, saying by how much: one event never floods a log.
std::string_view bounded(std::string_view msg, std::string& scratch) {
  if (msg.size() <= kMaxLogLine) return msg;
  scratch = fmt::format("{}… ({} more bytes)", msg.substr(0, kMaxLogLine - 64),
                        msg.size() - (kMaxLogLine - 64));
  return scratch;
}

// Text: the pattern, with the message bounded.
class TextFormatter final : public spdlog::formatter {
 public:
  explicit TextFormatter(std::string pattern)
      : pattern_(std::move(pattern)),
        inner_(std::make_unique<spdlog::pattern_formatter>(pattern_)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string scratch;
    spdlog::details::log_msg cut = msg;
    const auto text = bounded({msg.payload.data(), msg.payload.size()}, scratch);
    cut.payload = {text.data(), text.size()};
    inner_->format(cut, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<TextFormatter>(pattern_);
  }

 private:
  std::string pattern_;
  std::unique_ptr<spdlog::formatter> inner_;
};

// A line about one connection starts "[c42] " (server/ and services/ write it so): its id, and the
// rest of the message.
std::optional<std::pair<std::uint64_t, std::string_view>> conn_tag(std::string_view msg) {
  if (!msg.starts_with("[c")) return std::nullopt;
  const auto close = msg.find("] ", 2);
  if (close == std::string_view::npos || close == 2 || close > 22) return std::nullopt;
  std::uint64_t id = 0;
  for (const char ch : msg.substr(2, close - 2)) {
    if (ch < '0' || ch > '9') return std::nullopt;
    id = id * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  return std::pair{id, msg.substr(close + 2)};
}

// JSON: one object per line, {"time","level","msg"}, and "conn" (the connection's id) on a line
// about one connection; the escaping is nlohmann's.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string scratch;
    auto text = bounded({msg.payload.data(), msg.payload.size()}, scratch);
    const auto tag = conn_tag(text);
    if (tag) text = tag->second;
    const auto level = spdlog::level::to_string_view(msg.level);
    // UTC with milliseconds, the form log shippers parse without a timezone table.
    const auto since = msg.time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
    const std::time_t t = secs.count();
    std::tm utc{};
    ::gmtime_r(&t, &utc);
    nlohmann::ordered_json j = {
        {"time", fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", utc, ms)},
        {"level", std::string(level.data(), level.size())},
    };
    if (tag) j["conn"] = tag->first;
    j["msg"] = std::string(text);
    const auto line =
        j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

void setup_logging(int verbose, int quiet, bool server) {
  const auto& v = verbosity();
  // NO_COLOR (no-color.org): any non-empty value turns colour off.
  const char* no_color = std::getenv("NO_COLOR");
  const bool json = v.format == "json";
  const auto mode = (no_color != nullptr && *no_color != '\0') || json
                        ? spdlog::color_mode::never
                        : spdlog::color_mode::automatic;
  auto logger = spdlog::stderr_color_mt("duplex", mode);
  if (json)
    logger->set_formatter(std::make_unique<JsonFormatter>());
  else
    logger->set_formatter(std::make_unique<TextFormatter>(server ? "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v"
                                                                 : "duplex: %^%l%$: %v"));
  spdlog::set_default_logger(logger);
  int level = (server ? spdlog::level::info : spdlog::level::warn) - verbose + quiet;
  if (!v.level.empty()) level = spdlog::level::from_str(v.level);
  level = std::clamp(level, static_cast<int>(spdlog::level::trace),
                     static_cast<int>(spdlog::level::off));
  spdlog::set_level(static_cast<spdlog::level::level_enum>(level));
}

Verbosity& verbosity() {
  static Verbosity v;
  return v;
}

}  // namespace duplex::app
