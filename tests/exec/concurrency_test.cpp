// Commands at once (issue 3, test 5; issue 6, bug 3): fifty in parallel on one server, each output
// and status exact; a command over a share waits its turn in a bounded queue, and is refused (with
// the reason) only past the queue limit or the wait limit, or at once when the queue is off.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
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

TEST(ExecConcurrency, PerClientLimitWithoutAQueueRefusesTheNinthOnly) {
  // Default --max-commands-per-client 8; --max-queued-per-client 0 turns the queue off.
  ExecServer server({.args = {"--max-queued-per-client", "0"}});
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

TEST(ExecConcurrency, ServerLimitWithoutAQueueRefusesBeyondMaxCommands) {
  ExecServer server({.args = {"--max-commands", "2", "--max-queued-per-client", "0"}});
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

namespace duplex::test {
namespace {

// `duplex exec URL -- sh -c SCRIPT sh ARGS...` started now; the Unix URL needs no token (our uid).
std::unique_ptr<Process> start_duplex_exec(const ExecServer& server, const std::string& url,
                                           const std::string& script,
                                           std::vector<std::string> args = {}) {
  std::vector<std::string> argv{duplex_bin(), "exec"};
  if (url.rfind("unix://", 0) != 0) argv.insert(argv.end(), {"--token-file", server.token_path()});
  argv.insert(argv.end(), {url, "--", "sh", "-c", script, "sh"});
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Process>(argv);
}

// Issue 6, bug 3: `seq 12 | xargs -P 12 duplex exec ...` failed four of twelve with the default
// limits. Fifty at once from one user now all run, eight at a time, each exact.
void fifty_parallel_duplex_exec(const ExecServer& server, const std::string& url) {
  constexpr int kN = 50;
  std::vector<std::unique_ptr<Process>> procs;
  for (int i = 0; i < kN; ++i)
    procs.push_back(start_duplex_exec(server, url, "sleep 0.2; echo \"$1\"; exit \"$2\"",
                                      {std::to_string(i), std::to_string(i % 7)}));
  for (int i = 0; i < kN; ++i) {
    auto& p = *procs[static_cast<std::size_t>(i)];
    const auto out = p.read_all_stdout(60s);
    const auto err = p.read_all_stderr(5s);
    const auto st = p.wait(10s);
    ASSERT_TRUE(st.has_value()) << "command " << i;
    EXPECT_EQ(*st, (ExitStatus{true, i % 7})) << "command " << i << ": " << err;
    EXPECT_EQ(out, std::to_string(i) + "\n") << "command " << i;
    EXPECT_EQ(err, "") << "command " << i;
  }
}

TEST(ExecQueue, FiftyParallelDuplexExecOverUnixSocketAllSucceed) {
  ExecServer server({.args = {}, .tcp = false, .unix_socket = true});  // default limits
  fifty_parallel_duplex_exec(server, server.unix_url());
}

TEST(ExecQueue, FiftyParallelDuplexExecOverTcpAllSucceed) {
  ExecServer server;  // default limits: 8 per client
  fifty_parallel_duplex_exec(server, server.url());
}

// Waits for `n` of `procs` to exit; returns which did.
std::vector<std::size_t> wait_exited(std::vector<std::unique_ptr<Process>>& procs, std::size_t n,
                                     std::vector<std::optional<ExitStatus>>& status) {
  std::vector<std::size_t> done;
  eventually(
      [&] {
        done.clear();
        for (std::size_t i = 0; i < procs.size(); ++i) {
          if (!status[i]) status[i] = procs[i]->wait(0ms);
          if (status[i]) done.push_back(i);
        }
        return done.size() >= n;
      },
      30s);
  return done;
}

TEST(ExecQueue, PastTheQueueLimitCommandsAreRefusedWithTheReason) {
  // One runs, two wait, three are refused at once; the three that got in run in order once the
  // file they wait for appears.
  ExecServer server({.args = {"--max-commands-per-client", "1", "--max-queued-per-client", "2"},
                     .tcp = false,
                     .unix_socket = true});
  const std::string go = server.dir().file("go");
  constexpr std::size_t kN = 6;
  std::vector<std::unique_ptr<Process>> procs;
  for (std::size_t i = 0; i < kN; ++i)
    procs.push_back(start_duplex_exec(server, server.unix_url(),
                                      "while [ ! -e \"$1\" ]; do sleep 0.02; done; echo \"$2\"",
                                      {go, std::to_string(i)}));
  std::vector<std::optional<ExitStatus>> status(kN);
  const auto refused = wait_exited(procs, 3, status);
  ASSERT_EQ(refused.size(), 3u) << "three are refused at once, while nothing can finish";
  for (std::size_t i : refused) {
    EXPECT_EQ(*status[i], (ExitStatus{true, 255})) << "client " << i;
    EXPECT_EQ(procs[i]->read_all_stdout(5s), "") << "client " << i;
    const auto err = procs[i]->read_all_stderr(5s);
    EXPECT_NE(err.find("command queue full: 1 command running and 2 waiting for this client "
                       "(queue limit 2)"),
              std::string::npos)
        << "client " << i << ": " << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line: " << err;
  }
  // Exactly one command runs meanwhile (a `sh` under the server), the other two wait.
  EXPECT_EQ(children_of(server.pid()).size(), 1u);

  std::ofstream(go).put('x');
  for (std::size_t i = 0; i < kN; ++i) {
    if (std::find(refused.begin(), refused.end(), i) != refused.end()) continue;
    EXPECT_EQ(procs[i]->read_all_stdout(30s), std::to_string(i) + "\n") << "client " << i;
    const auto st = procs[i]->wait(10s);
    ASSERT_TRUE(st.has_value()) << "client " << i;
    EXPECT_EQ(*st, (ExitStatus{true, 0}))
        << "client " << i << ": " << procs[i]->read_all_stderr(1s);
  }
}

TEST(ExecQueue, PastTheWaitLimitACommandIsRefusedWithTheReason) {
  ExecServer server({.args = {"--max-commands-per-client", "1", "--max-queue-wait", "0.3"}});
  auto holder = running_cat(server, 1);
  const auto t0 = Clock::now();
  const auto r = run({duplex_bin(), "exec", "--token-file", server.token_path(), server.url(), "--",
                      "echo", "late"},
                     {}, 30s);
  EXPECT_GE(Clock::now() - t0, 300ms) << "it waited its turn first";
  EXPECT_EQ(r.status, (ExitStatus{true, 255})) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("command queue wait limit (0.3 s) reached; 1 command running for this "
                       "client"),
            std::string::npos)
      << r.err;
  holder->send_eof();
  EXPECT_TRUE(exited_with(holder->finish(), 0));
}

// True when `c`, past AUTH_OK, hears nothing for a while: its command waits in the queue.
bool waits_in_queue(ExecClient& c) {
  c.wait_for(msg::auth_ok);
  return c.reader().buffered() == 0 && !c.socket().recv_some(1, 300ms).has_value();
}

TEST(ExecQueue, OverItsShareACommandWaitsAndRunsWhenASlotFrees) {
  ExecServer server({.args = {"--max-commands-per-client", "2"}});
  auto a = running_cat(server, 1);
  auto b = running_cat(server, 2);
  ExecClient third(server.url());
  third.start(server.token(), echo_request("third"));
  third.send_eof();
  EXPECT_TRUE(waits_in_queue(third));
  EXPECT_EQ(children_of(server.pid()).size(), 2u) << "only the two cats run";
  a->send_eof();
  EXPECT_TRUE(exited_with(a->finish(), 0));
  const auto& o = third.finish();
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "third\n");
  b->send_eof();
  EXPECT_TRUE(exited_with(b->finish(), 0));
}

TEST(ExecQueue, AClientThatLeavesTheQueueLeavesNothingInIt) {
  // One runs, one may wait. The waiter resets; its place must be free again (a leaked waiter
  // would get every later command refused with "queue full").
  ExecServer server({.args = {"--max-commands-per-client", "1", "--max-queued-per-client", "1"}});
  auto holder = running_cat(server, 1);
  {
    ExecClient quitter(server.url());
    quitter.start(server.token(), echo_request("never"));
    ASSERT_TRUE(waits_in_queue(quitter));
    const auto full = exec_once(server.url(), server.token(), echo_request("full"));
    EXPECT_TRUE(refused_with(full, err::limit_exceeded)) << "the queue holds the quitter";
    quitter.socket().reset();
  }
  std::unique_ptr<ExecClient> next;
  EXPECT_TRUE(eventually([&] {
    next = std::make_unique<ExecClient>(server.url());
    next->start(server.token(), echo_request("next"));
    next->send_eof();
    return waits_in_queue(*next);
  }));
  holder->send_eof();
  EXPECT_TRUE(exited_with(holder->finish(), 0));
  const auto& o = next->finish();
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "next\n");
  EXPECT_TRUE(eventually([&] { return children_of(server.pid()).empty(); }));
}

}  // namespace
}  // namespace duplex::test
