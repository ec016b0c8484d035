// SIGHUP with --config: the file is read again; listeners are added and closed, limits apply to
// new connections, open sessions go on; a broken file is one line and the old configuration stays.
#include <array>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

constexpr ExitStatus kOk{true, 0};

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());  // as editors save: the reader never sees half a file
}

// One round trip of the tutorial's protocol on an open connection.
std::string round_trip(SocketClient& c, const std::string& line) {
  c.send_all(line);
  return c.recv_exact(line.size());
}

std::size_t count(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
    ++n;
  return n;
}

TEST(Reload, AddsAListenerAndLowersALimitWhileOpenSessionsGoOn) {
  TempDir dir;
  const std::string a = "unix://" + dir.file("a.sock");
  const std::string b = "unix://" + dir.file("b.sock");
  const std::string cfg = dir.file("serve.toml");
  write_file(cfg, fmt::format("listen = [\"{}\"]\nmax-connections = 100\n"
                              "reserved-connections = 0\n",
                              a));
  TestServer server({"--config", cfg, "--threads", "2"}, 1);
  SocketClient old_session(a);
  ASSERT_EQ(round_trip(old_session, "before\n"), "BEFORE\n");

  write_file(cfg, fmt::format("listen = [\"{}\", \"{}\"]\nmax-connections = 2\n"
                              "reserved-connections = 0\n",
                              a, b));
  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("reload: done")) << server.stderr_text();
  const std::string log = server.stderr_text();
  EXPECT_NE(log.find("reload: listening on " + b), std::string::npos) << log;
  EXPECT_NE(log.find("reload: max-connections 100 -> 2"), std::string::npos) << log;

  // The new listener answers; the session opened before the reload goes on.
  SocketClient on_b(b);
  EXPECT_EQ(round_trip(on_b, "new listener\n"), "NEW LISTENER\n");
  EXPECT_EQ(round_trip(old_session, "still here\n"), "STILL HERE\n");
  // Two are open: the new --max-connections 2 refuses a third.
  SocketClient third(a);
  EXPECT_TRUE(third.wait_closed()) << "a third connection was served over max-connections 2";
  EXPECT_EQ(round_trip(old_session, "and on\n"), "AND ON\n");
  EXPECT_EQ(server.stop(), kOk);
}

TEST(Reload, ARemovedListenerClosesButItsSessionsGoOn) {
  TempDir dir;
  const std::string a = "unix://" + dir.file("a.sock");
  const std::string b = "unix://" + dir.file("b.sock");
  const std::string cfg = dir.file("serve.toml");
  write_file(cfg, fmt::format("listen = [\"{}\", \"{}\"]\n", a, b));
  TestServer server({"--config", cfg}, 2);
  SocketClient on_b(b);
  ASSERT_EQ(round_trip(on_b, "x\n"), "X\n");

  write_file(cfg, fmt::format("listen = [\"{}\"]\n", a));
  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("reload: done")) << server.stderr_text();
  EXPECT_TRUE(server.wait_stderr("reload: no longer listening on " + b)) << server.stderr_text();
  EXPECT_THROW(SocketClient{b}, std::runtime_error) << "the removed listener still accepts";
  EXPECT_EQ(round_trip(on_b, "open session\n"), "OPEN SESSION\n");
  SocketClient on_a(a);
  EXPECT_EQ(round_trip(on_a, "kept\n"), "KEPT\n");
  EXPECT_EQ(server.stop(), kOk);
}

TEST(Reload, ABrokenFileIsOneLineAndTheRunningConfigurationStays) {
  TempDir dir;
  const std::string a = "unix://" + dir.file("a.sock");
  const std::string b = "unix://" + dir.file("b.sock");
  const std::string cfg = dir.file("serve.toml");
  write_file(cfg, fmt::format("listen = [\"{}\"]\n", a));
  TestServer server({"--config", cfg}, 1);

  // A valid new listener beside a bad value: nothing of it is taken.
  write_file(cfg, fmt::format("listen = [\"{}\", \"{}\"]\nmax-connections = \"lots\"\n", a, b));
  server.process().signal(SIGHUP);
  ASSERT_TRUE(server.wait_stderr("keeping the running configuration")) << server.stderr_text();
  const std::string log = server.stderr_text();
  const auto at = log.find("reload: ");
  ASSERT_NE(at, std::string::npos);
  const std::string line = log.substr(log.rfind('\n', log.find("keeping the running")) + 1);
  EXPECT_NE(line.find(cfg + " line 2"), std::string::npos) << line;
  EXPECT_NE(line.find("max-connections"), std::string::npos) << line;
  EXPECT_THROW(SocketClient{b}, std::runtime_error);
  SocketClient on_a(a);
  EXPECT_EQ(round_trip(on_a, "alive\n"), "ALIVE\n");

  // A listener that cannot open (its directory does not exist) leaves everything as it was too.
  write_file(cfg, fmt::format("listen = [\"{}\", \"unix://{}\"]\nmax-connections = 7\n", a,
                              dir.file("missing/c.sock")));
  server.process().signal(SIGHUP);
  EXPECT_TRUE(server.wait_stderr("cannot listen on unix://" + dir.file("missing/c.sock")))
      << server.stderr_text();
  EXPECT_EQ(server.stderr_text().find("max-connections 10000 -> 7"), std::string::npos);
  EXPECT_EQ(round_trip(on_a, "still\n"), "STILL\n");
  EXPECT_EQ(server.stop(), kOk);
}

// Many round trips on open connections while the file changes back and forth: none is lost.
TEST(Reload, ReloadsUnderLoadDropNoSession) {
  TempDir dir;
  const std::string a = "unix://" + dir.file("a.sock");
  const std::string cfg = dir.file("serve.toml");
  const auto version = [&](int i) {
    return fmt::format("listen = [\"{}\"]\nmax-frame = {}\nidle-timeout = {}\n", a,
                       i % 2 ? 65536 : 131072, i % 2 ? 60 : 120);
  };
  write_file(cfg, version(0));
  TestServer server({"--config", cfg, "--threads", "2"}, 1);
  constexpr std::size_t kClients = 4;
  constexpr int kTrips = 300;
  constexpr int kReloads = 8;
  std::array<int, kClients> answered{};
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < kClients; ++c)
    clients.emplace_back([&, c] {
      try {
        SocketClient s(a);
        for (int i = 0; i < kTrips; ++i) {
          const std::string line = fmt::format("client {} trip {}\n", c, i);
          std::string upper = line;
          for (auto& ch : upper)
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
          if (round_trip(s, line) != upper) return;
          ++answered[c];
        }
      } catch (const std::exception&) {  // counted short below
      }
    });
  for (int i = 1; i <= kReloads; ++i) {
    write_file(cfg, version(i));
    server.process().signal(SIGHUP);
    const bool done = eventually(
        [&] { return count(server.stderr_text(), "reload: done") >= static_cast<std::size_t>(i); },
        10s);
    EXPECT_TRUE(done) << server.stderr_text();
    if (!done) break;
  }
  for (auto& t : clients)
    t.join();
  for (std::size_t c = 0; c < kClients; ++c)
    EXPECT_EQ(answered[c], kTrips) << "client " << c;
  SocketClient after(a);
  EXPECT_EQ(round_trip(after, "after\n"), "AFTER\n");
  EXPECT_EQ(server.stop(), kOk);
}

}  // namespace
}  // namespace duplex::test
