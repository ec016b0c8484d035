// Datagram client implementation: Asio's generic datagram socket carries UDP (IPv4, IPv6) and
// Unix datagrams alike; the unixgram reply path is ours to create and to remove on every way out.
#include "duplex/client/datagram_client.hpp"

#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <tuple>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "duplex/core/bytes.hpp"
#include "duplex/wire/discovery.hpp"

namespace duplex::client {
namespace {

using net::use_tuple;
using namespace asio::experimental::awaitable_operators;
using Generic = asio::generic::datagram_protocol;
using Clock = std::chrono::steady_clock;

// ASCII only, as the upper service does it: other bytes are left as they are.
std::string ascii_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

std::error_code sys_error(int e) {
  return {e, std::system_category()};
}

std::uint64_t random_u64() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

// "1 s", "0.25 s": how the timeout reads in messages.
std::string seconds(std::chrono::milliseconds t) {
  return fmt::format("{:g} s", static_cast<double>(t.count()) / 1000.0);
}

// The URL of a datagram's sender (udp://10.0.0.2:8080, udp://[fe80::1%eth0]:8080,
// unixgram:///path; "unixgram:(unbound)" for an unnamed Unix socket).
std::string url_of(const Generic::endpoint& from) {
  const int family = from.data()->sa_family;
  if (family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(from.data());
    const std::size_t off = offsetof(sockaddr_un, sun_path);
    if (from.size() <= off || un->sun_path[0] == '\0') return "unixgram:(unbound)";
    return "unixgram://" + std::string(un->sun_path, ::strnlen(un->sun_path, from.size() - off));
  }
  if (family == AF_INET || family == AF_INET6) {
    net::ip::udp::endpoint ip;
    std::memcpy(ip.data(), from.data(), std::min(from.size(), ip.capacity()));
    ip.resize(from.size());
    net::Endpoint ep;
    ep.transport = net::Transport::udp;
    ep.host = ip.address().to_string();
    ep.port = ip.port();
    return ep.url();
  }
  return fmt::format("(address family {})", family);
}

// ---- The unixgram reply path, and its removal when a signal ends the process ----------------
// A signal handler may only use async-signal-safe calls (signal-safety(7)): unlink, sigaction
// and raise are, so the path lives in a fixed buffer and the handler does nothing else.

constexpr std::array<int, 3> kEndingSignals{SIGINT, SIGTERM, SIGHUP};
char g_path[sizeof(sockaddr_un::sun_path)];
volatile sig_atomic_t g_path_armed = 0;
struct sigaction g_previous[kEndingSignals.size()];
bool g_installed[kEndingSignals.size()];

extern "C" void remove_path_and_reraise(int sig) {
  if (g_path_armed) ::unlink(g_path);
  g_path_armed = 0;
  // The previous disposition (default: terminate) takes over; the signal is blocked while this
  // handler runs, so it is delivered again as soon as the handler returns.
  for (std::size_t i = 0; i < kEndingSignals.size(); ++i)
    if (kEndingSignals[i] == sig) ::sigaction(sig, &g_previous[i], nullptr);
  ::raise(sig);
}

/// A path of our own that the server can send replies to: unique, mode 0600, removed at
/// destruction and when SIGINT/SIGTERM/SIGHUP end the process (one per process at a time).
class ReplyPath {
 public:
  static Result<std::unique_ptr<ReplyPath>> bind(Generic::socket& sock) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path dir = "/tmp";
    if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x && fs::is_directory(x, ec)) dir = x;
    // Linux takes the new file's mode from the socket's inode (unix_bind): 0600 from the first
    // moment, without touching the process-wide umask.
    if (::fchmod(sock.native_handle(), S_IRUSR | S_IWUSR) != 0)
      return fail(sys_error(errno),
                  fmt::format("cannot make a reply socket: {}", sys_error(errno).message()));
    std::error_code last;
    for (int attempt = 0; attempt < 8; ++attempt) {
      const std::string path =
          (dir / fmt::format("duplex-{}-{:016x}.sock", ::getpid(), random_u64())).string();
      if (path.size() >= sizeof(sockaddr_un::sun_path))
        return fail(
            std::errc::filename_too_long,
            fmt::format("cannot bind a reply socket: '{}' is too long for a Unix socket", path));
      auto p = std::unique_ptr<ReplyPath>(new ReplyPath(path));
      sock.bind(Generic::endpoint(asio::local::datagram_protocol::endpoint(path)), last);
      if (!last) {
        p->arm();
        return p;
      }
      p->bound_ = false;
      if (last.value() != EADDRINUSE) break;
    }
    return fail(last,
                fmt::format("cannot bind a reply socket in {}: {}", dir.string(), last.message()));
  }

