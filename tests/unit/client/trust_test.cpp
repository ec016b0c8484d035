// Tests for client/trust: the decision table (known, changed, unknown with each option), the
// one-line messages, and check_server_key against a real known_hosts file with a scripted answer.
#include "duplex/client/trust.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "duplex/core/known_hosts.hpp"
#include "support/process.hpp"

namespace duplex::client {
namespace {

const std::string kKeyA = "SHA256:" + std::string(42, 'A') + "E";
const std::string kKeyB = "SHA256:" + std::string(42, 'B') + "E";

HostKeyCheck known_as(HostKeyStatus s, std::string pinned = kKeyA, std::size_t line = 1) {
  return HostKeyCheck{s, std::move(pinned), line};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

net::Endpoint tcp(std::string host, std::uint16_t port) {
  net::Endpoint ep;
  ep.transport = net::Transport::tcp;
  ep.host = std::move(host);
  ep.port = port;
  ep.tls = true;
  return ep;
}

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == std::string::npos;
}

// An ask function that must not be called.
std::optional<std::string> never_ask(const std::string& q) {
  ADD_FAILURE() << "asked: " << q;
  return std::nullopt;
}

TEST(TrustDecision, KnownKeyGoesOnWhateverTheOptions) {
  TrustOptions opt;
  EXPECT_EQ(decide_trust(known_as(HostKeyStatus::known), kKeyA, opt), TrustVerdict::go_on);
  opt.accept_new = true;
  opt.interactive = true;
  EXPECT_EQ(decide_trust(known_as(HostKeyStatus::known), kKeyA, opt), TrustVerdict::go_on);
  opt.fingerprint = kKeyA;
  EXPECT_EQ(decide_trust(known_as(HostKeyStatus::known), kKeyA, opt), TrustVerdict::go_on);
}

TEST(TrustDecision, ChangedKeyIsAlwaysRefused) {
  TrustOptions opt;
  const auto changed = known_as(HostKeyStatus::changed, kKeyA);
  EXPECT_EQ(decide_trust(changed, kKeyB, opt), TrustVerdict::refuse_changed);
  opt.accept_new = true;
  EXPECT_EQ(decide_trust(changed, kKeyB, opt), TrustVerdict::refuse_changed);
  opt.interactive = true;
  EXPECT_EQ(decide_trust(changed, kKeyB, opt), TrustVerdict::refuse_changed);
  opt.fingerprint = kKeyB;  // even when the user names the new key: remove the line first
  EXPECT_EQ(decide_trust(changed, kKeyB, opt), TrustVerdict::refuse_changed);
}

TEST(TrustDecision, UnknownKeyByOption) {
  const auto unknown = known_as(HostKeyStatus::unknown, "", 0);
  TrustOptions opt;
  EXPECT_EQ(decide_trust(unknown, kKeyA, opt), TrustVerdict::refuse_unknown);
  opt.interactive = true;
  EXPECT_EQ(decide_trust(unknown, kKeyA, opt), TrustVerdict::ask);
  opt.accept_new = true;
  EXPECT_EQ(decide_trust(unknown, kKeyA, opt), TrustVerdict::pin);
  opt = {};
  opt.fingerprint = kKeyA;
  EXPECT_EQ(decide_trust(unknown, kKeyA, opt), TrustVerdict::pin);
  opt.fingerprint = kKeyB;
  EXPECT_EQ(decide_trust(unknown, kKeyA, opt), TrustVerdict::refuse_mismatch);
  opt.accept_new = true;  // --fingerprint wins over accept-new
  EXPECT_EQ(decide_trust(unknown, kKeyA, opt), TrustVerdict::refuse_mismatch);
  EXPECT_EQ(decide_trust(known_as(HostKeyStatus::known), kKeyA, opt), TrustVerdict::refuse_mismatch)
      << "a --fingerprint that disagrees with the server is refused even when pinned";
}

TEST(TrustMessages, AreOneLineAndNameEverything) {
  const auto changed = changed_key_message("127.0.0.1:8443", 3, kKeyA, kKeyB, "/h/known_hosts");
  EXPECT_TRUE(one_line(changed));
  EXPECT_EQ(changed, "the key of 127.0.0.1:8443 has changed: known_hosts (line 3) has " + kKeyA +
                         ", the server showed " + kKeyB +
                         ". If that is expected, remove the line from /h/known_hosts.");
  const auto unknown = unknown_host_message("127.0.0.1:8443", kKeyA);
  EXPECT_TRUE(one_line(unknown));
  EXPECT_NE(unknown.find("127.0.0.1:8443 is not a known host (key " + kKeyA + ")"),
            std::string::npos);
  EXPECT_NE(unknown.find("--fingerprint " + kKeyA + " or --trust accept-new"), std::string::npos);
  const auto mismatch = mismatch_message("h:1", kKeyA, kKeyB);
  EXPECT_TRUE(one_line(mismatch));
  EXPECT_NE(mismatch.find(kKeyA), std::string::npos);
  EXPECT_NE(mismatch.find(kKeyB), std::string::npos);
  EXPECT_EQ(trust_question("h:1", kKeyA),
            "The authenticity of h:1 can't be established.\nIts key fingerprint is " + kKeyA +
                ".\nTrust it and remember it (yes/no)? ");
}

TEST(TrustPinName, TcpAsKnownHostsSpellsItUnixByPath) {
  EXPECT_EQ(pin_name(tcp("127.0.0.1", 8443)), "127.0.0.1:8443");
  EXPECT_EQ(pin_name(tcp("::1", 8443)), "[::1]:8443");
  EXPECT_EQ(pin_name(tcp("Example.COM", 1)), "example.com:1");
  net::Endpoint u;
  u.transport = net::Transport::unix_stream;
  u.path = "/run/d.sock";
  EXPECT_EQ(pin_name(u), "/run/d.sock");
}

class TrustFile : public ::testing::Test {
 protected:
  test::TempDir dir_;
  std::string path_ = dir_.file("cfg/known_hosts");
  TrustOptions opt_ = [this] {
    TrustOptions o;
    o.known_hosts = path_;
    return o;
  }();
};

TEST_F(TrustFile, UnknownWithoutOptionsIsRefusedAndNothingWritten) {
  auto r = check_server_key(tcp("127.0.0.1", 8443), kKeyA, opt_, never_ask);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::permission_denied);
  EXPECT_NE(r.message().find("is not a known host"), std::string::npos) << r.message();
  struct stat st {};
  EXPECT_NE(::stat(path_.c_str(), &st), 0) << "known_hosts must not be created";
}

TEST_F(TrustFile, AcceptNewPinsInAPrivateFileThenKnown) {
  opt_.accept_new = true;
  ASSERT_TRUE(check_server_key(tcp("127.0.0.1", 8443), kKeyA, opt_, never_ask));
  EXPECT_EQ(read_file(path_), "127.0.0.1:8443 " + kKeyA + "\n");
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  // Known now: no options needed, and nothing appended twice.
  TrustOptions plain;
  plain.known_hosts = path_;
  EXPECT_TRUE(check_server_key(tcp("127.0.0.1", 8443), kKeyA, plain, never_ask));
  EXPECT_EQ(read_file(path_), "127.0.0.1:8443 " + kKeyA + "\n");
  // Another port is another server.
  EXPECT_FALSE(check_server_key(tcp("127.0.0.1", 8444), kKeyA, plain, never_ask));
}

TEST_F(TrustFile, ChangedKeyRefusedEvenWithAcceptNew) {
  ASSERT_TRUE(append_known_host(path_, "127.0.0.1", 8443, kKeyA));
  opt_.accept_new = true;
  auto r = check_server_key(tcp("127.0.0.1", 8443), kKeyB, opt_, never_ask);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.message(), changed_key_message("127.0.0.1:8443", 1, kKeyA, kKeyB, path_));
  EXPECT_EQ(read_file(path_), "127.0.0.1:8443 " + kKeyA + "\n") << "the file is left alone";
}

