// Commands at once (issue 3, test 5): fifty in parallel on one server, each output and status
// exact; the per-client and per-server command limits refuse the one too many, and only it.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

using Clock = std::chrono::steady_clock;

TEST(ExecConcurrency, FiftyCommandsAtOnceAreExactAndParallel) {
  ExecServer server({.args = {"--max-commands-per-client", "64"}});
  constexpr int kN = 50;
  std::vector<std::unique_ptr<ExecClient>> clients;
  const auto t0 = Clock::now();
  for (int i = 0; i < kN; ++i) {
    ExecRequest r;
    // argv[0] of the script is "sh", then a per-command word with a space and the status.
    r.argv = {"sh",
              "-c",
              "sleep 0.5; printf '%s\\n' \"$1\"; printf 'e%s' \"$2\" >&2; exit \"$2\"",
              "sh",
              "command " + std::to_string(i),
              std::to_string(i * 5 % 256)};
    clients.push_back(std::make_unique<ExecClient>(server.url()));
    clients.back()->start(server.token(), r);
    clients.back()->send_eof();
  }
  for (int i = 0; i < kN; ++i) {
    const auto& o = clients[static_cast<std::size_t>(i)]->finish(std::chrono::seconds(30));
    EXPECT_TRUE(exited_with(o, i * 5 % 256)) << "command " << i;
    EXPECT_EQ(o.out, "command " + std::to_string(i) + "\n");
    EXPECT_EQ(o.err, "e" + std::to_string(i * 5 % 256));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  RecordProperty("seconds", std::to_string(secs));
  // Serially this takes 25 s; in parallel about 0.5 s plus spawning.
  EXPECT_LT(secs, 5.0) << "50 commands of 0.5 s took " << secs << " s: not run in parallel";
}

// A `cat` that has echoed something back is certainly running (and holding its slot).
std::unique_ptr<ExecClient> running_cat(const ExecServer& server, int i) {
  auto c = std::make_unique<ExecClient>(server.url());
  ExecRequest r;
  r.argv = {"cat"};
  c->start(server.token(), r);
  c->send_stdin("hello " + std::to_string(i) + "\n");
  c->wait_for_stdout("hello " + std::to_string(i) + "\n");
  return c;
}

ExecRequest echo_request(const std::string& word) {
  ExecRequest r;
  r.argv = {"echo", word};
  return r;
}

TEST(ExecConcurrency, PerClientLimitRefusesTheNinthOnly) {
  ExecServer server;  // default --max-commands-per-client 8
  std::vector<std::unique_ptr<ExecClient>> eight;
  for (int i = 0; i < 8; ++i)
    eight.push_back(running_cat(server, i));

  const auto ninth = exec_once(server.url(), server.token(), echo_request("ninth"));
  EXPECT_TRUE(refused_with(ninth, err::limit_exceeded));
  EXPECT_EQ(ninth.out, "");

  for (int i = 0; i < 8; ++i) {
    auto& c = *eight[static_cast<std::size_t>(i)];
    c.send_stdin("bye\n");
    c.send_eof();
    const auto& o = c.finish();
    EXPECT_TRUE(exited_with(o, 0)) << "command " << i;
    EXPECT_EQ(o.out, "hello " + std::to_string(i) + "\nbye\n");
  }
  // The slots are free again.
  const auto after = exec_once(server.url(), server.token(), echo_request("after"));
  EXPECT_TRUE(exited_with(after, 0));
  EXPECT_EQ(after.out, "after\n");
}

TEST(ExecConcurrency, ServerLimitRefusesBeyondMaxCommands) {
  ExecServer server({.args = {"--max-commands", "2"}});
  auto a = running_cat(server, 1);
  auto b = running_cat(server, 2);
  const auto third = exec_once(server.url(), server.token(), echo_request("third"));
  EXPECT_TRUE(refused_with(third, err::limit_exceeded));
  a->send_eof();
  EXPECT_TRUE(exited_with(a->finish(), 0));
  const auto fourth = exec_once(server.url(), server.token(), echo_request("fourth"));
  EXPECT_TRUE(exited_with(fourth, 0));
  EXPECT_EQ(fourth.out, "fourth\n");
  b->send_eof();
  EXPECT_TRUE(exited_with(b->finish(), 0));
}

TEST(ExecConcurrency, SlotOfAVanishedClientIsReleased) {
  ExecServer server({.args = {"--max-commands", "1"}});
  {
    auto a = running_cat(server, 1);
    a->socket().reset();
  }
  // The command of the reset client is ended and reaped, and its slot freed with it.
  ASSERT_TRUE(
      eventually([&] { return children_of(server.pid()).empty(); }, std::chrono::seconds(3)));
  const auto o = exec_once(server.url(), server.token(), echo_request("next"));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "next\n");
}

}  // namespace
}  // namespace duplex::test

namespace duplex::test {
namespace {

TEST(ExecConcurrency, NextCommandRightAfterExitIsNeverRefused) {
  // A command is over when its EXIT arrives: a client at the limit that starts its next command
  // then (a script running one command after another) must not be refused.
  ExecServer server({.args = {"--max-commands", "1"}});
  int refused = 0;
  for (int i = 0; i < 100; ++i) {
    const auto o = exec_once(server.url(), server.token(), echo_request(std::to_string(i)));
    if (o.error && o.error->code == err::limit_exceeded)
      ++refused;
    else
      EXPECT_TRUE(exited_with(o, 0)) << "command " << i;
  }
  EXPECT_EQ(refused, 0) << refused << " of 100 sequential commands refused with limit_exceeded";
}

}  // namespace
}  // namespace duplex::test
