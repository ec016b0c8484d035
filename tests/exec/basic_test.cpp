// Exec basics over raw frames (issue 3, tests 1 and 2): stdout and stderr apart, exit statuses,
// argv exactness, environment, working directory, descriptors, signals, the PTY and EXIT last.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"

namespace duplex::test {
namespace {

using Clock = std::chrono::steady_clock;

ExecRequest argv(std::vector<std::string> a) {
  ExecRequest r;
  r.argv = std::move(a);
  return r;
}

ExecRequest shell(std::string script) {
  ExecRequest r;
  r.argv = {std::move(script)};
  r.shell = true;
  return r;
}

class ExecBasics : public ::testing::Test {
 protected:
  ExecServer server_;
  ExecOutcome run(const ExecRequest& r, std::string_view input = {}) {
    return exec_once(server_.url(), server_.token(), r, input);
  }
};

TEST_F(ExecBasics, StdoutAndStderrStayApart) {
  ExecClient c(server_.url());
  c.start(server_.token(), shell("echo o1; echo e1 >&2; echo o2; echo e2 >&2; exit 0"));
  c.send_eof();
  const auto& o = c.finish();
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "o1\no2\n");
  EXPECT_EQ(o.err, "e1\ne2\n");
  ASSERT_TRUE(o.identity.has_value());
  EXPECT_EQ(*o.identity, "token");
  // EXIT is the last frame: after it the server sends nothing and closes when we do.
  EXPECT_EQ(o.types.back(), msg::exit);
  EXPECT_TRUE(c.exit_was_last());
}

TEST_F(ExecBasics, ExitStatusSeven) {
  const auto o = run(shell("echo before; exit 7"));
  EXPECT_TRUE(exited_with(o, 7));
  EXPECT_EQ(o.out, "before\n");
}

TEST_F(ExecBasics, ExitStatusZeroWithoutOutputReturnsAtOnce) {
  const auto t0 = Clock::now();
  const auto o = run(argv({"true"}));
  const auto wall = Clock::now() - t0;
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "");
  ASSERT_TRUE(o.exit);
  EXPECT_LT(o.exit->duration_us, 1'000'000u)
      << "EXIT says `true` ran for " << o.exit->duration_us << " us";
  EXPECT_LT(wall, std::chrono::seconds(2));
}

TEST_F(ExecBasics, CommandThatDoesNotReadStdinEndsWithoutStdinEof) {
  // No STDIN_EOF sent: a command that never reads its stdin still ends, and EXIT comes.
  ExecClient c(server_.url());
  c.start(server_.token(), argv({"echo", "no stdin needed"}));
  const auto& o = c.finish(std::chrono::seconds(10));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "no stdin needed\n");
}

TEST_F(ExecBasics, ProgramNotFoundIsNotStartedWithEnoent) {
  const auto o = run(argv({"duplex-no-such-program-xyz"}));
  ASSERT_TRUE(o.exit) << (o.error ? o.error->text : "no EXIT");
  // docs/PROTOCOL.md §5: how 2 (not started), code = the errno of the failed start (2 ENOENT);
  // the client maps that to 127.
  EXPECT_EQ(o.exit->how, ExitPayload::not_started) << describe(*o.exit);
  EXPECT_EQ(o.exit->code, ENOENT) << describe(*o.exit);
  EXPECT_EQ(o.out, "");
}

TEST_F(ExecBasics, ShellCommandNotFoundExits127) {
  const auto o = run(shell("duplex-no-such-program-xyz"));
  EXPECT_TRUE(exited_with(o, 127));
  EXPECT_NE(o.err.find("not found"), std::string::npos) << o.err;
}

TEST_F(ExecBasics, DirectoryIsNotStartedWithEacces) {
  const auto o = run(argv({server_.dir().path().string()}));
  ASSERT_TRUE(o.exit) << (o.error ? o.error->text : "no EXIT");
  // PROTOCOL.md: code is the errno (13 EACCES); the client maps it to 126.
  EXPECT_EQ(o.exit->how, ExitPayload::not_started) << describe(*o.exit);
  EXPECT_EQ(o.exit->code, EACCES) << describe(*o.exit);
}

