// Tests for client/exec_result.hpp: exit status, the one-line reason and the --json object.
#include "duplex/client/exec_result.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <string>

#include "duplex/core/errors.hpp"

namespace duplex::client {
namespace {

using How = wire::Exit::How;
using Limit = wire::Exit::Limit;

ExecResult exited(How how, std::int32_t code, Limit limit = Limit::none, std::uint64_t us = 1500) {
  ExecResult r;
  r.end = wire::Exit{how, code, us, limit};
  return r;
}

ExecResult failed(std::string detail) {
  ExecResult r;
  r.end = fail(std::errc::connection_refused, std::move(detail));
  return r;
}

ExecResult signalled_here(int signo) {
  ExecResult r;
  r.end = LocalSignal{signo};
  return r;
}

TEST(ExitStatus, FollowsSsh) {
  EXPECT_EQ(exit_status(exited(How::exited, 0)), 0);
  EXPECT_EQ(exit_status(exited(How::exited, 7)), 7);
  EXPECT_EQ(exit_status(exited(How::exited, 255)), 255);  // a remote `exit 255` stays 255
  EXPECT_EQ(exit_status(exited(How::signaled, SIGTERM)), 143);
  EXPECT_EQ(exit_status(exited(How::signaled, SIGKILL)), 137);
}

TEST(ExitStatus, NotStartedFollowsTheShellsRuleForTheErrno) {
  // PROTOCOL.md: the code of a command that did not start is execve's errno.
  EXPECT_EQ(exit_status(exited(How::not_started, ENOENT)), 127);
  EXPECT_EQ(exit_status(exited(How::not_started, EACCES)), 126);
  EXPECT_EQ(exit_status(exited(How::not_started, ENOEXEC)), 126);
  EXPECT_EQ(exit_status(exited(How::not_started, E2BIG)), 126);
}

TEST(ExitStatus, BadWorkingDirectoryIs126WhateverTheErrno) {
  // Never 127: "command not found" would send the user looking for the wrong thing.
  EXPECT_EQ(exit_status(exited(How::bad_cwd, ENOENT)), 126);
  EXPECT_EQ(exit_status(exited(How::bad_cwd, EACCES)), 126);
  EXPECT_EQ(exit_status(exited(How::bad_cwd, ENOTDIR)), 126);
}

TEST(ExitStatus, OwnFailuresAre255AndLocalSignals128PlusN) {
  EXPECT_EQ(exit_status(failed("authentication failed")), 255);
  EXPECT_EQ(exit_status(ExecResult{}), 255);  // no exit, no reason: still a failure
  EXPECT_EQ(exit_status(signalled_here(SIGINT)), 130);
  EXPECT_EQ(exit_status(signalled_here(SIGPIPE)), 141);
  EXPECT_EQ(exit_status(signalled_here(SIGTERM)), 143);
}

TEST(EndMessage, SaysWhyOrNothing) {
  wire::ExecStart s;
  s.argv = {"frobnicate", "x"};
  EXPECT_EQ(end_message(exited(How::exited, 3), s), "");
  EXPECT_EQ(end_message(exited(How::signaled, 9), s), "");
  EXPECT_EQ(end_message(exited(How::not_started, ENOENT), s),
            "cannot run 'frobnicate': command not found");
  EXPECT_EQ(end_message(exited(How::not_started, EACCES), s),
            "cannot run 'frobnicate': Permission denied");
  EXPECT_EQ(end_message(exited(How::signaled, 9, Limit::timeout, 5'000'000), s),
            "command ended: timeout (after 5.0 s)");
  EXPECT_EQ(end_message(exited(How::signaled, 9, Limit::output), s),
            "command ended: output limit reached");
  EXPECT_EQ(end_message(exited(How::signaled, 15, Limit::shutdown), s),
            "command ended: the server is shutting down");
  EXPECT_EQ(end_message(failed("authentication failed"), s), "authentication failed");
  EXPECT_EQ(end_message(signalled_here(SIGPIPE), s), "");  // whoever closed our stdout knows
  EXPECT_EQ(end_message(signalled_here(SIGHUP), s), "disconnected on SIGHUP");
  EXPECT_EQ(end_message(signalled_here(SIGINT), s),
            "interrupted: disconnected (the server ends the command)");
  EXPECT_EQ(end_message(ExecResult{}, s), "the session ended without an exit status");
}

TEST(EndMessage, BadWorkingDirectoryNamesTheDirectoryNotTheCommand) {
  wire::ExecStart s;
  s.argv = {"pwd"};
  s.cwd = "/nope";
  EXPECT_EQ(end_message(exited(How::bad_cwd, ENOENT), s),
            "cannot change to directory '/nope' on the server: No such file or directory");
  EXPECT_EQ(end_message(exited(How::bad_cwd, EACCES), s),
            "cannot change to directory '/nope' on the server: Permission denied");
  s.cwd.clear();  // the server's default: the account's home directory
  EXPECT_EQ(end_message(exited(How::bad_cwd, ENOENT), s),
            "cannot change to the home directory on the server: No such file or directory");
}

TEST(EndMessage, WhatCouldNotRun) {
  wire::ExecStart shell;
  shell.shell = true;
  shell.argv = {"echo hi"};
  EXPECT_EQ(end_message(exited(How::not_started, ENOENT), shell),
            "cannot run /bin/sh: command not found");
  wire::ExecStart login;
  login.login = true;
  EXPECT_EQ(end_message(exited(How::not_started, EACCES), login),
            "cannot run the login shell: Permission denied");
}

TEST(EndMessage, AShellLineGivenAsTheProgramGetsAHintForDashC) {
  // `duplex exec URL 'ls | wc -l'`: the argv is kept exact, so the server looks for a program of
  // that name; the line says how to run it with the shell instead of a bare "not found".
  wire::ExecStart s;
  s.argv = {"ls | wc -l"};
  EXPECT_EQ(end_message(exited(How::not_started, ENOENT), s),
            "cannot run 'ls | wc -l': command not found; to run it with /bin/sh, use -c "
            "'ls | wc -l'");
  s.argv = {"echo 'hi' > x"};
  EXPECT_EQ(end_message(exited(How::not_started, ENOENT), s),
            "cannot run 'echo 'hi' > x': command not found; to run it with /bin/sh, use -c "
            "'echo '\\''hi'\\'' > x'");
  s.argv = {"cd /tmp", "ls"};
  EXPECT_EQ(end_message(exited(How::not_started, ENOENT), s),
            "cannot run 'cd /tmp': command not found; to run a shell command line, give it as "
            "one string after -c");
  // A plain name that is not there, or a shell line that was found but cannot run: no hint.
  s.argv = {"frobnicate"};
  EXPECT_EQ(end_message(exited(How::not_started, ENOENT), s),
            "cannot run 'frobnicate': command not found");
  s.argv = {"a b"};
  EXPECT_EQ(end_message(exited(How::not_started, EACCES), s),
            "cannot run 'a b': Permission denied");
  // With -c the string already goes to the shell.
  wire::ExecStart shell;
  shell.shell = true;
  shell.argv = {"ls | wc -l"};
  EXPECT_EQ(end_message(exited(How::not_started, ENOENT), shell),
            "cannot run /bin/sh: command not found");
}

TEST(ResultJson, ExitedCommand) {
  auto r = exited(How::exited, 3, Limit::none, 12'345);
  const auto j = nlohmann::json::parse(result_json(r, "out\n", "err\n", {}));
  EXPECT_EQ(j["stdout"], "out\n");
  EXPECT_EQ(j["stderr"], "err\n");
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_TRUE(j["signal"].is_null());
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 12.345);
  EXPECT_TRUE(j["limit"].is_null());
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_TRUE(j["start_error"].is_null());
  EXPECT_TRUE(j["start_failure"].is_null());
  EXPECT_FALSE(j.contains("stdout_base64"));
}

TEST(ResultJson, Remote255IsNotAFailureToConnect) {
  const auto remote = nlohmann::json::parse(result_json(exited(How::exited, 255), "", "", {}));
  EXPECT_EQ(remote["exit_code"], 255);
  EXPECT_TRUE(remote["error"].is_null());
  const auto r = failed("cannot connect to tcp://127.0.0.1:1: Connection refused");
  const auto local = nlohmann::json::parse(result_json(r, "", "", {}));
  EXPECT_TRUE(local["exit_code"].is_null());
  EXPECT_EQ(local["error"], "cannot connect to tcp://127.0.0.1:1: Connection refused");
}

TEST(ResultJson, SignalTimeoutAndNotStarted) {
  const auto sig =
      nlohmann::json::parse(result_json(exited(How::signaled, 9, Limit::timeout), "", "", {}));
  EXPECT_TRUE(sig["exit_code"].is_null());
  EXPECT_EQ(sig["signal"], 9);
  EXPECT_EQ(sig["limit"], "timeout");
  const auto out =
      nlohmann::json::parse(result_json(exited(How::signaled, 9, Limit::output), "", "", {}));
  EXPECT_EQ(out["limit"], "output");
  wire::ExecStart s;
  s.argv = {"nope"};
  const auto ns = nlohmann::json::parse(result_json(exited(How::not_started, ENOENT), "", "", s));
  EXPECT_EQ(ns["exit_code"], 127);
  EXPECT_TRUE(ns["error"].is_null());
  EXPECT_EQ(ns["start_error"], "cannot run 'nope': command not found");
  EXPECT_EQ(ns["start_failure"], "program");
}

TEST(ResultJson, BadWorkingDirectoryIsItsOwnStartFailure) {
  wire::ExecStart s;
  s.argv = {"pwd"};
  s.cwd = "/nope";
  const auto j = nlohmann::json::parse(result_json(exited(How::bad_cwd, ENOENT), "", "", s));
  EXPECT_EQ(j["exit_code"], 126);
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_EQ(j["start_failure"], "cwd");
  EXPECT_EQ(j["start_error"],
            "cannot change to directory '/nope' on the server: No such file or directory");
}

TEST(ResultJson, LocalSignalIsAnErrorWithoutExitCode) {
  const auto j = nlohmann::json::parse(result_json(signalled_here(SIGINT), "", "", {}));
  EXPECT_TRUE(j["exit_code"].is_null());
  EXPECT_TRUE(j["signal"].is_null());
  EXPECT_EQ(j["error"], "interrupted by SIGINT");
}

TEST(ResultJson, BytesThatAreNotUtf8AreKeptExactlyInBase64) {
  const std::string bin(
      "\xff\xfe"
      "a\0b",
      5);
  const std::string text = result_json(exited(How::exited, 0), bin, "ok", {});
  const auto j = nlohmann::json::parse(text);  // it is valid JSON (and so valid UTF-8)
  EXPECT_EQ(j["stdout_base64"], "//5hAGI=");
  EXPECT_EQ(j["stdout"], "\xEF\xBF\xBD\xEF\xBF\xBD" + std::string("a\0b", 3));
  EXPECT_FALSE(j.contains("stderr_base64"));
}

}  // namespace
}  // namespace duplex::client
