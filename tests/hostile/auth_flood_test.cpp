// Before authentication, against an exec server (issue 7, proof 2, cases 3 and 5): a thousand
// slow-loris connections while honest clients authenticate in under 50 ms, and 10,000 wrong tokens
// from one address until the penalty box refuses it at accept while another address gets in.
// The clients speak the challenge-response themselves (support/exec_frames.hpp).
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hostile/hostile_fixture.hpp"
#include "integration/helpers.hpp"
#include "support/exec_frames.hpp"
#include "support/frames.hpp"
#include "support/process.hpp"
#include "support/socket_client.hpp"
#include "support/test_server.hpp"

namespace duplex::test {
namespace {

// The token `duplex serve --exec --token-file PATH` made.
std::string read_token(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// One honest exec client over plain loopback TCP: how long the AUTH exchange took (connect to
// AUTH_OK) and the whole command (connect to EXIT of `echo honest`), in ms.
struct HonestRun {
  double auth_ms = 0, total_ms = 0;
  bool ok = false;
  std::string detail;
};
HonestRun honest_exec(const std::string& url, const std::string& token) {
  HonestRun r;
  const auto t0 = Clock::now();
  try {
    ExecClient c(url);
    if (!c.authenticate(token)) {
      const auto& e = c.outcome().error;
      r.detail = e ? "authentication refused: ERROR " + std::to_string(e->code) + " " + e->text
                   : std::string("authentication refused: the server closed");
      return r;
    }
    r.auth_ms = ms_since(t0);
    ExecRequest req;
    req.argv = {"echo", "honest"};
    c.send(exec_start_frame(req));
    c.send_eof();
    const auto& out = c.finish();
    r.total_ms = ms_since(t0);
    r.ok = out.exit && out.exit->how == ExitPayload::exited && out.exit->code == 0 &&
           out.out == "honest\n";
    if (!r.ok) r.detail = "out '" + out.out + "' err '" + out.err + "'";
  } catch (const std::exception& e) {
    r.detail = e.what();
  }
  return r;
}

// Case 3. A thousand slow-loris connections before authentication: 700 trickle a HELLO a byte
// every 300 ms, 300 send a TLS record header and fall silent. Honest clients authenticate in under
// 50 ms meanwhile; every loris is closed at --auth-timeout (2 s), not before and not much after,
// however it trickles; then the fds are back.
TEST(Hostile, ThousandSlowLorisBeforeAuth) {
  const NoQuarantine no_quarantine;
  TempDir dir;
  const std::string token_file = dir.file("token");
  // --max-unauthenticated stays at its default (1024): the thousand fit under it, so what closes
  // them is the deadline, not the early drop.
  TestServer server({"--exec", "--token-file", token_file, "--tls", "--tls-key",
                     dir.file("key.pem"), "--auth-timeout", "2", "--threads", "2"});
  const std::string token = read_token(token_file);
  ASSERT_EQ(token.size(), 64u);
  const pid_t pid = server.pid();
  for (int i = 0; i < 5; ++i) {
    const auto warm = honest_exec(server.url(), token);
    ASSERT_TRUE(warm.ok) << warm.detail;
    ASSERT_TRUE(serves_raw_over_tls("tls://127.0.0.1:" + std::to_string(server.port())))
        << server.stderr_text();
  }
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 1 && children_of(pid).empty(); }));
  const Usage baseline = usage_of(pid);

  constexpr std::size_t kLoris = 1000, kTricklers = 700;
  // A HELLO announcing 200 bytes (under the 16 KiB limit before auth): it never completes in time.
  const std::string hello_start = std::string("\0DPX", 4) + frame_header(msg::hello, 200);
  Crowd loris(server.port(), kLoris);
  for (std::size_t i = 0; i < kLoris; ++i)
    loris.send_to(i, i < kTricklers ? hello_start : std::string("\x16\x03\x01\x02\x00", 5));

