// Server key trust: the pure decision, the messages, and the two side effects (known_hosts append,
// the question on /dev/tty).
#include "duplex/client/trust.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace duplex::client {
namespace {

// A line typed at the prompt longer than this is not an answer we take.
constexpr std::size_t kMaxAnswer = 256;

// The terminal, closed on every way out.
struct Tty {
  Tty() : fd(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) {}
  ~Tty() {
    if (fd >= 0) ::close(fd);
  }
  Tty(const Tty&) = delete;
  Tty& operator=(const Tty&) = delete;
  int fd;
};

Failure refusal(std::string detail) {
  return fail(std::errc::permission_denied, std::move(detail));
}

std::string_view trimmed(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(kSpace) - b + 1);
}

bool is_yes(std::string_view answer, std::string_view offered) {
  const auto a = trimmed(answer);
  if (a == offered) return true;  // ssh also takes the fingerprint itself as the answer
  if (a.size() != 3) return false;
  std::string lower(a);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return lower == "yes";
}

// known_hosts lines name HOST:PORT, or a Unix socket by its absolute path.
HostKeyCheck look_up(const KnownHosts& hosts, const std::string& name, std::string_view offered) {
  HostKeyCheck result;
  for (const auto& e : hosts.entries()) {
    if (e.name != name) continue;
    if (e.fingerprint == offered) return HostKeyCheck{HostKeyStatus::known, e.fingerprint, e.line};
    if (result.status == HostKeyStatus::unknown)
      result = HostKeyCheck{HostKeyStatus::changed, e.fingerprint, e.line};
  }
  return result;
}

Status pin(const net::Endpoint& ep, const std::string& name, std::string_view offered,
           const std::string& path) {
  if (ep.is_unix()) {
    if (!can_pin_socket_path(ep.path))
      return refusal(fmt::format(
          "{} is not a known host (key {}), and known_hosts cannot hold that path (a blank or "
          "control character in it): pass --fingerprint {} (checked on every connection)",
          name, offered, offered));
    if (auto ok = append_known_socket(path, ep.path, offered); !ok)
      return fail(ok.error(), fmt::format("cannot pin the key of {}: {}", name, ok.message()));
  } else if (auto ok = append_known_host(path, ep.host, ep.port, offered); !ok) {
    return fail(ok.error(), fmt::format("cannot pin the key of {}: {}", name, ok.message()));
  }
  spdlog::info("pinned {} {}", name, offered);
  return {};
}

}  // namespace

TrustVerdict decide_trust(const HostKeyCheck& known, std::string_view offered,
                          const TrustOptions& opt) noexcept {
  if (known.status == HostKeyStatus::changed) return TrustVerdict::refuse_changed;
  if (!opt.fingerprint.empty() && opt.fingerprint != offered) return TrustVerdict::refuse_mismatch;
  if (known.status == HostKeyStatus::known) return TrustVerdict::go_on;
  if (!opt.fingerprint.empty() || opt.accept_new) return TrustVerdict::pin;
  if (opt.interactive) return TrustVerdict::ask;
  return TrustVerdict::refuse_unknown;
}

std::string pin_name(const net::Endpoint& ep) {
  return ep.is_unix() ? ep.path : known_host_name(ep.host, ep.port);
}

std::string changed_key_message(std::string_view name, std::size_t line, std::string_view pinned,
                                std::string_view offered, std::string_view known_hosts_path) {
  return fmt::format(
      "the key of {} has changed: known_hosts (line {}) has {}, the server showed {}. If that is "
      "expected, remove the line from {}.",
      name, line, pinned, offered, known_hosts_path);
}

std::string mismatch_message(std::string_view name, std::string_view expected,
                             std::string_view offered) {
  return fmt::format("{} showed the key {}, not {} as --fingerprint says: refusing to go on", name,
                     offered, expected);
}

std::string unknown_host_message(std::string_view name, std::string_view offered) {
  return fmt::format(
      "{} is not a known host (key {}); check the fingerprint with the server's owner (`duplex "
      "fingerprint` on the server), then pass --fingerprint {} or --trust accept-new",
      name, offered, offered);
}

std::string trust_question(std::string_view name, std::string_view offered) {
  return fmt::format(
      "The authenticity of {} can't be established.\nIts key fingerprint is {}.\nTrust it and "
      "remember it (yes/no)? ",
      name, offered);
}

std::optional<std::string> ask_on_tty(const std::string& question) {
  const Tty tty;
  if (tty.fd < 0) return std::nullopt;
  for (std::size_t done = 0; done < question.size();) {
    const ssize_t n = ::write(tty.fd, question.data() + done, question.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;
    done += static_cast<std::size_t>(n);
  }
  // The terminal is in canonical mode: each read returns at most one line.
  std::string answer;
  std::array<char, 64> buf{};
  while (answer.size() < kMaxAnswer) {
    const ssize_t n = ::read(tty.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buf.data(), static_cast<std::size_t>(n));
    if (answer.find('\n') != std::string::npos) break;
  }
  return answer.substr(0, answer.find('\n'));
}

Status check_server_key(const net::Endpoint& ep, std::string_view offered, const TrustOptions& opt,
                        const AskFunction& ask) {
  const std::string name = pin_name(ep);
  const std::string path = opt.known_hosts.empty() ? default_known_hosts_path() : opt.known_hosts;
  auto hosts = load_known_hosts(path);
  if (!hosts) return std::move(hosts).failure();
  const HostKeyCheck known = look_up(*hosts, name, offered);
  switch (decide_trust(known, offered, opt)) {
    case TrustVerdict::go_on: return {};
    case TrustVerdict::refuse_changed:
      return refusal(changed_key_message(name, known.line, known.pinned, offered, path));
    case TrustVerdict::refuse_mismatch:
      return refusal(mismatch_message(name, opt.fingerprint, offered));
    case TrustVerdict::refuse_unknown: return refusal(unknown_host_message(name, offered));
    case TrustVerdict::pin:
      // A socket path known_hosts cannot hold: the --fingerprint checked above is the pin.
      if (ep.is_unix() && !opt.fingerprint.empty() && !can_pin_socket_path(ep.path)) return {};
      return pin(ep, name, offered, path);
    case TrustVerdict::ask: {
      const auto answer = ask ? ask(trust_question(name, offered)) : std::nullopt;
      if (!answer) return refusal(unknown_host_message(name, offered));
      if (!is_yes(*answer, offered))
        return refusal(
            fmt::format("{}: key {} not trusted (the answer was not yes)", name, offered));
      return pin(ep, name, offered, path);
    }
  }
  return refusal(unknown_host_message(name, offered));
}

}  // namespace duplex::client
