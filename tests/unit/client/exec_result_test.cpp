// Tests for the pure parts of client/exec_client.hpp.
// Exit status, the one-line reason, --json, UTF-8 checking, --encoding (iconv carry), write_all
// and where the token comes from.
#include "duplex/client/exec_client.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace duplex::client {
namespace {

using How = wire::Exit::How;
using Limit = wire::Exit::Limit;

ExecResult exited(How how, std::int32_t code, Limit limit = Limit::none, std::uint64_t us = 1500) {
  ExecResult r;
  r.exit = wire::Exit{how, code, us, limit};
  return r;
}

TEST(ExitStatus, FollowsSsh) {
  EXPECT_EQ(exit_status(exited(How::exited, 0)), 0);
  EXPECT_EQ(exit_status(exited(How::exited, 7)), 7);
  EXPECT_EQ(exit_status(exited(How::exited, 255)), 255);  // a remote `exit 255` stays 255
  EXPECT_EQ(exit_status(exited(How::signaled, SIGTERM)), 143);
  EXPECT_EQ(exit_status(exited(How::signaled, SIGKILL)), 137);
  // not started: the server may send the errno or the status itself
  EXPECT_EQ(exit_status(exited(How::not_started, ENOENT)), 127);
  EXPECT_EQ(exit_status(exited(How::not_started, EACCES)), 126);
  EXPECT_EQ(exit_status(exited(How::not_started, 127)), 127);
  EXPECT_EQ(exit_status(exited(How::not_started, 126)), 126);
}

TEST(ExitStatus, OwnFailuresAre255AndLocalSignals128PlusN) {
  ExecResult failed;
  failed.error = "authentication failed";
  EXPECT_EQ(exit_status(failed), 255);
  EXPECT_EQ(exit_status(ExecResult{}), 255);  // no exit, no reason: still a failure
  ExecResult interrupted;
  interrupted.local_signal = SIGINT;
  EXPECT_EQ(exit_status(interrupted), 130);
  ExecResult piped;
  piped.local_signal = SIGPIPE;
  EXPECT_EQ(exit_status(piped), 141);
}

TEST(EndMessage, SaysWhyOrNothing) {
  wire::ExecStart s;
  s.argv = {"frobnicate", "x"};
  EXPECT_EQ(end_message(exited(How::exited, 3), s), "");
  EXPECT_EQ(end_message(exited(How::signaled, 9), s), "");
  EXPECT_EQ(end_message(exited(How::not_started, ENOENT), s),
            "cannot run 'frobnicate': command not found");
  EXPECT_EQ(end_message(exited(How::not_started, 126), s),
            "cannot run 'frobnicate': cannot execute");
  EXPECT_EQ(end_message(exited(How::not_started, EACCES), s),
            "cannot run 'frobnicate': Permission denied");
  EXPECT_EQ(end_message(exited(How::signaled, 9, Limit::timeout, 5'000'000), s),
            "command ended: timeout (after 5.0 s)");
  EXPECT_EQ(end_message(exited(How::signaled, 9, Limit::output), s),
            "command ended: output limit reached");
  EXPECT_EQ(end_message(exited(How::signaled, 15, Limit::shutdown), s),
            "command ended: the server is shutting down");
  ExecResult failed;
  failed.error = "authentication failed";
  EXPECT_EQ(end_message(failed, s), "authentication failed");
  ExecResult piped;
  piped.local_signal = SIGPIPE;
  EXPECT_EQ(end_message(piped, s), "");  // whoever closed our stdout knows
  ExecResult hup;
  hup.local_signal = SIGHUP;
  EXPECT_EQ(end_message(hup, s), "disconnected on SIGHUP");
}

TEST(ResultJson, ExitedCommand) {
  auto r = exited(How::exited, 3, Limit::none, 12'345);
  const auto j = nlohmann::json::parse(result_json(r, "out\n", "err\n"));
  EXPECT_EQ(j["stdout"], "out\n");
  EXPECT_EQ(j["stderr"], "err\n");
  EXPECT_EQ(j["exit_code"], 3);
  EXPECT_TRUE(j["signal"].is_null());
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 12.345);
  EXPECT_TRUE(j["limit"].is_null());
  EXPECT_TRUE(j["error"].is_null());
  EXPECT_TRUE(j["start_error"].is_null());
  EXPECT_FALSE(j.contains("stdout_base64"));
}

TEST(ResultJson, Remote255IsNotAFailureToConnect) {
  const auto remote = nlohmann::json::parse(result_json(exited(How::exited, 255), "", ""));
  EXPECT_EQ(remote["exit_code"], 255);
  EXPECT_TRUE(remote["error"].is_null());
  ExecResult failed;
  failed.error = "cannot connect to tcp://127.0.0.1:1: Connection refused";
  const auto local = nlohmann::json::parse(result_json(failed, "", ""));
  EXPECT_TRUE(local["exit_code"].is_null());
  EXPECT_EQ(local["error"], failed.error);
}

TEST(ResultJson, SignalTimeoutAndNotStarted) {
  const auto sig =
      nlohmann::json::parse(result_json(exited(How::signaled, 9, Limit::timeout), "", ""));
  EXPECT_TRUE(sig["exit_code"].is_null());
  EXPECT_EQ(sig["signal"], 9);
  EXPECT_EQ(sig["limit"], "timeout");
  const auto ns = nlohmann::json::parse(result_json(exited(How::not_started, ENOENT), "", ""));
  EXPECT_EQ(ns["exit_code"], 127);
  EXPECT_TRUE(ns["error"].is_null());
  EXPECT_FALSE(ns["start_error"].is_null());
}

TEST(ResultJson, BytesThatAreNotUtf8AreKeptExactlyInBase64) {
  const std::string bin(
      "\xff\xfe"
      "a\0b",
      5);
  const std::string text = result_json(exited(How::exited, 0), bin, "ok");
  const auto j = nlohmann::json::parse(text);  // it is valid JSON (and so valid UTF-8)
  EXPECT_EQ(j["stdout_base64"], "//5hAGI=");
  EXPECT_EQ(j["stdout"], "\xEF\xBF\xBD\xEF\xBF\xBD" + std::string("a\0b", 3));
  EXPECT_FALSE(j.contains("stderr_base64"));
}

TEST(Utf8, ValidAndInvalid) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\n"));
  EXPECT_TRUE(is_valid_utf8("\xC3\xA9"));                  // é
  EXPECT_TRUE(is_valid_utf8("\xE4\xB8\xAD\xE6\x96\x87"));  // 中文
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));          // U+1F600
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));          // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));                 // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\x80"));             // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));             // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));         // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xE4\xB8"));                 // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));                     // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xD6\xD0\xCE\xC4"));         // GBK
}