TEST_F(TrustFile, FingerprintRightPinsWrongRefuses) {
  opt_.fingerprint = kKeyB;
  auto wrong = check_server_key(tcp("h", 1), kKeyA, opt_, never_ask);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.message(), mismatch_message("h:1", kKeyB, kKeyA));
  opt_.fingerprint = kKeyA;
  ASSERT_TRUE(check_server_key(tcp("h", 1), kKeyA, opt_, never_ask));
  EXPECT_EQ(read_file(path_), "h:1 " + kKeyA + "\n");
}

TEST_F(TrustFile, InteractiveAnswerDecides) {
  opt_.interactive = true;
  std::string asked;
  auto answer = [&](std::string reply) {
    return [&asked, reply](const std::string& q) -> std::optional<std::string> {
      asked = q;
      return reply;
    };
  };
  auto no = check_server_key(tcp("h", 1), kKeyA, opt_, answer("no"));
  ASSERT_FALSE(no);
  EXPECT_EQ(asked, trust_question("h:1", kKeyA));
  EXPECT_NE(no.message().find("not trusted"), std::string::npos) << no.message();
  EXPECT_FALSE(check_server_key(tcp("h", 1), kKeyA, opt_, answer("")));
  EXPECT_FALSE(check_server_key(tcp("h", 1), kKeyA, opt_, answer("yess")));
  EXPECT_FALSE(check_server_key(tcp("h", 1), kKeyA, opt_, answer(kKeyB)));
  struct stat st {};
  EXPECT_NE(::stat(path_.c_str(), &st), 0) << "nothing pinned by a refusal";
  // Nobody at the terminal: refused as when not interactive.
  auto gone = check_server_key(tcp("h", 1), kKeyA, opt_,
                               [](const std::string&) { return std::optional<std::string>(); });
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.message().find("is not a known host"), std::string::npos);

  ASSERT_TRUE(check_server_key(tcp("h", 1), kKeyA, opt_, answer(" Yes \r")));
  EXPECT_EQ(read_file(path_), "h:1 " + kKeyA + "\n");
  ASSERT_TRUE(check_server_key(tcp("h", 2), kKeyA, opt_, answer(kKeyA)))
      << "the fingerprint itself is a yes, as in ssh";
}

