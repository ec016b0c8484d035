// Tests for wire/messages.hpp: exact layouts, round trips, and strict rejection of bad payloads.
#include "duplex/wire/messages.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace duplex::wire {
namespace {

// Maps each message struct to its frame type and decoder, so tests can be written once.
template <class M>
struct Codec;
template <>
struct Codec<Hello> {
  static constexpr MsgType type = MsgType::hello;
  static Result<Hello> decode(ByteView p) { return decode_hello(p); }
};
template <>
struct Codec<Welcome> {
  static constexpr MsgType type = MsgType::welcome;
  static Result<Welcome> decode(ByteView p) { return decode_welcome(p); }
};
template <>
struct Codec<Error> {
  static constexpr MsgType type = MsgType::error;
  static Result<Error> decode(ByteView p) { return decode_error(p); }
};
template <>
struct Codec<Auth> {
  static constexpr MsgType type = MsgType::auth;
  static Result<Auth> decode(ByteView p) { return decode_auth(p); }
};
template <>
struct Codec<AuthStart> {
  static constexpr MsgType type = MsgType::auth_start;
  static Result<AuthStart> decode(ByteView p) { return decode_auth_start(p); }
};
template <>
struct Codec<AuthChallenge> {
  static constexpr MsgType type = MsgType::auth_challenge;
  static Result<AuthChallenge> decode(ByteView p) { return decode_auth_challenge(p); }
};
template <>
struct Codec<AuthProof> {
  static constexpr MsgType type = MsgType::auth_proof;
  static Result<AuthProof> decode(ByteView p) { return decode_auth_proof(p); }
};
template <>
struct Codec<AuthOk> {
  static constexpr MsgType type = MsgType::auth_ok;
  static Result<AuthOk> decode(ByteView p) { return decode_auth_ok(p); }
};
template <>
struct Codec<ExecStart> {
  static constexpr MsgType type = MsgType::exec_start;
  static Result<ExecStart> decode(ByteView p) { return decode_exec_start(p); }
};
template <>
struct Codec<Signal> {
  static constexpr MsgType type = MsgType::signal;
  static Result<Signal> decode(ByteView p) { return decode_signal(p); }
};
template <>
struct Codec<WindowSize> {
  static constexpr MsgType type = MsgType::window_size;
  static Result<WindowSize> decode(ByteView p) { return decode_window_size(p); }
};
template <>
struct Codec<StdinWindow> {
  static constexpr MsgType type = MsgType::stdin_window;
  static Result<StdinWindow> decode(ByteView p) { return decode_stdin_window(p); }
};
template <>
struct Codec<StatsRequest> {
  static constexpr MsgType type = MsgType::stats_request;
  static Result<StatsRequest> decode(ByteView p) { return decode_stats_request(p); }
};
template <>
struct Codec<Exit> {
  static constexpr MsgType type = MsgType::exit;
  static Result<Exit> decode(ByteView p) { return decode_exit(p); }
};

Bytes bytes_of(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v)
    b.push_back(static_cast<std::byte>(x));
  return b;
}

// Encodes m, checks the frame header, and returns the payload.
template <class M>
Bytes payload_of(const M& m) {
  Bytes f;
  encode(m, f);
  const Decoded d = decode_frame(f, std::numeric_limits<std::uint32_t>::max());
  EXPECT_EQ(d.status, DecodeStatus::frame);
  EXPECT_EQ(d.type, Codec<M>::type);
  EXPECT_EQ(d.consumed, f.size());
  return {d.payload.begin(), d.payload.end()};
}

template <class M>
void expect_round_trip(const M& m) {
  const Bytes p = payload_of(m);
  const Result<M> r = Codec<M>::decode(p);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, m);
}

template <class M>
void expect_bad(ByteView p) {
  const Result<M> r = Codec<M>::decode(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), errc::bad_message);
}

