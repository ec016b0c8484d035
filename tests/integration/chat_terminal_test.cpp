// `duplex chat` on a terminal (a pty the test opens): history written as lines are entered,
// Ctrl-D and Ctrl-C, a server that leaves while someone types, editing with stdout piped.
#include <termios.h>

#include <csignal>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "exec/pty_process.hpp"
#include "support/process.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr ExitStatus kOk{true, 0};
constexpr ExitStatus kFailure{true, 1};

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

bool cooked(const termios& t) {
  return (t.c_lflag & ICANON) != 0 && (t.c_lflag & ECHO) != 0;
}

TEST(ChatTerminal, HistoryIsWrittenAsEachLineIsEnteredAndCtrlCRestoresTheTerminal) {
  TestServer server;
  TempDir state;
  PtyProcess chat({duplex_bin(), "chat", server.url()}, {"XDG_STATE_HOME=" + state.path().string()},
                  24, 80);
  ASSERT_TRUE(chat.wait_for("> "));
  chat.type("first line\r");
  ASSERT_TRUE(chat.wait_for("FIRST LINE")) << chat.screen();
  chat.type("second\r");
  ASSERT_TRUE(chat.wait_for("SECOND")) << chat.screen();
  const std::string hist = state.file("duplex/chat_history");
  // On disk while the chat still runs: a Ctrl-C (or a crash) now loses none of it.
  EXPECT_TRUE(eventually([&] { return read_file(hist).find("second") != std::string::npos; }))
      << read_file(hist);
  EXPECT_NE(read_file(hist).find("first\\040line"), std::string::npos) << read_file(hist);
  chat.type("half typed");
  ASSERT_TRUE(chat.wait_for("half typed"));
  chat.type("\x03");  // Ctrl-C
  const auto st = chat.wait();
  ASSERT_TRUE(st.has_value()) << chat.screen();
  EXPECT_EQ(*st, (ExitStatus{true, 128 + SIGINT}));
  EXPECT_TRUE(cooked(chat.settings())) << "the terminal was left in editing mode";
  // The up arrow brings back a line from an earlier chat.
  PtyProcess again({duplex_bin(), "chat", server.url()},
                   {"XDG_STATE_HOME=" + state.path().string()}, 24, 80);
  ASSERT_TRUE(again.wait_for("> "));
  again.type("\x1b[A\r");
  ASSERT_TRUE(again.wait_for("SECOND")) << again.screen();
  ASSERT_TRUE(again.wait_for("> ", std::chrono::seconds(10), again.screen().find("SECOND")));
  again.type("\x04");
  EXPECT_EQ(again.wait(), kOk);
}

TEST(ChatTerminal, CtrlDEndsWithANewline) {
  TestServer server;
  TempDir state;
  PtyProcess chat({duplex_bin(), "chat", server.url()}, {"XDG_STATE_HOME=" + state.path().string()},
                  24, 80);
  ASSERT_TRUE(chat.wait_for("> "));
  chat.type("\x04");
  const auto st = chat.wait();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, kOk);
  const std::string& screen = chat.screen();
  ASSERT_GE(screen.size(), 2u);
  EXPECT_EQ(screen.substr(screen.size() - 2), "\r\n") << screen;
  EXPECT_TRUE(cooked(chat.settings()));
}

TEST(ChatTerminal, AServerThatGoesAwayIsNoticedWhileSomeoneTypes) {
  auto server = std::make_unique<TestServer>();
  TempDir state;
  PtyProcess chat({duplex_bin(), "chat", server->url()},
                  {"XDG_STATE_HOME=" + state.path().string()}, 24, 80);
  ASSERT_TRUE(chat.wait_for("> "));
  chat.type("hello\r");
  ASSERT_TRUE(chat.wait_for("HELLO"));
  // Typed only once the editor is back (its prompt after the reply): text typed ahead is echoed
  // by the terminal first and drawn again by the editor, as in a shell, and the editor may not
  // have drawn all of it yet when the server goes.
  ASSERT_TRUE(chat.wait_for("> ", std::chrono::seconds(10), chat.screen().find("HELLO")));
  chat.type("not finish");
  ASSERT_TRUE(chat.wait_for("> not finish"));
  EXPECT_EQ(server->stop(), kOk);
  const auto st = chat.wait(std::chrono::seconds(20));
  ASSERT_TRUE(st.has_value()) << "the chat waited for a line before noticing: " << chat.screen();
  EXPECT_EQ(*st, kFailure);
  EXPECT_NE(chat.screen().find("not finish\r\nduplex: "), std::string::npos) << chat.screen();
  EXPECT_NE(chat.screen().find("closed the connection"), std::string::npos) << chat.screen();
  EXPECT_TRUE(cooked(chat.settings()));
}

TEST(ChatTerminal, StdoutPipedKeepsEditingAndTheLogHoldsOnlyReplies) {
  TestServer server;
  TempDir dir;
  const std::string log = dir.file("log");
  // `duplex chat | tee log`, in effect: stdin and stderr the terminal, stdout a file.
  PtyProcess chat(
      {"/bin/sh", "-c", "exec \"$0\" chat \"$1\" > \"$2\"", duplex_bin(), server.url(), log},
      {"XDG_STATE_HOME=" + dir.path().string()}, 24, 80);
  ASSERT_TRUE(chat.wait_for("> "));
  chat.type("abc");
  chat.type("\x1b[D\x1b[DX\r");  // two left arrows, insert: the line is edited, not "abc^[[D..."
  ASSERT_TRUE(eventually([&] { return read_file(log) == "AXBC\n"; })) << read_file(log);
  chat.type("\x04");
  EXPECT_EQ(chat.wait(), kOk);
  EXPECT_EQ(read_file(log), "AXBC\n");
}

}  // namespace
}  // namespace duplex::test