  ReplyPath(const ReplyPath&) = delete;
  ReplyPath& operator=(const ReplyPath&) = delete;
  ~ReplyPath() {
    if (armed_) {
      g_path_armed = 0;
      for (std::size_t i = 0; i < kEndingSignals.size(); ++i)
        if (g_installed[i]) ::sigaction(kEndingSignals[i], &g_previous[i], nullptr);
    }
    if (bound_) ::unlink(path_.c_str());
  }
  const std::string& path() const noexcept { return path_; }

 private:
  explicit ReplyPath(std::string path) : path_(std::move(path)) {}

  void arm() {
    if (g_path_armed) return;  // another client owns the handler; our destructor still unlinks
    std::memcpy(g_path, path_.c_str(), path_.size() + 1);
    g_path_armed = 1;
    armed_ = true;
    struct sigaction sa {};
    sa.sa_handler = remove_path_and_reraise;
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < kEndingSignals.size(); ++i) {
      g_installed[i] = false;
      if (::sigaction(kEndingSignals[i], nullptr, &g_previous[i]) != 0) continue;
      if (g_previous[i].sa_handler == SIG_IGN) continue;  // nohup: the signal ends nothing
      g_installed[i] = ::sigaction(kEndingSignals[i], &sa, nullptr) == 0;
    }
  }

  std::string path_;
  bool bound_ = true;
  bool armed_ = false;
};

// Receives one datagram before `deadline` (Clock::time_point::max(): no deadline). nullopt when
// the deadline passed; n may exceed the buffer (MSG_TRUNC reports the datagram's real length).
struct Received {
  std::error_code ec;
  std::size_t n = 0;
};
awaitable<std::optional<Received>> receive_until(Generic::socket& sock, std::span<char> buf,
                                                 Generic::endpoint& from,
                                                 Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) {
    auto [ec, n] = co_await sock.async_receive_from(asio::buffer(buf.data(), buf.size()), from,
                                                    MSG_TRUNC, use_tuple);
    co_return Received{ec, n};
  }
  asio::steady_timer timer(sock.get_executor(), deadline);
  auto raced = co_await (
      sock.async_receive_from(asio::buffer(buf.data(), buf.size()), from, MSG_TRUNC, use_tuple) ||
      timer.async_wait(use_tuple));
  if (raced.index() == 1) co_return std::nullopt;
  auto [ec, n] = std::get<0>(raced);
  co_return Received{ec, n};
}

// What -v shows (info level); nothing when the caller did not ask for steps.
template <class... Args>
void step(const DatagramOptions& opt, fmt::format_string<Args...> f, Args&&... args) {
  if (opt.log_steps) spdlog::info(f, std::forward<Args>(args)...);
}

bool is_group_address(const net::ip::address& a, bool told_broadcast) {
  if (told_broadcast || a.is_multicast()) return true;
  return a.is_v4() && a.to_v4() == net::ip::address_v4::broadcast();
}

}  // namespace

struct DatagramClient::State {
  State(asio::any_io_executor ex, net::Endpoint e, DatagramOptions o)
      : ep(std::move(e)), opt(o), sock(ex), buf(kMaxReplyDatagram) {}

  net::Endpoint ep;
  DatagramOptions opt;
  Generic::socket sock;
  Generic::endpoint dest;
  bool group = false;
  std::unique_ptr<ReplyPath> reply;
  std::vector<char> buf;
  // The last exchange, to tell a late duplicate of its reply from the reply to the next request.
  std::string last_reply;
  bool last_was_upper = false;  // that reply was the upper-cased request: an upper service
  bool replied_once = false;    // -v shows the first reply only (send may make thousands)