// Every strict prefix of a valid payload is truncated; one extra byte is trailing garbage.
template <class M>
void expect_strict(const M& m) {
  const Bytes p = payload_of(m);
  for (std::size_t n = 0; n < p.size(); ++n) {
    SCOPED_TRACE("prefix " + std::to_string(n) + " of " + std::to_string(p.size()));
    expect_bad<M>(ByteView(p).first(n));
  }
  for (int extra : {0x00, 0xff}) {
    Bytes longer = p;
    longer.push_back(static_cast<std::byte>(extra));
    SCOPED_TRACE("trailing byte");
    expect_bad<M>(longer);
  }
}

// A representative ExecStart that exercises every field.
ExecStart full_exec() {
  ExecStart m;
  m.argv = {"/bin/printf", "%s\\n", "two words", "", "\xe4\xb8\xad"};
  m.env = {{"LANG", "C.UTF-8"}, {"EMPTY", ""}, {"X", "a=b"}};
  m.cwd = "/tmp";
  m.timeout_ms = 30'000;
  m.pty = true;
  m.rows = 24;
  m.cols = 80;
  m.term = "xterm-256color";
  return m;
}

// 32 bytes counting up from `first`: a recognisable nonce or proof.
AuthBlock block(int first) {
  AuthBlock b{};
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<std::byte>(first + static_cast<int>(i));
  return b;
}

const std::string kBinary("\x00\x01\xff\x7f tok\x00en", 11);

// ----- exact layouts (the hex examples in docs/PROTOCOL.md) -----

TEST(MessagesLayout, Hello) {
  Bytes f;
  encode(Hello{1, 1, "duplex/0.1"}, f);
  EXPECT_EQ(f, bytes_of({0, 0, 0, 18, 0x01, 0,  // header
                         0, 1, 0, 1,            // min, max
                         0, 0, 0, 10, 'd',  'u', 'p', 'l', 'e', 'x', '/', '0', '.', '1'}));
}

TEST(MessagesLayout, Welcome) {
  Bytes f;
  encode(Welcome{1, 1u << 20, "duplex/0.1"}, f);
  EXPECT_EQ(f, bytes_of({0, 0, 0, 20,   0x02, 0,  // header
                         0, 1, 0, 0x10, 0,    0,  // version, max_frame
                         0, 0, 0, 10,   'd',  'u', 'p', 'l', 'e', 'x', '/', '0', '.', '1'}));
}

TEST(MessagesLayout, Error) {
  Bytes f;
  encode(Error{16, "no"}, f);
  EXPECT_EQ(f, bytes_of({0, 0, 0, 8, 0x03, 0, 0, 16, 0, 0, 0, 2, 'n', 'o'}));
}

TEST(MessagesLayout, AuthAndAuthOk) {
  Bytes f;
  encode(Auth{"k"}, f);
  encode(AuthOk{"", 0x01020304}, f);
  EXPECT_EQ(f, bytes_of({0, 0, 0, 5, 0x08, 0, 0, 0, 0, 1, 'k',  //
                         0, 0, 0, 8, 0x09, 0, 0, 0, 0, 0, 1,   2, 3, 4}));
}

TEST(MessagesLayout, AuthStartChallengeProofAreBareBlocks) {
  Bytes f;
  encode(AuthStart{block(0)}, f);
  ASSERT_EQ(f.size(), kHeaderSize + 32);
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 6), bytes_of({0, 0, 0, 32, 0x0A, 0}));
  EXPECT_EQ(f[6], std::byte{0});
  EXPECT_EQ(f.back(), std::byte{31});

  const Bytes c = payload_of(AuthChallenge{block(0x40), block(0x80)});
  ASSERT_EQ(c.size(), 64u);
  EXPECT_EQ(c[0], std::byte{0x40});   // the server nonce first
  EXPECT_EQ(c[32], std::byte{0x80});  // then the server proof

  Bytes p;
  encode(AuthProof{block(7)}, p);
  EXPECT_EQ(Bytes(p.begin(), p.begin() + 6), bytes_of({0, 0, 0, 32, 0x0C, 0}));
  EXPECT_EQ(p[6], std::byte{7});
}

