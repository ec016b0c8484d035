// Shared command-line helpers.
#include "cli.hpp"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace duplex::app {

net::Endpoint parse_url(const std::string& url) {
  auto ep = net::parse_endpoint(url);
  if (!ep) throw UsageError(fmt::format("bad URL '{}': {}", url, ep.message()));
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

// JSON: one object per line, {"time","level","msg"}; the escaping is nlohmann's.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string scratch;
    const auto text = bounded({msg.payload.data(), msg.payload.size()}, scratch);
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
        {"msg", std::string(text)},
    };
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