TEST_F(ExecBasics, NonExecutableFileIsNotStartedWithEacces) {
  const auto path = server_.dir().file("not-executable.sh");
  write_file(path, "#!/bin/sh\necho should not run\n", 0644);
  const auto o = run(argv({path}));
  ASSERT_TRUE(o.exit) << (o.error ? o.error->text : "no EXIT");
  EXPECT_EQ(o.exit->how, ExitPayload::not_started) << describe(*o.exit);
  EXPECT_EQ(o.exit->code, EACCES) << describe(*o.exit);
  EXPECT_EQ(o.out, "");
}

TEST_F(ExecBasics, ShellNonExecutableFileExits126) {
  const auto path = server_.dir().file("not-executable.sh");
  write_file(path, "#!/bin/sh\necho should not run\n", 0644);
  const auto o = run(shell("'" + path + "'"));
  EXPECT_TRUE(exited_with(o, 126));
  EXPECT_EQ(o.out, "");
}

TEST_F(ExecBasics, KilledBySigtermIsSignaled15) {
  const auto o = run(shell("kill -TERM $$"));
  EXPECT_TRUE(signaled_with(o, SIGTERM));  // a client shows 128 + 15 = 143
}

TEST_F(ExecBasics, ArgvIsExact) {
  const auto o = run(argv(
      {"printf", "%s|", "a b", "$HOME", ";x", "", "'q'", "\"dq\"", "*", "tab\there", "nl\nx"}));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "a b|$HOME|;x||'q'|\"dq\"|*|tab\there|nl\nx|");
}

TEST_F(ExecBasics, ShellStringIsRunWithShC) {
  const auto o = run(shell("for w in a 'b c'; do printf '<%s>' \"$w\"; done; echo"));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "<a><b c>\n");
}

TEST_F(ExecBasics, BinaryStdoutAndStdinBytesUntouched) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  const auto o = run(argv({"cat"}), all + all);
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, all + all);
}

TEST_F(ExecBasics, StdinEofReachesTheCommand) {
  const auto o = run(argv({"wc", "-c"}), "12345");
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out.substr(o.out.find_first_not_of(' ')), "5\n");
}

TEST_F(ExecBasics, EnvironmentIsMinimalPlusWhatWasAsked) {
  ::setenv("DUPLEX_EXEC_TEST_LEAK", "server-side secret", 1);
  // Started with the variable in its environment; FOO and EMPTY let through (--env-allow).
  ExecServer leaky({.args = {"--env-allow", "FOO", "--env-allow", "EMPTY"}});
  ::unsetenv("DUPLEX_EXEC_TEST_LEAK");
  ExecRequest r = argv({"env"});
  r.env = {{"FOO", "bar baz"}, {"EMPTY", ""}};
  const auto o = exec_once(leaky.url(), leaky.token(), r);
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_NE(o.out.find("\nFOO=bar baz\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("\nEMPTY=\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("PATH="), std::string::npos) << o.out;
  EXPECT_EQ(o.out.find("DUPLEX_EXEC_TEST_LEAK"), std::string::npos)
      << "server environment leaked:\n"
      << o.out;
  EXPECT_EQ(o.out.find("XDG_CONFIG_HOME"), std::string::npos) << "server environment leaked:\n"
                                                              << o.out;
}

TEST_F(ExecBasics, WorkingDirectoryAsAsked) {
  ExecRequest r = argv({"pwd"});
  r.cwd = server_.dir().path().string();
  const auto o = run(r);
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, r.cwd + "\n");
}

TEST_F(ExecBasics, WorkingDirectoryThatFailsIsBadCwdNotCommandNotFound) {
  // docs/PROTOCOL.md: EXIT how 3 (bad_cwd), code = chdir's errno. It used to be how 2 with
  // ENOENT, which the client reported as "command not found" although pwd exists.
  ExecRequest r = argv({"pwd"});
  r.cwd = server_.dir().file("no-such-dir");
  const auto o = run(r);
  ASSERT_TRUE(o.exit) << (o.error ? o.error->text : "no EXIT");
  EXPECT_EQ(o.exit->how, ExitPayload::bad_cwd) << describe(*o.exit);
  EXPECT_EQ(o.exit->code, ENOENT) << describe(*o.exit);
  EXPECT_EQ(o.out, "");
}