TEST(MessagesLayout, ExecStart) {
  ExecStart m;
  m.argv = {"ls", "-l"};
  m.env = {{"A", "1"}};
  m.cwd = "/";
  m.timeout_ms = 0x01020304;
  m.shell = false;
  m.pty = true;
  m.rows = 0x0018;
  m.cols = 0x0050;
  m.term = "vt";
  EXPECT_EQ(payload_of(m),
            bytes_of({0x02,                                                         // flags: pty
                      0,    2,                                                      // argc
                      0,    0,    0, 2,    'l', 's', 0, 0, 0, 2,   '-', 'l', 0, 1,  // envc
                      0,    0,    0, 1,    'A', 0,   0, 0, 1, '1', 0,   0,   0, 1, '/',  // cwd
                      1,    2,    3, 4,                  // timeout_ms
                      0,    0x18, 0, 0x50,               // rows, cols
                      0,    0,    0, 2,    'v', 't'}));  // term
  m.pty = false;
  m.shell = true;
  m.argv = {"x"};
  EXPECT_EQ(payload_of(m)[0], std::byte{0x01});
}

TEST(MessagesLayout, SignalWindowSizeExit) {
  EXPECT_EQ(payload_of(Signal{15}), bytes_of({0, 0, 0, 15}));
  EXPECT_EQ(payload_of(WindowSize{0x0102, 0x0304}), bytes_of({1, 2, 3, 4}));
  Exit e;
  e.how = Exit::How::signaled;
  e.code = -2;
  e.duration_us = 0x0102030405060708ULL;
  e.limit = Exit::Limit::timeout;
  EXPECT_EQ(payload_of(e), bytes_of({1, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 1}));
}

TEST(MessagesLayout, LongPayloadLengthIsPatchedInAllFourBytes) {
  const std::string big(0x012345, 'a');
  Bytes f;
  encode(AuthOk{big, 0}, f);
  const std::uint32_t want = 4 + 0x012345 + 4;
  EXPECT_EQ(f.size(), kHeaderSize + want);
  EXPECT_EQ(Bytes(f.begin(), f.begin() + 6),
            bytes_of({0, static_cast<int>(want >> 16), static_cast<int>((want >> 8) & 0xff),
                      static_cast<int>(want & 0xff), 0x09, 0}));
  expect_round_trip(AuthOk{big, 0});
}

TEST(MessagesLayout, EncodeAppendsFramesInSequence) {
  Bytes stream{std::byte{0xaa}};
  encode(Hello{}, stream);
  encode(Signal{2}, stream);
  encode(Exit{}, stream);
  ByteView rest = ByteView(stream).subspan(1);
  const MsgType want[] = {MsgType::hello, MsgType::signal, MsgType::exit};
  for (MsgType t : want) {
    const Decoded d = decode_frame(rest, 1u << 20);
    ASSERT_EQ(d.status, DecodeStatus::frame);
    EXPECT_EQ(d.type, t);
    rest = rest.subspan(d.consumed);
  }
  EXPECT_TRUE(rest.empty());
  EXPECT_EQ(stream[0], std::byte{0xaa});
}

// ----- round trips -----

TEST(MessagesRoundTrip, Hello) {
  expect_round_trip(Hello{});
  expect_round_trip(Hello{1, 1, "duplex/0.1"});
  expect_round_trip(Hello{0, 0xffff, ""});
  expect_round_trip(Hello{3, 2, kBinary});  // an empty range still parses; the server refuses it
}

TEST(MessagesRoundTrip, Welcome) {
  expect_round_trip(Welcome{});
  expect_round_trip(Welcome{1, 1u << 20, "duplex/0.1 (linux)"});
  expect_round_trip(Welcome{0xffff, 0xffffffffu, kBinary});
}

