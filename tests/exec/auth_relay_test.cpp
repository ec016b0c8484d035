// The token never crosses the wire (issue 7, audit item 1): a fake server that records what
// `duplex exec` sends, on TCP and on a Unix socket served by another uid; a recording relay
// between the client and a real server; the audit line; wrong tokens and the penalty box.
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>
#include <poll.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

using auth::hex_of;
using auth::holds_no_trace_of;

using namespace std::chrono_literals;

// Frame types in a recorded client stream (after the 4-byte preface).
std::vector<std::uint8_t> frame_types(const std::string& rec) {
  std::vector<std::uint8_t> out;
  std::size_t pos = 4;
  while (pos + 6 <= rec.size()) {
    const std::uint32_t n = get_be32(rec, pos);
    out.push_back(static_cast<std::uint8_t>(rec[pos + 4]));
    pos += 6 + n;
  }
  return out;
}

bool contains(const std::vector<std::uint8_t>& v, std::uint8_t t) {
  return std::find(v.begin(), v.end(), t) != v.end();
}

// One client of a fake server: accepts it, then after each read (at most 10 s apart) asks
// `step(everything read so far, this read)` what to send back; nullopt stops. Returns all read.
template <class Step>
std::string fake_one_client(int listen_fd, Step step) {
  const int c = ::accept(listen_fd, nullptr, nullptr);
  if (c < 0) return {};
  std::string rec;
  for (;;) {
    pollfd p{c, POLLIN, 0};
    if (::poll(&p, 1, 10'000) <= 0) break;
    char buf[4096];
    const ssize_t n = ::recv(c, buf, sizeof buf, 0);
    if (n <= 0) break;
    const std::string_view got(buf, static_cast<std::size_t>(n));
    rec += got;
    const std::optional<std::string> reply = step(rec, got);
    if (!reply) break;
    if (!reply->empty() && ::send(c, reply->data(), reply->size(), MSG_NOSIGNAL) < 0) break;
  }
  ::close(c);
  return rec;
}

std::string welcome_frame() {
  std::string w;
  put_be16(w, 1);
  put_be32(w, 1u << 20);
  put_str(w, "fake");
  return frame(msg::welcome, w);
}

// The 20-line fake: accept one client, answer HELLO with WELCOME and AUTH_START with a challenge
// it cannot prove (it does not know the token), and record every byte until the client leaves.
std::string record_one_client(int listen_fd) {
  bool welcomed = false, challenged = false;
  return fake_one_client(listen_fd, [&](const std::string& rec, std::string_view) {
    const auto types = frame_types(rec);
    std::optional<std::string> reply(std::in_place);
    if (!welcomed && contains(types, msg::hello)) {
      *reply += welcome_frame();
      welcomed = true;
    }
    if (!challenged && contains(types, msg::auth_start)) {
      *reply += frame(msg::auth_challenge, auth::nonce() + auth::nonce());
      challenged = true;
    }
    return reply;
  });
}

ExecRequest true_cmd() {
  ExecRequest r;
  r.argv = {"true"};
  return r;
}

const std::string kToken = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// A TCP socket listening on 127.0.0.1 (port 0) for a fake server; -1 on failure. `url` names it.
int loopback_listener(std::string& url) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  url = "tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  return fd;
}

TEST(ExecTokenNeverSent, AFakeTcpServerLearnsNothingAndIsCalledAnImpostor) {
  std::string url;
  const int fd = loopback_listener(url);
  ASSERT_GE(fd, 0);

  std::string rec;
  std::thread fake([&] { rec = record_one_client(fd); });
  const auto r = run({duplex_bin(), "exec", url, "--", "id"}, {}, 30s, {"DUPLEX_TOKEN=" + kToken});
  fake.join();
  ::close(fd);

  EXPECT_EQ(r.status, (ExitStatus{true, 255})) << r.err;
  EXPECT_NE(r.err.find("does not know the token: it may be an impostor"), std::string::npos)
      << r.err;
  EXPECT_TRUE(holds_no_trace_of(rec, kToken));
  const auto types = frame_types(rec);
  EXPECT_TRUE(contains(types, msg::auth_start)) << hex_of(rec);
  EXPECT_FALSE(contains(types, msg::auth_proof)) << "no proof for a server that proved nothing";
  EXPECT_FALSE(contains(types, msg::auth)) << "no AUTH with a token in it";
}

// A fake that never answers: what a client sends before it hears anything (at most 10 s).
std::string record_unanswered(int listen_fd) {
  return fake_one_client(listen_fd, [](const std::string& rec, std::string_view) {
    return contains(frame_types(rec), msg::auth_start) ? std::nullopt
                                                       : std::optional<std::string>(std::in_place);
  });
}

// AUTH_START goes with HELLO (docs/PROTOCOL.md lets requests follow HELLO before WELCOME): one
// round trip less for every `duplex exec`. Before, the client waited for WELCOME and this fake
// recorded HELLO alone.
TEST(ExecAuthWire, AuthStartTravelsWithHelloBeforeWelcome) {
  std::string url;
  const int fd = loopback_listener(url);
  ASSERT_GE(fd, 0);

  std::string rec;
  std::thread fake([&] { rec = record_unanswered(fd); });
  const auto r = run({duplex_bin(), "exec", url, "--", "id"}, {}, 30s, {"DUPLEX_TOKEN=" + kToken});
  fake.join();
  ::close(fd);

  EXPECT_EQ(r.status, (ExitStatus{true, 255})) << r.err;  // the fake closed without a word
  const auto types = frame_types(rec);
  ASSERT_GE(types.size(), 2u) << hex_of(rec);
  EXPECT_EQ(types[0], msg::hello);
  EXPECT_EQ(types[1], msg::auth_start) << hex_of(rec);
  EXPECT_TRUE(holds_no_trace_of(rec, kToken));
}

// A fake that lets any client in (WELCOME, AUTH_OK) and returns what the recv that brought the
// client's EXEC_START held, then closes (at most 10 s).
std::string recv_with_exec_start(int listen_fd) {
  std::string last;
  bool answered = false;
  fake_one_client(listen_fd, [&](const std::string& rec, std::string_view got) {
    last = got;
    const auto types = frame_types(rec);
    std::optional<std::string> reply(std::in_place);
    if (contains(types, msg::exec_start)) return std::optional<std::string>();
    if (!answered && contains(types, msg::auth_start)) {
      std::string ok;
      put_str(ok, "fake identity");
      put_be32(ok, 1u << 20);
      *reply = welcome_frame() + frame(msg::auth_ok, ok);
      answered = true;
    }
    return reply;
  });
  return last;
}

// Stdin already at its end (here /dev/null) is known before EXEC_START goes: STDIN_EOF goes in
// the same write, and no reader thread starts. Before, STDIN_EOF followed from the reader thread
// in a write of its own.
TEST(ExecAuthWire, StdinAtItsEndGoesWithExecStart) {
  std::string url;
  const int fd = loopback_listener(url);
  ASSERT_GE(fd, 0);

  std::string last;
  std::thread fake([&] { last = recv_with_exec_start(fd); });
  const auto r = run(
      {"/bin/sh", "-c", "exec \"$@\" </dev/null", "sh", duplex_bin(), "exec", url, "--", "true"},
      {}, 30s);
  fake.join();
  ::close(fd);

  EXPECT_EQ(r.status, (ExitStatus{true, 255})) << r.err;  // the fake closed without an EXIT
  // frame_types skips 4 bytes of preface: put them back in front of this one read.
  const auto types = frame_types(std::string(4, '\0') + last);
  ASSERT_EQ(types.size(), 2u) << hex_of(last);
  EXPECT_EQ(types[0], msg::exec_start);
  EXPECT_EQ(types[1], msg::stdin_eof);
}

// A socket path in a shared directory, taken by another user: the client checks who serves it
// (SO_PEERCRED) and says nothing at all (AUTH_START goes in HELLO's write, so HELLO waits too).
TEST(ExecTokenNeverSent, AUnixSocketServedByAnotherUidGetsNoAuthentication) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to serve a socket as nobody";
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);  // a shared directory
  const std::string path = dir.file("shared.sock");
  int ready[2], out[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(out), 0);
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // As nobody from the start: SO_PEERCRED tells the credentials of listen()'s caller.
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(2);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4) != 0)
      ::_exit(3);
    (void)!::write(ready[1], "r", 1);
    const std::string rec = record_one_client(fd);
    (void)!::write(out[1], rec.data(), rec.size());
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(out[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the fake did not start";
  const auto r = run({duplex_bin(), "exec", "unix://" + path, "--", "id"}, {}, 30s,
                     {"DUPLEX_TOKEN=" + kToken});
  std::string rec;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;)
    rec.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  ::close(ready[0]);
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "fake status " << st;

  EXPECT_EQ(r.status, (ExitStatus{true, 255})) << r.err;
  EXPECT_NE(r.err.find("is served by uid " + std::to_string(uid) +
                       ", not by you or root: refusing to authenticate to it"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(holds_no_trace_of(rec, kToken));
  const auto types = frame_types(rec);
  EXPECT_TRUE(rec.empty()) << "refused before a byte was sent: " << hex_of(rec);
  EXPECT_FALSE(contains(types, msg::auth_start)) << "refused before AUTH_START";
  EXPECT_FALSE(contains(types, msg::auth));
}

// A relay that records both directions between `duplex exec` and a real server.
class RecordingRelay {
 public:
  explicit RecordingRelay(int target_port) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_, 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, target_port] { relay_one(target_port); });
  }
  ~RecordingRelay() {
    thread_.join();
    ::close(listen_);
  }
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  std::string recorded() {
    thread_.join();
    thread_ = std::thread([] {});
    return up_ + down_;
  }
  const std::string& up() const { return up_; }

 private:
  void relay_one(int target_port) {
    const int c = ::accept(listen_, nullptr, nullptr);
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(target_port));
    if (c < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    pollfd p[2] = {{c, POLLIN, 0}, {s, POLLIN, 0}};
    for (bool open = true; open && ::poll(p, 2, 20'000) > 0;) {
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        char buf[65536];
        const ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
        if (n <= 0) {
          open = false;
          break;
        }
        (i == 0 ? up_ : down_).append(buf, static_cast<std::size_t>(n));
        (void)!::send(p[1 - i].fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
      }
    }
    ::close(c);
    ::close(s);
  }
  int listen_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string up_, down_;
};