  std::vector<double> auth_ms, total_ms;
  const auto give_up = Clock::now() + Ms(2000 + 500 + 5000 * kSlowdown);
  for (int round = 0; loris.closed_count() < kLoris && Clock::now() < give_up; ++round) {
    const auto next = Clock::now() + Ms(300);
    for (std::size_t i = 0; i < kTricklers; ++i)
      loris.send_to(i, "x");
    if (round < 5) {  // within the first 1.5 s, while every loris still holds its place
      const auto h = honest_exec(server.url(), token);
      EXPECT_TRUE(h.ok) << "round " << round << ": " << h.detail;
      auth_ms.push_back(h.auth_ms);
      total_ms.push_back(h.total_ms);
      EXPECT_TRUE(serves_raw_over_tls("tls://127.0.0.1:" + std::to_string(server.port()),
                                      "honest over tls"));
    }
    while (Clock::now() < next)
      loris.poll(std::chrono::duration_cast<Ms>(next - Clock::now()));
  }
  const double auth = median(auth_ms), total = median(total_ms);
  std::printf(
      "honest client with %zu loris: AUTH %.1f ms, whole command %.1f ms (medians of %zu)\n",
      kLoris, auth, total, auth_ms.size());
  // The number, for the AUTH exchange; a sanitizer build gets its slowdown.
  EXPECT_LT(auth, 50.0 * kSlowdown);
  ASSERT_EQ(loris.closed_count(), kLoris) << "loris still open after the deadline";
  double earliest = 1e9, latest = 0;
  for (std::size_t i = 0; i < kLoris; ++i) {
    const double held =
        std::chrono::duration<double, std::milli>(*loris.closed_at(i) - loris.opened(i)).count();
    earliest = std::min(earliest, held);
    latest = std::max(latest, held);
  }
  std::printf("loris held %.0f .. %.0f ms (deadline 2000 ms)\n", earliest, latest);
  // The deadline counts from accept, which follows our connect: none goes early. The sweep runs
  // every 500 ms (a quarter of the deadline); the rest is the server's work under load.
  EXPECT_GE(earliest, 1900.0);
  EXPECT_LE(latest, 2000.0 + 500.0 + 1000.0 * kSlowdown);
  EXPECT_TRUE(fds_back(pid, baseline, 1));
  EXPECT_TRUE(eventually([&] { return children_of(pid).empty(); }));
  const auto after = honest_exec(server.url(), token);
  EXPECT_TRUE(after.ok) << after.detail;
  // Memory: each loris held at most a read chunk (Limits::read_chunk, 64 KiB, while it had bytes
  // to process) and its session's state (a few KiB), a TLS one also an OpenSSL object mid-handshake
  // (its record buffers and state, under 128 KiB): that is the bound for all thousand at once.
  const long after_first = rss_kib(pid);
  std::printf("RSS %ld KiB before the loris, %ld KiB after\n", baseline.rss_kib, after_first);
  EXPECT_LT(
      after_first - baseline.rss_kib,
      kShadow * (static_cast<long>(kLoris) * 72 + static_cast<long>(kLoris - kTricklers) * 128));
  // More crowds reuse what the first left in the allocator. It settles over a few rounds, so a
  // late round is compared with the one before it: a leak of 4 KiB per loris would show there as
  // it would in every round. Measured here over eight crowds: glibc +43, +9.1, +2.1, +1.5, +0.1,
  // +0.1, 0, 0 MiB (another run saw +4.1 at the third, since sessions hold a little more state);
  // ASan's allocator, without its quarantine, +65, +4.1, +2.6, +1.2, +0.2, +1.6, +0.1, +1.2 MiB.
  // So the fifth is compared with the fourth.
  constexpr int kRounds = 4;
  long previous = after_first, last = after_first;
  for (int round = 1; round <= kRounds; ++round) {
    {
      Crowd again(server.port(), kLoris);
      for (std::size_t i = 0; i < kLoris; ++i)
        again.send_to(i, i < kTricklers ? hello_start : std::string("\x16\x03\x01\x02\x00", 5));
      ASSERT_TRUE(again.wait_all_closed(Ms(2000 + 500 + 5000 * kSlowdown)));
    }
    EXPECT_TRUE(fds_back(pid, baseline, 1));
    previous = last;
    last = rss_kib(pid);
    std::printf("RSS after crowd %d: %ld KiB\n", round + 1, last);
  }
  EXPECT_LT(last - previous, kShadow * 4 * 1024);
}