TEST(MessagesRoundTrip, Error) {
  expect_round_trip(Error{});
  expect_round_trip(Error{static_cast<std::uint16_t>(errc::auth_failed), "authentication failed"});
  expect_round_trip(Error{0xffff, kBinary});  // codes unknown to us still decode
}

TEST(MessagesRoundTrip, AuthTokenIsOpaqueBytes) {
  expect_round_trip(Auth{});
  expect_round_trip(Auth{kBinary});
  std::string all;
  for (int c = 0; c < 256; ++c)
    all.push_back(static_cast<char>(c));
  expect_round_trip(Auth{all});
}

TEST(MessagesRoundTrip, AuthOk) {
  expect_round_trip(AuthOk{});
  expect_round_trip(AuthOk{"uid 1000", 1u << 20});
  expect_round_trip(AuthOk{kBinary, 0xffffffffu});
}

TEST(MessagesRoundTrip, AuthExchange) {
  expect_round_trip(AuthStart{});
  expect_round_trip(AuthStart{block(0xe0)});
  expect_round_trip(AuthChallenge{block(1), block(0xd0)});
  expect_round_trip(AuthProof{block(0xf0)});
}

TEST(MessagesRoundTrip, ExecStart) {
  expect_round_trip(full_exec());
  ExecStart minimal;
  minimal.argv = {""};
  expect_round_trip(minimal);
  ExecStart shell;
  shell.argv = {"echo hi; exit 3"};
  shell.shell = true;
  shell.pty = true;
  shell.timeout_ms = 0xffffffffu;
  shell.rows = 0xffff;
  shell.cols = 0xffff;
  expect_round_trip(shell);
}

TEST(MessagesRoundTrip, ExecStartAtMaxCounts) {
  ExecStart m;
  for (int i = 0; i < 4096; ++i)
    m.argv.push_back("a" + std::to_string(i));
  for (int i = 0; i < 4096; ++i)
    m.env.emplace_back("K" + std::to_string(i), "v");
  expect_round_trip(m);
}

TEST(MessagesRoundTrip, Signal) {
  expect_round_trip(Signal{1});
  expect_round_trip(Signal{9});
  expect_round_trip(Signal{64});
}

TEST(MessagesRoundTrip, WindowSize) {
  expect_round_trip(WindowSize{});
  expect_round_trip(WindowSize{24, 80});
  expect_round_trip(WindowSize{0xffff, 0xffff});
}

TEST(MessagesLayout, StatsRequestIsEmptyAndStrict) {
  EXPECT_TRUE(payload_of(StatsRequest{}).empty());
  expect_round_trip(StatsRequest{});
  expect_strict(StatsRequest{});
  EXPECT_EQ(static_cast<std::uint8_t>(MsgType::stats_request), 0x30);
  EXPECT_EQ(static_cast<std::uint8_t>(MsgType::stats_reply), 0x31);
}

TEST(MessagesLayout, StdinWindowIsOneU32) {
  EXPECT_EQ(payload_of(StdinWindow{0x00040000}), bytes_of({0, 4, 0, 0}));
  Bytes f;
  encode(StdinWindow{1}, f);
  EXPECT_EQ(static_cast<MsgType>(f[4]), MsgType::stdin_window);
  EXPECT_EQ(static_cast<std::uint8_t>(MsgType::stdin_window), 0x28);
  EXPECT_TRUE(is_known_type(0x28));
  EXPECT_STREQ(type_name(MsgType::stdin_window), "stdin_window");
}

TEST(MessagesRoundTrip, StdinWindow) {
  expect_round_trip(StdinWindow{});
  expect_round_trip(StdinWindow{256 * 1024});
  expect_round_trip(StdinWindow{0xffffffffu});
}