TEST(ExecTokenNeverSent, ARelayToARealServerSeesOnlyNoncesAndProofs) {
  ExecServer server;
  RecordingRelay relay(server.server().port());
  const auto r = run({duplex_bin(), "exec", "--token-file", server.token_path(), relay.url(), "--",
                      "echo", "relayed"});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "relayed\n");
  const std::string rec = relay.recorded();
  EXPECT_TRUE(holds_no_trace_of(rec, server.token()));
  const auto types = frame_types(relay.up());
  EXPECT_TRUE(contains(types, msg::auth_start));
  EXPECT_TRUE(contains(types, msg::auth_proof));
  EXPECT_FALSE(contains(types, msg::auth));
}

TEST(ExecAuthWire, ATokenSentInClearIsRefusedAndLogged) {
  ExecServer server({.args = {}, .quiet = false});
  ExecClient c(server.url());
  c.send(preface_and_hello("old-client") + auth_frame(server.token()) +
         exec_start_frame(true_cmd()));
  auto& o = c.finish();
  EXPECT_TRUE(refused_with(o, err::auth_failed));
  EXPECT_TRUE(server.server().wait_stderr("a token sent in clear (an old client?)"))
      << server.server().stderr_text();
  EXPECT_EQ(server.server().stderr_text().find(server.token()), std::string::npos)
      << "the log never holds the token";
}