TEST(Transcoder, GbkSplitAnywhereIsCarriedOver) {
  const std::string gbk = "a\xD6\xD0\xCE\xC4z";  // "a中文z"
  for (std::size_t cut = 0; cut <= gbk.size(); ++cut) {
    Transcoder t("gbk");
    std::string out = t.feed(as_bytes(std::string_view(gbk).substr(0, cut)));
    out += t.feed(as_bytes(std::string_view(gbk).substr(cut)));
    out += t.finish();
    EXPECT_EQ(out, "a\xE4\xB8\xAD\xE6\x96\x87z") << "cut at " << cut;
  }
}

TEST(Transcoder, OneByteAtATime) {
  const std::string gbk = "\xD6\xD0\xCE\xC4\n";
  Transcoder t("GBK");
  std::string out;
  for (char c : gbk)
    out += t.feed(as_bytes(std::string_view(&c, 1)));
  out += t.finish();
  EXPECT_EQ(out, "\xE4\xB8\xAD\xE6\x96\x87\n");
}

TEST(Transcoder, InvalidAndDanglingBytesBecomeReplacementCharacters) {
  Transcoder t("gbk");
  std::string out = t.feed(as_bytes("x\xFFy\xD6"));
  out += t.finish();
  EXPECT_EQ(out, "x\xEF\xBF\xBDy\xEF\xBF\xBD");
}

TEST(Transcoder, LargeChunkGrowsItsBuffer) {
  std::string gbk;
  for (int i = 0; i < 10000; ++i)
    gbk += "\xD6\xD0";
  Transcoder t("gbk");
  const std::string out = t.feed(as_bytes(gbk)) + t.finish();
  EXPECT_EQ(out.size(), 30000u);
}

TEST(Transcoder, UnknownEncodingThrows) {
  EXPECT_THROW(Transcoder("no-such-charset"), std::invalid_argument);
}

TEST(WriteAll, WritesEverythingEvenToANonBlockingPipe) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ASSERT_EQ(::fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
  const std::string data(1 << 20, 'x');  // far more than a pipe holds
  std::size_t got = 0;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(p[0], buf, sizeof buf)) > 0)
      got += static_cast<std::size_t>(n);
  });
  EXPECT_TRUE(write_all(p[1], as_bytes(data)));
  ::close(p[1]);
  reader.join();
  ::close(p[0]);
  EXPECT_EQ(got, data.size());
}

TEST(WriteAll, FalseWhenTheReaderIsGone) {
  std::signal(SIGPIPE, SIG_IGN);
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ::close(p[0]);
  EXPECT_FALSE(write_all(p[1], as_bytes("x")));
  ::close(p[1]);
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/duplex-token-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::setenv("XDG_CONFIG_HOME", dir_.c_str(), 1);
    ::unsetenv("DUPLEX_TOKEN");
  }
  void TearDown() override {
    std::filesystem::remove_all(dir_);
    ::unsetenv("XDG_CONFIG_HOME");
    ::unsetenv("DUPLEX_TOKEN");
  }
  std::string write_token(const std::string& path, const std::string& token) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << token << "\n";
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    return path;
  }
  std::string dir_;
};

TEST_F(TokenTest, NoFileNoEnvMeansEmptyToken) {
  std::string why;
  auto t = resolve_token("", why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(*t, "");
}

TEST_F(TokenTest, DefaultFileThenEnvThenExplicitFile) {
  write_token(dir_ + "/duplex/token", "from-default");
  std::string why;
  EXPECT_EQ(*resolve_token("", why), "from-default");
  ::setenv("DUPLEX_TOKEN", "from-env", 1);
  EXPECT_EQ(*resolve_token("", why), "from-env");
  const auto explicit_file = write_token(dir_ + "/other", "from-flag");
  EXPECT_EQ(*resolve_token(explicit_file, why), "from-flag");
}

TEST_F(TokenTest, MissingExplicitFileIsAnError) {
  std::string why;
  auto t = resolve_token(dir_ + "/absent", why);
  EXPECT_FALSE(t);
  EXPECT_NE(why.find("absent"), std::string::npos) << why;
}

}  // namespace
}  // namespace duplex::client