TEST(MessagesRoundTrip, Exit) {
  expect_round_trip(Exit{});
  expect_round_trip(Exit{Exit::How::exited, 255, 1, Exit::Limit::none});
  expect_round_trip(Exit{Exit::How::signaled, 9, 0xffffffffffffffffULL, Exit::Limit::timeout});
  expect_round_trip(Exit{Exit::How::not_started, 2, 0, Exit::Limit::output});
  expect_round_trip(
      Exit{Exit::How::exited, std::numeric_limits<std::int32_t>::min(), 0, Exit::Limit::shutdown});
  expect_round_trip(
      Exit{Exit::How::exited, std::numeric_limits<std::int32_t>::max(), 0, Exit::Limit::none});
}

// ----- strictness: truncation and trailing bytes -----

TEST(MessagesStrict, EveryTruncationAndTrailingByteIsBadMessage) {
  expect_strict(Hello{1, 2, "agent"});
  expect_strict(Hello{});
  expect_strict(Welcome{1, 1u << 20, "srv"});
  expect_strict(Error{14, "bad"});
  expect_strict(Auth{kBinary});
  expect_strict(Auth{});
  expect_strict(AuthOk{"uid 0", 16384});
  expect_strict(AuthStart{block(3)});
  expect_strict(AuthChallenge{block(3), block(9)});
  expect_strict(AuthProof{block(5)});
  expect_strict(full_exec());
  expect_strict(Signal{15});
  expect_strict(WindowSize{24, 80});
  expect_strict(StdinWindow{65536});
  expect_strict(Exit{Exit::How::signaled, 15, 99, Exit::Limit::shutdown});
}

TEST(MessagesStrict, EmptyPayloadIsBadForEveryType) {
  expect_bad<Hello>({});
  expect_bad<Welcome>({});
  expect_bad<Error>({});
  expect_bad<Auth>({});
  expect_bad<AuthOk>({});
  expect_bad<AuthStart>({});
  expect_bad<AuthChallenge>({});
  expect_bad<AuthProof>({});
  expect_bad<ExecStart>({});
  expect_bad<Signal>({});
  expect_bad<WindowSize>({});
  expect_bad<StdinWindow>({});
  expect_bad<Exit>({});
}

TEST(MessagesStrict, StringLengthBeyondPayloadIsBad) {
  expect_bad<Auth>(bytes_of({0, 0, 0, 3, 'a', 'b'}));
  expect_bad<Auth>(bytes_of({0xff, 0xff, 0xff, 0xff}));
}

// ----- strictness: enums, flags, counts, content rules -----

TEST(MessagesStrict, ExitRejectsOutOfRangeHowAndLimit) {
  Bytes p = payload_of(Exit{});
  p[0] = std::byte{4};
  expect_bad<Exit>(p);
  p[0] = std::byte{0xff};
  expect_bad<Exit>(p);
  p[0] = std::byte{3};  // bad_cwd, the last defined `how`
  EXPECT_TRUE(decode_exit(p).ok());
  p.back() = std::byte{4};
  expect_bad<Exit>(p);
  p.back() = std::byte{3};
  EXPECT_TRUE(decode_exit(p).ok());
}

TEST(MessagesStrict, SignalRejectsOutOfRange) {
  expect_bad<Signal>(bytes_of({0, 0, 0, 0}));
  expect_bad<Signal>(bytes_of({0, 0, 0, 65}));
  expect_bad<Signal>(bytes_of({0xff, 0xff, 0xff, 0xff}));  // -1
  expect_bad<Signal>(bytes_of({0x80, 0, 0, 1}));
  expect_bad<Signal>(bytes_of({0, 0, 1, 1}));
  EXPECT_EQ(decode_signal(bytes_of({0, 0, 0, 64}))->signo, 64);
  EXPECT_EQ(decode_signal(bytes_of({0, 0, 0, 1}))->signo, 1);
}

TEST(MessagesStrict, ExecStartRejectsUnknownFlags) {
  for (int flags : {0x04, 0x08, 0x80, 0xff, 0x05}) {
    ExecStart m;
    m.argv = {"x"};
    Bytes p = payload_of(m);
    p[0] = static_cast<std::byte>(flags);
    SCOPED_TRACE(flags);
    expect_bad<ExecStart>(p);
  }
}