TEST(ExecAuthWire, TheServerProvesTheTokenAndAuthOkTellsTheFrameLimit) {
  ExecServer server;
  ExecClient c(server.url());
  ASSERT_TRUE(c.authenticate(server.token()));
  EXPECT_TRUE(c.outcome().server_proof_ok);
  EXPECT_EQ(c.outcome().identity, "token");
  EXPECT_EQ(c.outcome().auth_max_frame, 1u << 20);
}

TEST(ExecAuthWire, AuthOkTellsTheServersOwnFrameLimit) {
  ExecServer server({.args = {"--max-frame", "4096"}});
  ExecClient c(server.url());
  ASSERT_TRUE(c.authenticate(server.token()));
  EXPECT_EQ(c.outcome().auth_max_frame, 4096u);
}

TEST(ExecAuthWire, MaxAuthFailuresIsTheServersNotTheDefault) {
  // Three, not the default ten: the flag must reach the penalty box.
  ExecServer server({.args = {"--max-auth-failures", "3"}, .quiet = false});
  const std::string wrong(64, 'a');
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(refused_with(exec_once(server.url(), wrong, true_cmd()), err::auth_failed))
        << "attempt " << i;
  bool ran = false;
  try {
    ran = exec_once(server.url(), server.token(), true_cmd()).exit.has_value();
  } catch (const std::exception&) {
    // closed at accept, before we finished sending
  }
  EXPECT_FALSE(ran) << "ran after three failures with --max-auth-failures 3";
}