// One wrong-token attempt from `source`: HELLO, then (if welcomed) AUTH_START, the challenge,
// a proof made with the wrong token. What the server answered.
enum class Attempt { challenged_and_refused, penalised, closed_silently, other };
Attempt wrong_token_attempt(int port, const std::string& source, const std::string& wrong,
                            std::string* text) {
  const int fd = connect_tcp(port, source);
  FrameReader reader(fd);
  Attempt out = Attempt::other;
  try {
    send_bytes(fd, preface_and_hello("hostile"));
    auto f = reader.next(Ms(10'000));
    if (!f) {
      out = Attempt::closed_silently;
    } else if (f->type == msg::error) {
      const auto e = parse_error(f->payload);
      if (e && e->code == err::penalised) out = Attempt::penalised;
      if (e && text) *text = e->text;
    } else if (f->type == msg::welcome) {
      const std::string nc = auth::nonce();
      send_bytes(fd, auth::start_frame(nc));
      f = reader.next(Ms(10'000));
      if (f && f->type == msg::auth_challenge && f->payload.size() == 64) {
        const std::string k = auth::key(wrong);
        send_bytes(fd, auth::proof_frame(auth::client_proof(k, auth::zero_binding(), nc,
                                                            f->payload.substr(0, 32))));
        f = reader.next(Ms(10'000));
        const auto e = f && f->type == msg::error ? parse_error(f->payload) : std::nullopt;
        if (e && e->code == err::auth_failed) out = Attempt::challenged_and_refused;
      } else if (f && f->type == msg::error) {
        const auto e = parse_error(f->payload);
        if (e && e->code == err::penalised) out = Attempt::penalised;
      }
    }
  } catch (const std::exception&) {
    out = Attempt::other;
  }
  ::close(fd);
  return out;
}

// Case 5. 10,000 wrong tokens from 127.0.0.2, one short connection each: after
// --max-auth-failures the address is refused at accept (ERROR penalised, before any challenge),
// cheaply: the server's CPU per attempt and its memory stay small, its log does not grow with the
// attempts, the right token from 127.0.0.2 is refused too while the penalty runs, and an honest
// client from 127.0.0.1 gets in during and after.
TEST(Hostile, TenThousandWrongTokensFromOneAddress) {
  const NoQuarantine no_quarantine;
  TempDir dir;
  const std::string token_file = dir.file("token");
  constexpr int kMaxFailures = 10;
  TestServer server({"--exec", "--token-file", token_file, "--max-auth-failures",
                     std::to_string(kMaxFailures), "--penalty", "300", "--threads", "2"});
  const std::string token = read_token(token_file);
  std::string wrong = token;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  const pid_t pid = server.pid();
  for (int i = 0; i < 5; ++i) {
    const auto h = honest_exec(server.url(), token);
    ASSERT_TRUE(h.ok) << h.detail;
  }
  ASSERT_TRUE(eventually([&] { return socket_fd_count(pid) == 1 && children_of(pid).empty(); }));
  const Usage baseline = usage_of(pid);
  const std::size_t log_before = line_count(server.stderr_text());

  // The number; under ThreadSanitizer each accept and refusal runs ~10x slower and the
  // case would pass a minute on two cores, so it makes 2,000 there (the box is the same after 11).
  const int kAttempts = kTsan ? 2000 : 10'000;
  int challenged = 0, penalised = 0, silent = 0, other = 0, first_penalised = -1;
  std::string refusal_text;
  const auto t0 = Clock::now();
  for (int i = 0; i < kAttempts; ++i) {
    switch (wrong_token_attempt(server.port(), "127.0.0.2", wrong, &refusal_text)) {
      case Attempt::challenged_and_refused: ++challenged; break;
      case Attempt::penalised:
        if (first_penalised < 0) first_penalised = i;
        ++penalised;
        break;
      case Attempt::closed_silently: ++silent; break;
      case Attempt::other: ++other; break;
    }
    if (i == kAttempts / 2) {
      const auto h = honest_exec(server.url(), token);
      EXPECT_TRUE(h.ok) << "from 127.0.0.1 during the attack: " << h.detail;
    }
  }
  const double wall = ms_since(t0) / 1000.0;
  const Usage after = usage_of(pid);
  const double cpu = after.cpu_s - baseline.cpu_s;
  std::printf(
      "%d attempts in %.2f s: %d challenged, %d penalised (first at %d), %d closed "
      "silently, %d other; server CPU %.3f s (%.0f us each)\n",
      kAttempts, wall, challenged, penalised, first_penalised, silent, other, cpu,
      cpu / kAttempts * 1e6);
  EXPECT_EQ(challenged, kMaxFailures);
  EXPECT_EQ(first_penalised, kMaxFailures);
  EXPECT_EQ(penalised + silent, kAttempts - kMaxFailures);
  EXPECT_GT(penalised, 0);
  EXPECT_EQ(other, 0);
  EXPECT_NE(refusal_text.find("too many failed authentications from 127.0.0.2"), std::string::npos)
      << refusal_text;
  // A refusal at accept is an accept, a 64-byte read and a small write: tens of microseconds.
  // 300 us each (3 s for 10,000) leaves room for a loaded machine; sanitizers scale it.
  EXPECT_LT(cpu / kAttempts, 300e-6 * kSlowdown);
  // The box holds one address; refusals are logged rate-limited, not one line each.
  EXPECT_LT(after.rss_kib - baseline.rss_kib, kShadow * 8 * 1024) << after << " vs " << baseline;
  EXPECT_LT(line_count(server.stderr_text()) - log_before, 200u) << "the log grows per attempt";

  // The right token from the penalised address is refused too: the box is per address.
  const int fd = connect_tcp(server.port(), "127.0.0.2");
  send_bytes(fd, preface_and_hello("hostile"));
  FrameReader reader(fd);
  const auto f = reader.next(Ms(10'000));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->type, msg::error);
  const auto e = parse_error(f->payload);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, err::penalised);
  ::close(fd);
  // Another address still gets in, with our own client too.
  const auto h = honest_exec(server.url(), token);
  EXPECT_TRUE(h.ok) << h.detail;
  const auto r = run(
      {duplex_bin(), "exec", "--token-file", token_file, server.url(), "--", "echo", "still in"});
  EXPECT_EQ(r.status, (ExitStatus{true, 0})) << r.err;
  EXPECT_EQ(r.out, "still in\n");
  EXPECT_TRUE(fds_back(pid, baseline, 1));
  EXPECT_TRUE(eventually([&] { return children_of(pid).empty(); }));
}

}  // namespace
}  // namespace duplex::test