TEST_F(ExecBasics, CommandSeesOnlyStdinStdoutStderr) {
  // Asio's sockets are not close-on-exec: the server must close every other fd in the child.
  // ls opens the directory it lists as fd 3.
  const auto o = run(argv({"ls", "-1", "/proc/self/fd"}));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "0\n1\n2\n3\n");
}

TEST_F(ExecBasics, CommandRunsInItsOwnSessionAndGroup) {
  // Fields 5 (pgrp) and 6 (session) of /proc/self/stat equal the pid: setsid() in the child.
  const auto o =
      run(shell("read -r pid comm state ppid pgrp sid rest < /proc/$$/stat; "
                "[ \"$pgrp\" = $$ ] && [ \"$sid\" = $$ ] && echo own-session"));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "own-session\n");
}

TEST_F(ExecBasics, SignalFrameReachesTheWholeGroup) {
  // USR1 to the group: the shell and its background subshell (same group) both trap it.
  ExecClient c(server_.url());
  c.start(
      server_.token(),
      shell("trap 'echo parent-usr1' USR1; "
            "( trap 'echo child-usr1; exit 0' USR1; echo ready; while :; do sleep 0.05; done ) & "
            "wait; wait; echo done"));
  c.wait_for_stdout("ready\n");
  c.send_signal(SIGUSR1);
  const auto& o = c.finish(std::chrono::seconds(10));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_NE(o.out.find("parent-usr1\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("child-usr1\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("done\n"), std::string::npos) << o.out;
}

TEST_F(ExecBasics, SignalFrameReachesATrappingShell) {
  ExecClient c(server_.url());
  // The background sleep ignores SIGINT (POSIX, for async lists); the trap ends it.
  c.start(
      server_.token(),
      shell("trap 'echo got-int; kill $! 2>/dev/null; exit 9' INT; echo ready; sleep 100 & wait"));
  c.wait_for_stdout("ready\n");
  c.send_signal(SIGINT);
  const auto& o = c.finish(std::chrono::seconds(10));
  EXPECT_TRUE(exited_with(o, 9));
  EXPECT_EQ(o.out, "ready\ngot-int\n");
}

TEST_F(ExecBasics, SigintKillsAPlainCommand) {
  ExecClient c(server_.url());
  c.start(server_.token(), shell("echo ready; exec sleep 100"));
  c.wait_for_stdout("ready\n");
  const auto t0 = Clock::now();
  c.send_signal(SIGINT);
  const auto& o = c.finish(std::chrono::seconds(10));
  EXPECT_TRUE(signaled_with(o, SIGINT));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
}

TEST_F(ExecBasics, PtyMergesOutputAndIsATerminal) {
  ExecRequest r =
      shell("[ -t 0 ] && [ -t 1 ] && echo is-a-tty; echo to-stderr >&2; echo \"TERM=$TERM\"");
  r.pty = true;
  r.rows = 24;
  r.cols = 80;
  r.term = "xterm-256color";
  const auto o = run(r);
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.err, "") << "a PTY has one output stream: everything is STDOUT_DATA";
  EXPECT_NE(o.out.find("is-a-tty"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("to-stderr"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("TERM=xterm-256color"), std::string::npos) << o.out;
}

TEST_F(ExecBasics, PtyWindowSizeAtStartAndOnResize) {
  ExecRequest r = shell("stty size; read -r line; stty size");
  r.pty = true;
  r.rows = 24;
  r.cols = 80;
  r.term = "xterm";
  ExecClient c(server_.url());
  c.start(server_.token(), r);
  c.wait_for_stdout("24 80");
  // Frames are handled in order: the resize happens before the line reaches `read`.
  c.send(window_size_frame(50, 132) + stdin_frame("go\n"));
  const auto& o = c.finish(std::chrono::seconds(10));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_NE(o.out.find("50 132"), std::string::npos) << o.out;
}

TEST_F(ExecBasics, PtyStdinEofEndsCat) {
  ExecRequest r = argv({"cat"});
  r.pty = true;
  r.rows = 24;
  r.cols = 80;
  const auto o = run(r, "typed line\n");
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_NE(o.out.find("typed line"), std::string::npos) << o.out;
}

TEST_F(ExecBasics, RequestTimeoutEndsTheCommand) {
  ExecRequest r = argv({"sleep", "10"});
  r.timeout_ms = 300;
  const auto t0 = Clock::now();
  const auto o = run(r);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
  ASSERT_TRUE(o.exit);
  EXPECT_EQ(o.exit->limit, ExitPayload::timeout) << describe(*o.exit);
  EXPECT_EQ(o.exit->how, ExitPayload::signaled) << describe(*o.exit);
  EXPECT_EQ(o.exit->code, SIGTERM) << describe(*o.exit);
}

TEST_F(ExecBasics, InputBeyondWhatTheCommandReadsIsDropped) {
  // head reads 10 bytes and exits; the rest of 5 MB of stdin meets a closed pipe. The server
  // drops it, and the command's EXIT still comes.
  const std::string input(5'000'000, 'z');
  const auto o = run(argv({"head", "-c", "10"}), input);
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, std::string(10, 'z'));
}

TEST_F(ExecBasics, StdinAfterExitIsIgnored) {
  ExecClient c(server_.url());
  c.start(server_.token(), argv({"true"}));
  const auto& o = c.finish();
  EXPECT_TRUE(exited_with(o, 0));
  c.send(stdin_frame("late") + stdin_eof_frame() + signal_frame(SIGTERM));
  EXPECT_TRUE(c.exit_was_last());
}

TEST_F(ExecBasics, MalformedExecStartIsBadMessageAndNothingRuns) {
  const auto marker = server_.dir().file("ran");
  // The shell flag with two arguments: PROTOCOL.md says argc must then be exactly 1.
  ExecRequest r = argv({"touch " + marker, "extra"});
  r.shell = true;
  const auto o = run(r);
  EXPECT_TRUE(refused_with(o, 14));  // bad_message
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST_F(ExecBasics, NulInAnArgumentIsBadMessage) {
  const auto o = run(argv({"echo", std::string("a\0b", 3)}));
  EXPECT_TRUE(refused_with(o, 14));
}

TEST_F(ExecBasics, SecondExecStartWhileOneRunsIsRefusedAndEndsBoth) {
  ExecClient c(server_.url());
  c.start(server_.token(), shell("echo first; exec sleep 1000"));
  c.wait_for_stdout("first\n");
  const auto kids = children_of(server_.pid());  // the shell, soon exec'ing sleep: same pid
  ASSERT_EQ(kids.size(), 1u);
  const pid_t first = kids[0];
  c.send(exec_start_frame(argv({"echo", "second"})));
  const auto& o = c.finish();
  EXPECT_TRUE(refused_with(o, err::limit_exceeded));
  EXPECT_EQ(o.out, "first\n");
  EXPECT_TRUE(eventually([&] { return not_running(first); }, std::chrono::seconds(3)));
}

TEST(ExecIdle, SilentCommandOutlivesTheIdleTimeout) {
  // A command that says nothing for longer than --idle-timeout is busy, not idle.
  ExecServer server({.args = {"--idle-timeout", "0.3"}});
  ExecRequest r = shell("sleep 1; echo still-here");
  const auto o = exec_once(server.url(), server.token(), r, {}, std::chrono::seconds(10));
  EXPECT_TRUE(exited_with(o, 0));
  EXPECT_EQ(o.out, "still-here\n");
}

TEST(ExecIdle, IdleConnectionAfterExitIsClosed) {
  ExecServer server({.args = {"--idle-timeout", "0.3"}});
  ExecClient c(server.url());
  c.start(server.token(), argv({"true"}));
  EXPECT_TRUE(exited_with(c.finish(), 0));
  // Nothing more from us: the server says idle_timeout (31) and closes.
  auto f = c.reader().next(std::chrono::seconds(5));
  ASSERT_TRUE(f.has_value()) << "closed without saying why";
  EXPECT_EQ(f->type, msg::error);
  const auto e = parse_error(f->payload);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 31);
  EXPECT_FALSE(c.reader().next(std::chrono::seconds(5)).has_value());
}

TEST(ExecIdle, IdleTimeoutIsLoggedOnceAndTheSessionsBytesOutAreCounted) {
  // Bug 7: an idle timeout was logged twice, once as a protocol error; framed sessions were
  // logged with "0 bytes out" although replies had gone out.
  ExecServer server({.args = {"-v", "--idle-timeout", "0.3"}, .quiet = false});
  ExecClient c(server.url());
  c.start(server.token(), argv({"echo", "twelve bytes"}));
  EXPECT_TRUE(exited_with(c.finish(), 0));
  auto f = c.reader().next(std::chrono::seconds(5));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->type, msg::error);
  EXPECT_FALSE(c.reader().next(std::chrono::seconds(5)).has_value());
  EXPECT_EQ(server.server().stop(), (ExitStatus{true, 0}));
  const std::string log = server.server().stderr_text();
  std::size_t idle_lines = 0, error_lines = 0;
  std::string closed_line;
  for (std::size_t start = 0; start < log.size();) {
    const auto end = std::min(log.find('\n', start), log.size());
    const auto line = log.substr(start, end - start);
    if (line.find("idle timeout") != std::string::npos) ++idle_lines;
    if (line.find("protocol error") != std::string::npos) ++error_lines;
    if (line.find("closed,") != std::string::npos) closed_line = line;
    start = end + 1;
  }
  EXPECT_EQ(idle_lines, 1u) << log;
  EXPECT_EQ(error_lines, 0u) << log;
  // WELCOME, AUTH_OK, STDOUT "twelve bytes\n", EXIT and the ERROR: far from zero.
  EXPECT_EQ(closed_line.find(" 0 bytes out"), std::string::npos) << closed_line;
  EXPECT_NE(closed_line.find(" bytes out"), std::string::npos) << log;
}