  // Replies that arrived after their request was answered (the answer to a resent copy) must
  // not be read as the reply to the next request.
  void drop_stale() {
    for (;;) {
      const ssize_t n = ::recv(sock.native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return;
    }
  }
};

DatagramClient::DatagramClient(std::unique_ptr<State> s) : s_(std::move(s)) {}
DatagramClient::DatagramClient(DatagramClient&&) noexcept = default;
DatagramClient& DatagramClient::operator=(DatagramClient&&) noexcept = default;
DatagramClient::~DatagramClient() = default;

bool DatagramClient::to_group() const noexcept {
  return s_->group;
}
const net::Endpoint& DatagramClient::endpoint() const noexcept {
  return s_->ep;
}
std::string DatagramClient::reply_path() const {
  return s_->reply ? s_->reply->path() : std::string();
}

awaitable<Result<DatagramClient>> DatagramClient::open(const net::Endpoint& ep,
                                                       DatagramOptions opt) {
  auto ex = co_await asio::this_coro::executor;
  auto s = std::make_unique<State>(ex, ep, opt);
  const std::string url = ep.url();
  std::error_code ec;
  if (ep.transport == net::Transport::unix_dgram) {
    s->sock.open(Generic(AF_UNIX, 0), ec);
    if (ec) co_return fail(ec, fmt::format("cannot open a socket for {}: {}", url, ec.message()));
    auto reply = ReplyPath::bind(s->sock);
    if (!reply) co_return std::move(reply).failure();
    s->reply = std::move(*reply);
    s->dest = Generic::endpoint(asio::local::datagram_protocol::endpoint(ep.path));
    // Connected: the kernel refuses datagrams to us from anyone but the server.
    s->sock.connect(s->dest, ec);
    if (ec) co_return fail(ec, fmt::format("cannot reach {}: {}", url, ec.message()));
    step(opt, "sending to the Unix datagram socket {}, replies to {}", ep.path, s->reply->path());
    co_return DatagramClient(std::move(s));
  }
  if (ep.transport != net::Transport::udp)
    co_return fail(std::errc::protocol_not_supported,
                   fmt::format("{} is not a datagram address", url));

  std::error_code not_literal;
  net::ip::make_address(ep.host, not_literal);
  if (not_literal) step(opt, "resolving {} port {}", ep.host, ep.port);
  net::ip::udp::resolver resolver(ex);
  auto [rec, results] = co_await resolver.async_resolve(
      ep.host, std::to_string(ep.port), net::ip::udp::resolver::numeric_service, use_tuple);
  if (rec || results.empty())
    co_return fail(rec ? rec : std::make_error_code(std::errc::host_unreachable),
                   fmt::format("cannot resolve {}: {}", url, rec.message()));
  if (opt.log_steps && not_literal) {
    std::string addresses;
    for (const auto& r : results)
      addresses += (addresses.empty() ? "" : ", ") + r.endpoint().address().to_string();
    step(opt, "{} is {} (datagrams go to the first)", ep.host, addresses);
  }
  const net::ip::udp::endpoint to = results.begin()->endpoint();
  s->dest = Generic::endpoint(to);
  s->group = is_group_address(to.address(), opt.broadcast);
  s->sock.open(Generic(to.protocol().family(), IPPROTO_UDP), ec);
  if (ec) co_return fail(ec, fmt::format("cannot open a socket for {}: {}", url, ec.message()));
  if (s->group) {
    if (to.address().is_v4()) s->sock.set_option(asio::socket_base::broadcast(true), ec);
    if (ec) co_return fail(ec, fmt::format("cannot broadcast to {}: {}", url, ec.message()));
    step(opt, "sending to {}: a {} address, every responder's reply is shown", url_of(s->dest),
         to.address().is_multicast() ? "multicast" : "broadcast");
  } else {
    // Connected: the kernel drops datagrams from any other address and reports ICMP
    // port-unreachable as ECONNREFUSED (udp(7)).
    s->sock.connect(s->dest, ec);
    if (ec) co_return fail(ec, fmt::format("cannot reach {}: {}", url, ec.message()));
    std::error_code lec;
    const auto local = s->sock.local_endpoint(lec);
    step(opt, "sending to {} from {}", url_of(s->dest), lec ? "?" : url_of(local));
  }
  co_return DatagramClient(std::move(s));
}

awaitable<Result<std::vector<DatagramReply>>> DatagramClient::request(std::string_view msg) {
  State& s = *s_;
  const std::string url = s.ep.url();
  const bool forever = s.opt.timeout.count() <= 0;
  const int tries = forever ? 1 : 1 + std::max(0, s.opt.retries);
  auto unreachable = [&](std::error_code ec) {
    if (ec.value() == ECONNREFUSED)
      return fail(ec, fmt::format("nothing listens on {} (port unreachable)", url));
    return fail(ec, fmt::format("{}: {}", url, ec.message()));
  };
  s.drop_stale();
  std::vector<DatagramReply> replies;
  std::set<std::string> responders;
  for (int attempt = 1; attempt <= tries; ++attempt) {
    if (attempt > 1)
      step(s.opt, "no reply from {} within {}: sending again (try {} of {})", url,
           seconds(s.opt.timeout), attempt, tries);
    const auto sent_at = Clock::now();
    auto out = asio::buffer(msg.data(), msg.size());
    auto [sec, sent] = s.group ? co_await s.sock.async_send_to(out, s.dest, use_tuple)
                               : co_await s.sock.async_send(out, use_tuple);
    if (sec.value() == EMSGSIZE)
      co_return fail(sec, fmt::format("a message of {} bytes does not fit in one datagram to {}",
                                      msg.size(), url));
    if (sec) co_return unreachable(sec);
    const auto deadline = forever ? Clock::time_point::max() : Clock::now() + s.opt.timeout;
    for (;;) {
      Generic::endpoint from;
      auto got = co_await receive_until(s.sock, s.buf, from, deadline);
      if (!got) break;  // this try's time is up
      if (got->ec) {
        // ICMP errors reach only a connected socket: a unicast destination that refused us.
        if (!s.group) co_return unreachable(got->ec);
        spdlog::debug("receive on the socket for {}: {}", url, got->ec.message());
        continue;
      }
      if (got->n > s.buf.size())
        co_return fail(std::errc::message_size,
                       fmt::format("the reply from {} is {} bytes, more than the {} a reply may be",
                                   url_of(from), got->n, s.buf.size()));
      DatagramReply r{url_of(from), std::string(s.buf.data(), got->n)};
      if (!s.replied_once)
        step(s.opt, "reply from {}: {} byte{} after {} ms", r.from, got->n, got->n == 1 ? "" : "s",
             std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent_at).count());
      if (!s.group) {
        // drop_stale() takes the duplicates that arrived before this request; one may still be
        // on its way. From an upper service (its last reply was its request upper-cased), a copy
        // of the last reply that is not this request's upper-cased form is that duplicate. Any
        // other server's replies are taken as they come: they may well repeat themselves.
        const std::string want = ascii_upper(msg);
        if (s.last_was_upper && r.payload == s.last_reply && r.payload != want) {
          spdlog::debug("{}: a late copy of the previous reply, skipped", url);
          continue;
        }
        s.replied_once = true;
        s.last_was_upper = r.payload == want;
        s.last_reply = r.payload;
        replies.push_back(std::move(r));
        co_return replies;
      }
      // Every try's copy reaches every responder: one line per responder.
      if (responders.insert(r.from).second) replies.push_back(std::move(r));
    }
    if (!replies.empty()) {
      s.replied_once = true;
      co_return replies;
    }
  }
  co_return fail(std::errc::timed_out,
                 fmt::format("no reply from {} within {} ({} {})", url, seconds(s.opt.timeout),
                             tries, tries == 1 ? "try" : "tries"));
}