TEST(MessagesStrict, ExecStartRejectsEmptyArgv) {
  ExecStart m;  // argv empty: encode writes argc 0 as asked, decode refuses it
  expect_bad<ExecStart>(payload_of(m));
}

TEST(MessagesStrict, ExecStartRejectsTooManyArgs) {
  ExecStart m;
  m.argv.assign(4097, "a");
  expect_bad<ExecStart>(payload_of(m));
}

TEST(MessagesStrict, ExecStartRejectsTooManyEnv) {
  ExecStart m;
  m.argv = {"a"};
  m.env.assign(4097, {"K", "v"});
  expect_bad<ExecStart>(payload_of(m));
}

TEST(MessagesStrict, ExecStartRejectsCountsLargerThanPayload) {
  // argc 4096 in a few bytes: refused before any allocation for 4096 strings.
  expect_bad<ExecStart>(bytes_of({0, 0x10, 0x00, 0, 0, 0, 0}));
  expect_bad<ExecStart>(bytes_of({0, 0xff, 0xff}));
}

TEST(MessagesStrict, ExecStartShellTakesExactlyOneString) {
  ExecStart m;
  m.shell = true;
  m.argv = {"echo", "hi"};
  expect_bad<ExecStart>(payload_of(m));
}

TEST(MessagesStrict, ExecStartRejectsNulInArgv) {
  ExecStart m;
  m.argv = {"echo", std::string("a\0b", 3)};
  expect_bad<ExecStart>(payload_of(m));
}

TEST(MessagesStrict, ExecStartRejectsBadEnvKeys) {
  for (const std::string& key :
       {std::string(), std::string("A=B"), std::string("="), std::string("A\0B", 3)}) {
    ExecStart m;
    m.argv = {"env"};
    m.env = {{"OK", "1"}, {key, "v"}};
    SCOPED_TRACE(key);
    expect_bad<ExecStart>(payload_of(m));
  }
}

TEST(MessagesStrict, ExecStartRejectsNulInCStrings) {
  // Values, cwd and term become C strings on the server; a NUL would silently cut them.
  const std::string nul("x\0y", 3);
  ExecStart m = full_exec();
  m.env[0].second = nul;
  expect_bad<ExecStart>(payload_of(m));
  m = full_exec();
  m.cwd = nul;
  expect_bad<ExecStart>(payload_of(m));
  m = full_exec();
  m.term = nul;
  expect_bad<ExecStart>(payload_of(m));
}

// ----- make_error -----

TEST(MessagesMakeError, DefaultTextIsTheCodesMessage) {
  const Error e = make_error(errc::version_unsupported);
  EXPECT_EQ(e.code, 16);
  EXPECT_EQ(e.text, "protocol version not supported");
  EXPECT_EQ(make_error(errc::frame_too_large, "").text,
            make_error_code(errc::frame_too_large).message());
}

TEST(MessagesMakeError, ExplicitTextIsKept) {
  const Error e = make_error(errc::limit_exceeded, "output limit 10 MiB");
  EXPECT_EQ(e.code, static_cast<std::uint16_t>(errc::limit_exceeded));
  EXPECT_EQ(e.text, "output limit 10 MiB");
}

TEST(MessagesMakeError, RoundTripsAndMapsBackToErrc) {
  const Error e = make_error(errc::auth_failed);
  Bytes f;
  encode(e, f);
  const Decoded d = decode_frame(f, 1u << 20);
  ASSERT_EQ(d.status, DecodeStatus::frame);
  const Result<Error> r = decode_error(d.payload);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(is_known_errc(r->code));
  EXPECT_EQ(std::error_code(static_cast<errc>(r->code)), errc::auth_failed);
}

}  // namespace
}  // namespace duplex::wire