TEST_F(TrustFile, UnixSocketIsPinnedByItsPath) {
  // tls+unix:// is pinned as tls:// is, under the socket's absolute path (issue 10).
  net::Endpoint u;
  u.transport = net::Transport::unix_stream;
  u.path = "/run/d.sock";
  u.tls = true;
  EXPECT_FALSE(check_server_key(u, kKeyA, opt_, never_ask)) << "first contact, nobody to ask";
  opt_.accept_new = true;
  ASSERT_TRUE(check_server_key(u, kKeyA, opt_, never_ask));
  EXPECT_EQ(read_file(path_), "/run/d.sock " + kKeyA + "\n");
  TrustOptions plain;
  plain.known_hosts = path_;
  EXPECT_TRUE(check_server_key(u, kKeyA, plain, never_ask)) << "known now, no option needed";
  auto changed = check_server_key(u, kKeyB, opt_, never_ask);
  ASSERT_FALSE(changed) << "a changed key is refused, even with accept-new";
  EXPECT_EQ(changed.message(), changed_key_message("/run/d.sock", 1, kKeyA, kKeyB, path_));
  // Another path is another server; --fingerprint pins it too.
  u.path = "/run/e.sock";
  TrustOptions named = plain;
  named.fingerprint = kKeyB;
  EXPECT_FALSE(check_server_key(u, kKeyA, named, never_ask));
  ASSERT_TRUE(check_server_key(u, kKeyB, named, never_ask));
  EXPECT_EQ(read_file(path_), "/run/d.sock " + kKeyA + "\n/run/e.sock " + kKeyB + "\n");
}

TEST_F(TrustFile, ASocketPathKnownHostsCannotHoldNeedsTheFingerprintAndWritesNothing) {
  net::Endpoint u;
  u.transport = net::Transport::unix_stream;
  u.path = "/run/my dir/d.sock";  // a blank: known_hosts fields are blank-separated
  u.tls = true;
  opt_.accept_new = true;
  auto r = check_server_key(u, kKeyA, opt_, never_ask);
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("--fingerprint " + kKeyA), std::string::npos) << r.message();
  opt_.fingerprint = kKeyA;
  EXPECT_TRUE(check_server_key(u, kKeyA, opt_, never_ask));
  opt_.fingerprint = kKeyB;
  EXPECT_FALSE(check_server_key(u, kKeyA, opt_, never_ask));
  struct stat st {};
  EXPECT_NE(::stat(path_.c_str(), &st), 0) << "nothing written for that path";
}

TEST_F(TrustFile, UnreadableKnownHostsFails) {
  ASSERT_TRUE(append_known_host(path_, "h", 1, kKeyA));
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);
  opt_.accept_new = true;
  auto r = check_server_key(tcp("h", 1), kKeyA, opt_, never_ask);
  EXPECT_FALSE(r) << "a known_hosts others can write is not believed";
}

}  // namespace
}  // namespace duplex::client
