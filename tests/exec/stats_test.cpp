// `duplex stats` against a live server: raw, framed, exec (a running command) and TLS sessions
// at once, each shown as it is; the refusals (upper-only, unauthenticated, wrong token, no
// --exec); 1,000 idle connections; and a connection's id on each of its log lines.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "exec/exec_fixture.hpp"
#include "support/exec_frames.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"

namespace duplex::test {
namespace {

using Json = nlohmann::json;
constexpr ExitStatus kOk{true, 0}, kCannotConnect{true, 255};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// One line of `s` holding every one of `parts`, or "" when none does.
std::string line_with(const std::string& s, const std::vector<std::string>& parts) {
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    if (std::all_of(parts.begin(), parts.end(), [&](const auto& p) { return contains(line, p); }))
      return line;
  return {};
}

// `duplex serve --exec -q` on a loopback TCP port with these flags besides.
ExecServerOptions tcp_exec_server(std::vector<std::string> args) {
  return ExecServerOptions{
      .args = std::move(args), .tcp = true, .unix_socket = false, .exec = true, .quiet = true};
}

class Stats : public ::testing::Test {
 protected:
  /// `duplex stats ARGS URL` with the server's token file and no token in the environment.
  RunResult stats(const std::string& url, std::vector<std::string> args = {},
                  const std::string& token_file = {}) const {
    std::vector<std::string> argv{duplex_bin(), "stats", "--token-file",
                                  token_file.empty() ? server_->token_path() : token_file};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url);
    return run(argv, {}, 60s, {"DUPLEX_TOKEN="});
  }
  Json stats_json(const std::string& url) const {
    const auto r = stats(url, {"--json"});
    EXPECT_EQ(r.status, kOk) << r.err;
    return Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }
  static const Json* row(const Json& doc, const std::string& key, const std::string& value) {
    for (const auto& c : doc["connections"])
      if (c.value(key, "") == value) return &c;
    return nullptr;
  }