// ---- Discovery ------------------------------------------------------------------------------
namespace {

struct ProbeSocket {
  explicit ProbeSocket(asio::any_io_executor ex) : sock(ex) {}
  Generic::socket sock;
  std::vector<Generic::endpoint> to;
};

// ff02::42:99 on every interface that is up, multicast-capable and has IPv6: a link-local group
// means nothing without the link it is sent on.
std::vector<unsigned> ipv6_multicast_interfaces() {
  std::vector<unsigned> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (auto* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET6) continue;
    if (!(a->ifa_flags & IFF_UP) || !(a->ifa_flags & IFF_MULTICAST)) continue;
    if (const unsigned idx = ::if_nametoindex(a->ifa_name);
        idx != 0 && std::find(out.begin(), out.end(), idx) == out.end())
      out.push_back(idx);
  }
  ::freeifaddrs(list);
  return out;
}

std::vector<std::string> string_list(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  if (auto it = j.find(key); it != j.end() && it->is_array())
    for (const auto& v : *it)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::string string_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<DiscoveredServer> parse_reply(ByteView datagram, std::uint64_t nonce,
                                            std::string from) {
  auto reply = wire::decode_reply(datagram);
  if (!reply || reply->nonce != nonce) return std::nullopt;
  auto j = nlohmann::json::parse(reply->json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  DiscoveredServer d;
  d.address = std::move(from);
  d.name = string_field(j, "name");
  d.version = string_field(j, "version");
  d.agent = string_field(j, "agent");
  d.services = string_list(j, "services");
  d.listeners = string_list(j, "listeners");
  if (auto it = j.find("pid"); it != j.end() && it->is_number_integer())
    d.pid = it->get<std::int64_t>();
  d.json = std::move(reply->json);
  return d;
}

}  // namespace

awaitable<Result<std::vector<DiscoveredServer>>> discover(DiscoverOptions opt) {
  auto ex = co_await asio::this_coro::executor;
  const std::uint64_t nonce = random_u64();
  const Bytes probe = wire::encode_probe(wire::DiscoveryProbe{nonce});
  std::error_code ec;

  std::vector<std::unique_ptr<ProbeSocket>> sockets;
  auto v4 = std::make_unique<ProbeSocket>(ex);
  if (v4->sock.open(Generic(AF_INET, IPPROTO_UDP), ec); !ec) {
    v4->sock.set_option(asio::socket_base::broadcast(true), ec);
    if (opt.via_broadcast)
      v4->to.emplace_back(net::ip::udp::endpoint(net::ip::address_v4::broadcast(), opt.port));
    if (opt.via_multicast)
      v4->to.emplace_back(net::ip::udp::endpoint(
          net::ip::make_address_v4(std::string(kDiscoveryGroupV4)), opt.port));
    sockets.push_back(std::move(v4));
  }
  if (opt.via_multicast) {
    auto v6 = std::make_unique<ProbeSocket>(ex);
    if (v6->sock.open(Generic(AF_INET6, IPPROTO_UDP), ec); !ec) {
      for (unsigned idx : ipv6_multicast_interfaces()) {
        auto group = net::ip::make_address_v6(std::string(kDiscoveryGroupV6));
        group.scope_id(idx);
        v6->to.emplace_back(net::ip::udp::endpoint(group, opt.port));
      }
      if (!v6->to.empty()) sockets.push_back(std::move(v6));
    }
  }

  // Sends the probe to every destination; true when at least one copy left.
  std::error_code last_send = std::make_error_code(std::errc::network_unreachable);
  auto send_probes = [&](ProbeSocket& p) -> awaitable<bool> {
    bool any = false;
    for (const auto& to : p.to) {
      auto [sec, n] = co_await p.sock.async_send_to(asio::buffer(probe), to, use_tuple);
      if (sec) {
        spdlog::debug("discovery probe to {}: {}", url_of(to), sec.message());
        last_send = sec;
      } else {
        any = true;
      }
    }
    co_return any;
  };

  bool sent = false;
  for (auto& p : sockets)
    sent = (co_await send_probes(*p)) || sent;
  if (!sent)
    co_return fail(last_send,
                   fmt::format("cannot send a discovery probe: {}", last_send.message()));

  const auto start = Clock::now();
  const auto deadline = start + opt.timeout;
  const auto resend_at =
      start + std::min<std::chrono::milliseconds>(opt.timeout / 2, std::chrono::milliseconds(250));
  std::vector<DiscoveredServer> found;
  std::set<std::tuple<std::string, std::string, std::int64_t>> seen;

  auto collect = [&](ProbeSocket& p) -> awaitable<void> {
    std::vector<char> buf(kMaxReplyDatagram);
    bool resent = false;
    for (;;) {
      const auto wake = resent ? deadline : std::min(deadline, resend_at);
      Generic::endpoint from;
      auto got = co_await receive_until(p.sock, buf, from, wake);
      if (!got) {
        if (Clock::now() >= deadline || resent) co_return;
        resent = true;
        co_await send_probes(p);
        continue;
      }
      if (got->ec || got->n > buf.size()) continue;
      auto d = parse_reply(ByteView(reinterpret_cast<const std::byte*>(buf.data()), got->n), nonce,
                           url_of(from));
      if (!d) {
        spdlog::debug("ignored a datagram from {} that is not a reply to our probe", url_of(from));
        continue;
      }
      if (seen.emplace(d->address, d->name, d->pid).second) found.push_back(std::move(*d));
    }
  };

  if (sockets.size() == 1) {
    co_await collect(*sockets[0]);
  } else {
    co_await (collect(*sockets[0]) && collect(*sockets[1]));
  }
  co_return found;
}

}  // namespace duplex::client