TEST(ExecAuthWire, WrongTokensFillThePenaltyBox) {
  ExecServer server({.args = {"--max-auth-failures", "10"}, .quiet = false});
  const std::string wrong(64, 'a');
  for (int i = 0; i < 10; ++i) {
    const auto o = exec_once(server.url(), wrong, true_cmd());
    EXPECT_TRUE(refused_with(o, err::auth_failed)) << "attempt " << i;
  }
  // Now even the right token is refused for a while: at accept (the front asks the box: the
  // connection is closed or gets ERROR penalised) or at AUTH_START.
  bool ran = false, refused = false;
  try {
    const auto o = exec_once(server.url(), server.token(), true_cmd());
    ran = o.exit.has_value();
    refused = o.closed || (o.error && o.error->code == err::penalised);
  } catch (const std::exception& e) {
    refused = true;  // closed at accept, before we finished sending
  }
  EXPECT_FALSE(ran) << "ran while penalised";
  EXPECT_TRUE(refused);
  EXPECT_TRUE(server.server().wait_stderr("is refused for a while"))
      << server.server().stderr_text();
}

TEST(ExecAuthClient, AWrongTokenSaysSo) {
  ExecServer server;
  const auto r = run({duplex_bin(), "exec", server.url(), "--", "true"}, {}, 30s,
                     {"DUPLEX_TOKEN=" + std::string(64, 'b')});
  EXPECT_EQ(r.status, (ExitStatus{true, 255}));
  EXPECT_NE(r.err.find("does not know the token"), std::string::npos)
      << "with another token, the server's proof fails first: " << r.err;
}

TEST(ExecAuthClient, NoTokenWhenTheServerWantsOneSaysWhereTokensAreLooked) {
  ExecServer server;
  TempDir home;
  const auto r = run({duplex_bin(), "exec", server.url(), "--", "true"}, {}, 30s,
                     {"XDG_CONFIG_HOME=" + home.path().string(), "DUPLEX_TOKEN="});
  EXPECT_EQ(r.status, (ExitStatus{true, 255}));
  EXPECT_NE(r.err.find("the server wants a token and none was found (DUPLEX_TOKEN, --token-file"),
            std::string::npos)
      << r.err;
}

// Audit item 4: arguments were cut at 200 bytes, so this logged no trace of HIDDEN.
TEST(ExecAudit, TheWholeRequestIsLoggedEscaped) {
  ExecServer server({.args = {}, .quiet = false});
  ExecRequest r;
  r.shell = true;
  r.argv = {"true " + std::string(200, ' ') + "; echo HIDDEN; id"};
  r.env = {{"LANG", "C"}};
  r.cwd = "/tmp";
  const auto o = exec_once(server.url(), server.token(), r);
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_TRUE(server.server().wait_stderr("echo HIDDEN; id")) << server.server().stderr_text();
  const std::string log = server.server().stderr_text();
  EXPECT_NE(log.find("env=[\"LANG\"]"), std::string::npos) << log;
  EXPECT_NE(log.find("cwd=\"/tmp\""), std::string::npos) << log;
  EXPECT_NE(log.find("identity=\"token\""), std::string::npos) << log;
}

TEST(ExecAudit, ControlBytesAreEscapedAndLongRequestsHashed) {
  ExecServer server({.args = {}, .quiet = false});
  ExecRequest a;
  a.argv = {"printf", "x\ny\x1b[2J\"q\""};
  EXPECT_TRUE(exited_with(exec_once(server.url(), server.token(), a), 0));
  EXPECT_TRUE(server.server().wait_stderr(R"(x\ny\x1b[2J\"q\")")) << server.server().stderr_text();

  ExecRequest b;
  b.shell = true;
  const std::string script = "true" + std::string(3000, ' ') + "; echo TAIL";
  b.argv = {script};
  EXPECT_TRUE(exited_with(exec_once(server.url(), server.token(), b), 0));
  const std::string hash = sha256_hex(script + std::string(1, '\0'));
  EXPECT_TRUE(
      server.server().wait_stderr(std::to_string(script.size() + 1) + " bytes, sha256 " + hash))
      << server.server().stderr_text();
}

}  // namespace
}  // namespace duplex::test