  TempDir keys_;
  std::unique_ptr<ExecServer> server_;
};

TEST_F(Stats, ShowsLiveRawFramedExecAndTlsSessionsEachAsTheyAre) {
  server_ = std::make_unique<ExecServer>(
      ExecServerOptions{.args = {"--tls", "--tls-key", keys_.file("server_key.pem")},
                        .tcp = true,
                        .unix_socket = true});
  const std::string url = server_->tcp_url();

  SocketClient raw(url);
  raw.send_all("hello");
  ASSERT_EQ(raw.recv_exact(5), "HELLO");

  SocketClient framed(url);
  const std::string framed_bytes =
      preface_and_hello("stats-test") + frame(msg::upper_request, "abc");
  framed.send_all(framed_bytes);
  ASSERT_EQ(read_frame(framed).type, msg::welcome);
  ASSERT_EQ(read_frame(framed).payload, "ABC");

  ExecClient exec(url);
  ExecRequest sleep_req;
  sleep_req.argv = {"sleep", "30"};
  exec.start(server_->token(), sleep_req);
  exec.wait_for(msg::stdin_window);  // the command has started

  // A TLS client that stays connected: its stdin is ours.
  Process tls({"openssl", "s_client", "-quiet", "-connect",
               "127.0.0.1:" + std::to_string(server_->server().port())});
  tls.write_stdin("secret\n");
  ASSERT_EQ(tls.read_line(), std::optional<std::string>("SECRET"));

  const Json doc = stats_json(url);
  ASSERT_TRUE(doc.is_object()) << "not JSON";
  const Json* r = row(doc, "peer", raw.local_address());
  ASSERT_NE(r, nullptr) << doc.dump(2);
  EXPECT_EQ((*r)["protocol"], "raw");
  EXPECT_EQ((*r)["service"], "upper");
  EXPECT_EQ((*r)["transport"], "tcp");
  EXPECT_EQ((*r)["listener"], url);
  EXPECT_EQ((*r)["bytes_in"], 5);
  EXPECT_EQ((*r)["bytes_out"], 5);
  EXPECT_EQ((*r)["command"], "");

  const Json* f = row(doc, "peer", framed.local_address());
  ASSERT_NE(f, nullptr) << doc.dump(2);
  EXPECT_EQ((*f)["protocol"], "framed");
  EXPECT_EQ((*f)["service"], "upper");
  EXPECT_EQ((*f)["state"], "open");
  EXPECT_EQ((*f)["bytes_in"], framed_bytes.size());
  EXPECT_EQ((*f)["identity"], "");

  const Json* e = row(doc, "peer", exec.socket().local_address());
  ASSERT_NE(e, nullptr) << doc.dump(2);
  EXPECT_EQ((*e)["protocol"], "framed");
  EXPECT_EQ((*e)["service"], "exec");
  EXPECT_EQ((*e)["state"], "running");
  EXPECT_EQ((*e)["identity"], "token");
  EXPECT_EQ((*e)["command"], "sleep 30");

  const Json* t = row(doc, "protocol", "tls+raw");
  ASSERT_NE(t, nullptr) << doc.dump(2);
  EXPECT_EQ((*t)["service"], "upper");
  EXPECT_EQ((*t)["bytes_out"], 7) << "inside TLS: SECRET\\n";
  EXPECT_GT((*t)["bytes_in"].get<int>(), 7) << "the ClientHello, then secret\\n";

  const Json& c = doc["counters"];
  EXPECT_GE(c["accepted"].get<int>(), 5);
  EXPECT_GE(c["open"].get<int>(), 5);
  EXPECT_EQ(c["commands_started"], 1);
  EXPECT_EQ(c["commands_running"], 1);
  EXPECT_FALSE(c.contains("connections_omitted")) << "not a counter";
  EXPECT_EQ(doc["connections_omitted"], 0);
  EXPECT_GE(c["bytes_in"].get<int>(), 5 + static_cast<int>(framed_bytes.size()));

  // The same in the table: one aligned line each, oldest first, then the counters.
  const auto table = stats(url);
  ASSERT_EQ(table.status, kOk) << table.err;
  EXPECT_TRUE(table.out.starts_with("ID  ")) << table.out;
  EXPECT_NE(line_with(table.out, {raw.local_address(), " raw ", " upper ", " 5 "}), "")
      << table.out;
  EXPECT_NE(line_with(table.out, {exec.socket().local_address(), " exec ", " running ", " token ",
                                  "sleep 30"}),
            "")
      << table.out;
  EXPECT_NE(line_with(table.out, {"tls+raw", " upper "}), "") << table.out;
  EXPECT_NE(line_with(table.out, {"commands_started", "1"}), "") << table.out;
  // Aligned: every row's PEER column starts where the header's does.
  const auto peer_at = table.out.find("PEER");
  std::istringstream lines(table.out);
  std::string line;
  std::getline(lines, line);
  for (int i = 0; i < 5 && std::getline(lines, line) && !line.empty(); ++i)
    EXPECT_TRUE(line[peer_at - 1] == ' ' && line[peer_at] != ' ') << "column start in: " << line;
  EXPECT_TRUE(table.out.find(raw.local_address()) < table.out.find("tls+raw")) << "oldest first:\n"
                                                                               << table.out;

  // The owner on the Unix socket needs no token at all.
  const auto owner = stats(server_->unix_url(), {"--json"}, "/nonexistent/token");
  EXPECT_EQ(owner.status, kOk) << owner.err;
  tls.close_stdin();
}

TEST_F(Stats, AreRefusedToUpperOnlyAndUnauthenticatedClients) {
  server_ = std::make_unique<ExecServer>();
  const std::string url = server_->tcp_url();
  // An upper-only client asks: refused, and told why; the server serves on.
  SocketClient c(url);
  c.send_all(preface_and_hello() + frame(msg::upper_request, "a") + frame(0x30, ""));
  ASSERT_EQ(read_frame(c).type, msg::welcome);
  ASSERT_EQ(read_frame(c).payload, "A");
  const RawFrame refused = read_frame(c);
  ASSERT_EQ(refused.type, msg::error);
  const auto why = parse_error(refused.payload);
  ASSERT_TRUE(why);
  EXPECT_EQ(why->code, err::auth_required);
  EXPECT_TRUE(contains(why->text, "authentication")) << why->text;
  EXPECT_TRUE(c.wait_closed());

  // A wrong token: one line, exit 255, and nothing of the table.
  const std::string wrong = server_->dir().file("wrong");
  write_file(wrong, std::string(64, 'a') + "\n");
  const auto r = stats(url, {}, wrong);
  EXPECT_EQ(r.status, kCannotConnect);
  EXPECT_EQ(r.err, "duplex: authentication failed\n");
  EXPECT_EQ(r.out, "");

  // Still serving: the right token works.
  EXPECT_EQ(stats(url).status, kOk);
}

TEST_F(Stats, WithoutExecOnlyTheOwnersUnixSocketIsAnswered) {
  server_ = std::make_unique<ExecServer>(
      ExecServerOptions{.args = {}, .tcp = true, .unix_socket = true, .exec = false});
  const auto tcp = stats(server_->tcp_url(), {}, "/nonexistent/token");
  EXPECT_EQ(tcp.status, kCannotConnect);
  EXPECT_TRUE(contains(tcp.err, "--exec")) << tcp.err;
  EXPECT_EQ(std::count(tcp.err.begin(), tcp.err.end(), '\n'), 1) << tcp.err;
  const auto unix_owner = stats(server_->unix_url(), {}, "/nonexistent/token");
  EXPECT_EQ(unix_owner.status, kOk) << unix_owner.err;
  EXPECT_TRUE(contains(unix_owner.out, "unix:///")) << unix_owner.out;
}

TEST_F(Stats, AThousandIdleConnectionsAreListedQuicklyAndHarmNothing) {
  server_ = std::make_unique<ExecServer>(tcp_exec_server({"--max-connections", "5000"}));
  const std::string url = server_->tcp_url();
  std::vector<SocketClient> idle;
  idle.reserve(1000);
  for (int i = 0; i < 1000; ++i)
    idle.emplace_back(url);
  // Each has spoken, so that all are past accept when we ask.
  for (auto& c : idle)
    c.send_all("x");
  for (auto& c : idle)
    ASSERT_EQ(c.recv_exact(1), "X");
  const auto t0 = std::chrono::steady_clock::now();
  const Json doc = stats_json(url);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["connections_total"], 1001) << "the idle ones and the stats client";
  EXPECT_EQ(doc["connections"].size(), 1001u);
  EXPECT_EQ(doc["connections_omitted"], 0);
  // A generous bound for a loaded machine: the point is no per-connection wait.
  EXPECT_LT(took, 10s);
  // Every idle connection still works, and the server took no harm.
  for (auto& c : idle) {
    c.send_all("y");
    ASSERT_EQ(c.recv_exact(1), "Y");
  }
}