TEST(ExecParallel, ManyCommandsAtOnceOnSeveralThreadsShareNothingUnsafely) {
  // Commands started at the same moment on different worker threads: each spawn looks up the
  // account (home directory, login shell). That lookup used getpwuid(), whose static buffer
  // every thread shares; under ThreadSanitizer (scripts/test.sh tsan) the server reports the
  // race on its stderr and exits non-zero. In every build: all commands run, exactly.
  ExecServer server({.args = {"--threads", "4", "--max-commands-per-client", "64"}});
  constexpr int kClients = 8, kEach = 6;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < kClients; ++t)
    clients.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        ExecRequest r;
        if (i % 2 == 0) {
          r.argv = {"sh", "-c", "echo $0 $HOME", std::to_string(t * kEach + i)};
        } else {
          r.login = true;  // the account's login shell, started in its home directory
        }
        const std::string want =
            i % 2 ? std::string("login-42\n") : std::to_string(t * kEach + i) + " ";
        try {
          const auto o =
              exec_once(server.url(), server.token(), r, i % 2 ? "echo login-$((6*7))\n" : "");
          if (o.exit && o.exit->how == ExitPayload::exited && o.exit->code == 0 &&
              o.out.find(want) != std::string::npos)
            ok.fetch_add(1);
          else
            ADD_FAILURE() << "command " << t * kEach + i << ": "
                          << (o.exit ? describe(*o.exit) : "no EXIT") << ", out " << o.out;
        } catch (const std::exception& e) {  // e.g. the server is gone
          ADD_FAILURE() << "command " << t * kEach + i << ": " << e.what();
        }
      }
    });
  for (auto& c : clients)
    c.join();
  EXPECT_EQ(ok.load(), kClients * kEach);
  const auto status = server.server().stop();
  const auto log = server.server().stderr_text();
  EXPECT_EQ(log.find("ThreadSanitizer"), std::string::npos) << log;
  EXPECT_EQ(status, (ExitStatus{true, 0}));
}

}  // namespace
}  // namespace duplex::test
