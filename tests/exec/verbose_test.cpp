// `-v` on the clients (issue 10): the steps on stderr as `ssh -v` shows them — resolve, connect,
// TLS (version, cipher, server key, resumed or not), the client key and token source tried, the
// authentication result — and an authentication failure that names the credential it used.
#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == s.size() - 1;
}

RunResult dx(std::vector<std::string> args, std::vector<std::string> env = {}) {
  args.insert(args.begin(), duplex_bin());
  return run(std::move(args), {}, std::chrono::seconds(60), std::move(env));
}

TEST(Verbose, ExecOverTcpShowsEachStep) {
  ExecServer server;
  const auto r =
      dx({"-v", "exec", "--token-file", server.token_path(), server.url(), "--", "true"});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "");
  for (const std::string& step : std::vector<std::string>{
           "connecting to 127.0.0.1:", "connected to 127.0.0.1:", "duplex server 'duplex/",
           "token from --token-file " + server.token_path(), "the server asks for the token",
           "authenticated as token"})
    EXPECT_TRUE(contains(r.err, step)) << "no '" << step << "' in:\n" << r.err;
  // The token itself is never shown.
  EXPECT_FALSE(contains(r.err, server.token())) << r.err;

  // Without -v the same command says nothing.
  const auto quiet = dx({"exec", "--token-file", server.token_path(), server.url(), "--", "true"});
  EXPECT_EQ(quiet.err, "");
}

TEST(Verbose, AHostNameIsResolvedFirst) {
  ExecServer server;
  const std::string port = server.url().substr(server.url().rfind(':') + 1);
  const auto r = dx(
      {"exec", "-v", "--token-file", server.token_path(), "tcp://localhost:" + port, "--", "true"});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_TRUE(contains(r.err, "resolving localhost port " + port)) << r.err;
  EXPECT_TRUE(contains(r.err, "localhost is ")) << r.err;
}

TEST(Verbose, ExecOverAUnixSocketShowsWhoServesItAndTheUid) {
  ExecServer server({.args = {}, .tcp = false, .unix_socket = true});
  const auto r = dx({"-v", "exec", server.unix_url(), "--", "true"});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  const std::string uid = std::to_string(::geteuid());
  for (const std::string& step : std::vector<std::string>{
           std::string("connecting to the Unix socket "),
           "runs as uid " + std::to_string(::geteuid()) + " (pid " + std::to_string(server.pid()),
           "authenticating with uid " + uid, "authenticated as uid " + uid})
    EXPECT_TRUE(contains(r.err, step)) << "no '" << step << "' in:\n" << r.err;
}

TEST(Verbose, ExecOverTlsShowsTheHandshakeTheKeysAndResumption) {
  TempDir dir;
  ExecServer server({.args = {"--tls", "--tls-key", dir.file("server_key.pem"), "--tls-cert",
                              dir.file("server_cert.pem")}});
  const auto fp = dx({"fingerprint", "--tls-key", dir.file("server_key.pem")});
  ASSERT_EQ(fp.status, (ExitStatus{true, 0})) << fp.err;
  const std::string server_key = fp.out.substr(0, fp.out.find('\n'));
  ASSERT_EQ(dx({"keygen", "-f", dir.file("id")}).status, (ExitStatus{true, 0}));
  const auto id = dx({"fingerprint", "--tls-key", dir.file("id")});
  const std::string client_key = id.out.substr(0, id.out.find('\n'));
  ASSERT_FALSE(client_key.empty()) << id.err;

  const std::vector<std::string> common{
      "exec",          "-v",           "--tls", "--token-file", server.token_path(),
      "--known-hosts", dir.file("kh"), "-i",    dir.file("id")};
  auto first_args = common;
  first_args.insert(first_args.end(), {"--trust", "accept-new", server.url(), "--", "true"});
  const auto first = dx(first_args);
  EXPECT_EQ(first.status, (ExitStatus{true, 0})) << first.err;
  for (const std::string& step : std::vector<std::string>{
           "client key " + client_key + " (" + dir.file("id") + ")",
           std::string("TLS handshake with"), "TLS full handshake with tls://127.0.0.1:",
           std::string("TLSv1.3"), "server key " + server_key, "pinned in " + dir.file("kh"),
           "it did not take client key " + client_key, std::string("authenticated as token")})
    EXPECT_TRUE(contains(first.err, step)) << "no '" << step << "' in:\n" << first.err;

  auto again_args = common;
  again_args.insert(again_args.end(), {server.url(), "--", "true"});
  const auto again = dx(again_args);
  EXPECT_EQ(again.status, (ExitStatus{true, 0})) << again.err;
  EXPECT_TRUE(contains(again.err, "TLS resumed with")) << again.err;
}

TEST(Verbose, SendAndChatShowTheSteps) {
  TestServer server({"-q"});
  const auto s = dx({"send", "-v", server.url(), "hi"});
  EXPECT_EQ(s.status, (ExitStatus{true, 0})) << s.err;
  EXPECT_EQ(s.out, "HI\n");
  EXPECT_TRUE(contains(s.err, "connected to 127.0.0.1:")) << s.err;
  EXPECT_TRUE(contains(s.err, "duplex server 'duplex/")) << s.err;
  const auto c = run({duplex_bin(), "-v", "chat", server.url()}, "hi\n");
  EXPECT_EQ(c.status, (ExitStatus{true, 0})) << c.err;
  EXPECT_TRUE(contains(c.err, "connected to 127.0.0.1:")) << c.err;
}

TEST(Verbose, BenchShowsTheStepsOfItsFirstConnectionOnly) {
  TestServer server({"-q"});
  const auto b = dx({"-v", "bench", server.url(), "-c", "4", "-d", "0.3", "--warmup", "0"});
  ASSERT_EQ(b.status, (ExitStatus{true, 0})) << b.err;
  int connected = 0;
  for (auto at = b.err.find("connected to "); at != std::string::npos;
       at = b.err.find("connected to ", at + 1))
    ++connected;
  EXPECT_EQ(connected, 1) << "one probe connection shows its steps, the load does not:\n" << b.err;
}

TEST(Verbose, AuthFailureNamesTheCredentialUsed) {
  ExecServer server;
  // A token the server does not know: the server's proof fails, and the line names the source.
  const auto env =
      dx({"exec", server.url(), "--", "true"}, {"DUPLEX_TOKEN=" + std::string(64, '0')});
  EXPECT_EQ(env.status, (ExitStatus{true, 255}));
  EXPECT_TRUE(one_line(env.err)) << env.err;
  EXPECT_TRUE(contains(env.err, "the token from $DUPLEX_TOKEN is not this server's")) << env.err;

  TempDir dir;
  const std::string wrong = dir.file("token");
  write_file(wrong, std::string(64, '1') + "\n");
  const auto file = dx({"exec", "--token-file", wrong, server.url(), "--", "true"});
  EXPECT_EQ(file.status, (ExitStatus{true, 255}));
  EXPECT_TRUE(contains(file.err, "token from --token-file " + wrong)) << file.err;

  // A uid the server does not allow, and no token: the line says which uid was refused.
  ExecServer unix_server({.args = {"--allow-uid", "12345"}, .tcp = false, .unix_socket = true});
  const auto uid = dx({"exec", unix_server.unix_url(), "--", "true"});
  EXPECT_EQ(uid.status, (ExitStatus{true, 255}));
  EXPECT_TRUE(one_line(uid.err)) << uid.err;
  EXPECT_TRUE(contains(uid.err, "it did not take uid " + std::to_string(::geteuid()))) << uid.err;
}

}  // namespace
}  // namespace duplex::test