TEST_F(Stats, RowsPastTheFrameLimitAreLeftOutAndCounted) {
  server_ = std::make_unique<ExecServer>(tcp_exec_server({"--max-frame", "4096"}));
  const std::string url = server_->tcp_url();
  std::vector<SocketClient> idle;
  for (int i = 0; i < 60; ++i) {
    idle.emplace_back(url);
    idle.back().send_all("x");
    ASSERT_EQ(idle.back().recv_exact(1), "X");
  }
  const auto r = stats(url, {"--json"});
  ASSERT_EQ(r.status, kOk) << r.err;
  EXPECT_LE(r.out.size(), 4096u + 1) << "the document fits the frame limit";
  const Json doc = Json::parse(r.out, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << r.out;
  EXPECT_EQ(doc["connections_total"], 61);
  EXPECT_GT(doc["connections_omitted"].get<int>(), 0);
  EXPECT_EQ(doc["connections"].size() + doc["connections_omitted"].get<std::size_t>(), 61u);
  const auto table = stats(url);
  EXPECT_TRUE(contains(table.out, "more connections not listed")) << table.out;
}

// Two connections whose lines interleave in the log: each line names its own connection.
TEST_F(Stats, EveryLogLineOfAConnectionCarriesItsId) {
  server_ = std::make_unique<ExecServer>(
      ExecServerOptions{.args = {"--log-level", "debug", "--log-format", "json"},
                        .tcp = true,
                        .unix_socket = false,
                        .exec = true,
                        .quiet = false});
  const std::string url = server_->tcp_url();
  ExecClient a(url), b(url);
  ASSERT_TRUE(a.authenticate(server_->token()));
  ASSERT_TRUE(b.authenticate(server_->token()));
  const std::string pa = a.socket().local_address(), pb = b.socket().local_address();
  ExecRequest req;
  req.argv = {"true"};
  a.send(exec_start_frame(req));
  b.send(exec_start_frame(req));
  a.send(stdin_eof_frame());
  b.send(stdin_eof_frame());
  EXPECT_TRUE(exited_with(a.finish(), 0));
  EXPECT_TRUE(exited_with(b.finish(), 0));
  a.socket().close();
  b.socket().close();
  ASSERT_TRUE(server_->server().wait_stderr(pa + "): closed"));
  ASSERT_TRUE(server_->server().wait_stderr(pb + "): closed"));
  server_->server().stop();

  // Which id each peer got, from its "open" line; then every line naming a peer has its id.
  std::map<std::string, std::uint64_t> id_of;
  std::map<std::uint64_t, int> lines_of;
  std::istringstream log(server_->server().stderr_text());
  for (std::string line; std::getline(log, line);) {
    const Json j = Json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    const std::string msg = j.value("msg", "");
    for (const auto& peer : {pa, pb}) {
      if (!contains(msg, peer)) continue;
      ASSERT_TRUE(j.contains("conn")) << "no connection id: " << line;
      const auto id = j["conn"].get<std::uint64_t>();
      if (contains(msg, "session from")) id_of[peer] = id;
      ASSERT_TRUE(id_of.count(peer)) << "a line before the connection's open line: " << line;
      EXPECT_EQ(id, id_of[peer]) << line;
      EXPECT_FALSE(msg.starts_with("[c")) << "the tag is lifted into \"conn\": " << line;
      ++lines_of[id];
    }
  }
  ASSERT_EQ(id_of.size(), 2u);
  EXPECT_NE(id_of[pa], id_of[pb]);
  // open, authenticated, the audit line, closed: at least four each.
  EXPECT_GE(lines_of[id_of[pa]], 4);
  EXPECT_GE(lines_of[id_of[pb]], 4);
}

}  // namespace
}  // namespace duplex::test
