// Tests for wire/frame.hpp: the preface check and the incremental frame decoder/encoder.
#include "duplex/wire/frame.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "duplex/core/errors.hpp"

namespace duplex::wire {
namespace {

constexpr std::uint32_t kMax = 1u << 20;

Bytes bytes_of(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v)
    b.push_back(static_cast<std::byte>(x));
  return b;
}

Bytes bytes_of(std::string_view s) {
  const ByteView v = as_bytes(s);
  return {v.begin(), v.end()};
}

Bytes frame(MsgType t, ByteView payload) {
  Bytes out;
  encode_frame(t, payload, out);
  return out;
}

Bytes frame(MsgType t, std::string_view payload) {
  return frame(t, as_bytes(payload));
}

Bytes payload_of(const Decoded& d) {
  return {d.payload.begin(), d.payload.end()};
}

const MsgType kAllTypes[] = {
    MsgType::hello,       MsgType::welcome,        MsgType::error,         MsgType::ping,
    MsgType::pong,        MsgType::auth,           MsgType::auth_ok,       MsgType::upper_request,
    MsgType::upper_reply, MsgType::exec_start,     MsgType::stdin_data,    MsgType::stdin_eof,
    MsgType::stdout_data, MsgType::stderr_data,    MsgType::signal,        MsgType::window_size,
    MsgType::exit,        MsgType::stdin_window,   MsgType::stats_request, MsgType::stats_reply,
    MsgType::auth_start,  MsgType::auth_challenge, MsgType::auth_proof,
};

TEST(FrameEncoder, HeaderLayoutIsLengthTypeFlags) {
  EXPECT_EQ(frame(MsgType::upper_request, "hi"), bytes_of({0, 0, 0, 2, 0x10, 0, 'h', 'i'}));
}

TEST(FrameEncoder, EncodeHeaderAloneMatchesEncodeFrame) {
  Bytes a;
  encode_header(MsgType::stdout_data, 3, a);
  a.push_back(std::byte{'a'});
  a.push_back(std::byte{'b'});
  a.push_back(std::byte{'c'});
  EXPECT_EQ(a, frame(MsgType::stdout_data, "abc"));
  EXPECT_EQ(a.size(), kHeaderSize + 3);
}

TEST(FrameEncoder, AppendsAfterExistingBytes) {
  Bytes out = bytes_of({0xee});
  encode_frame(MsgType::ping, as_bytes("x"), out);
  EXPECT_EQ(out, bytes_of({0xee, 0, 0, 0, 1, 0x04, 0, 'x'}));
}

TEST(FrameDecoder, RoundTripsEveryType) {
  const std::string payload("pay\0load\xff", 9);
  for (MsgType t : kAllTypes) {
    const Bytes f = frame(t, payload);
    const Decoded d = decode_frame(f, kMax);
    ASSERT_EQ(d.status, DecodeStatus::frame) << type_name(t);
    EXPECT_EQ(d.type, t);
    EXPECT_EQ(payload_of(d), bytes_of(payload));
    EXPECT_EQ(d.consumed, f.size());
    EXPECT_FALSE(d.error);
  }
}

TEST(FrameDecoder, PayloadPointsIntoInput) {
  const Bytes f = frame(MsgType::upper_request, "abc");
  const Decoded d = decode_frame(f, kMax);
  ASSERT_EQ(d.status, DecodeStatus::frame);
  EXPECT_EQ(d.payload.data(), f.data() + kHeaderSize);
}

TEST(FrameDecoder, EveryStrictPrefixNeedsMore) {
  const Bytes f = frame(MsgType::upper_request, "hello, world");
  for (std::size_t n = 0; n < f.size(); ++n) {
    const Decoded d = decode_frame(ByteView(f).first(n), kMax);
    EXPECT_EQ(d.status, DecodeStatus::need_more) << "prefix " << n;
    EXPECT_EQ(d.consumed, 0u) << "prefix " << n;
  }
  EXPECT_EQ(decode_frame(f, kMax).status, DecodeStatus::frame);
}

TEST(FrameDecoder, SplitAtEveryByteBoundaryReassembles) {
  // Simulates a stream delivered in two reads, split at each possible position.
  const Bytes f = frame(MsgType::stdout_data, "0123456789");
  for (std::size_t cut = 0; cut <= f.size(); ++cut) {
    Bytes buf(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(cut));
    Decoded d = decode_frame(buf, kMax);
    if (cut < f.size()) {
      ASSERT_EQ(d.status, DecodeStatus::need_more) << cut;
      buf.insert(buf.end(), f.begin() + static_cast<std::ptrdiff_t>(cut), f.end());
      d = decode_frame(buf, kMax);
    }
    ASSERT_EQ(d.status, DecodeStatus::frame) << cut;
    EXPECT_EQ(payload_of(d), bytes_of("0123456789"));
  }
}

TEST(FrameDecoder, DecodesConcatenatedFramesInSequence) {
  Bytes stream;
  encode_frame(MsgType::upper_request, as_bytes("a"), stream);
  encode_frame(MsgType::stdin_eof, {}, stream);
  encode_frame(MsgType::ping, as_bytes("xyz"), stream);
  encode_frame(MsgType::upper_reply, as_bytes("A"), stream);
  stream.push_back(std::byte{0});  // start of a fifth frame

  struct Want {
    MsgType type;
    std::string payload;
  };
  const std::vector<Want> want{{MsgType::upper_request, "a"},
                               {MsgType::stdin_eof, ""},
                               {MsgType::ping, "xyz"},
                               {MsgType::upper_reply, "A"}};
  ByteView rest(stream);
  for (const auto& w : want) {
    const Decoded d = decode_frame(rest, kMax);
    ASSERT_EQ(d.status, DecodeStatus::frame);
    EXPECT_EQ(d.type, w.type);
    EXPECT_EQ(payload_of(d), bytes_of(w.payload));
    rest = rest.subspan(d.consumed);
  }
  EXPECT_EQ(rest.size(), 1u);
  EXPECT_EQ(decode_frame(rest, kMax).status, DecodeStatus::need_more);
}

TEST(FrameDecoder, ZeroLengthPayload) {
  const Bytes f = frame(MsgType::stats_request, ByteView{});
  ASSERT_EQ(f.size(), kHeaderSize);
  const Decoded d = decode_frame(f, kMax);
  ASSERT_EQ(d.status, DecodeStatus::frame);
  EXPECT_EQ(d.type, MsgType::stats_request);
  EXPECT_TRUE(d.payload.empty());
  EXPECT_EQ(d.consumed, kHeaderSize);
}

TEST(FrameDecoder, RejectsLengthAboveLimitFromHeaderAlone) {
  // Only the header has arrived; a 4 GiB announcement must fail now, not wait for the payload.
  const Bytes header = bytes_of({0xff, 0xff, 0xff, 0xff, 0x10, 0});
  const Decoded d = decode_frame(header, kMax);
  EXPECT_EQ(d.status, DecodeStatus::error);
  EXPECT_EQ(d.error, errc::frame_too_large);
  EXPECT_EQ(d.consumed, 0u);
}

TEST(FrameDecoder, RejectsLengthAboveLimit) {
  Bytes h;
  encode_header(MsgType::upper_request, kMax + 1, h);
  const Decoded d = decode_frame(h, kMax);
  EXPECT_EQ(d.status, DecodeStatus::error);
  EXPECT_EQ(d.error, errc::frame_too_large);
}

TEST(FrameDecoder, AcceptsLengthAtLimit) {
  constexpr std::uint32_t kSmall = 16;
  const Bytes at(kSmall, std::byte{'x'});
  const Decoded ok = decode_frame(frame(MsgType::upper_request, at), kSmall);
  ASSERT_EQ(ok.status, DecodeStatus::frame);
  EXPECT_EQ(ok.payload.size(), kSmall);

  const Bytes above(kSmall + 1, std::byte{'x'});
  const Decoded bad = decode_frame(frame(MsgType::upper_request, above), kSmall);
  EXPECT_EQ(bad.status, DecodeStatus::error);
  EXPECT_EQ(bad.error, errc::frame_too_large);
}

TEST(FrameDecoder, HeaderAtLimitStillNeedsPayload) {
  Bytes h;
  encode_header(MsgType::upper_request, kMax, h);
  EXPECT_EQ(decode_frame(h, kMax).status, DecodeStatus::need_more);
}

TEST(FrameDecoder, ZeroLimitAcceptsOnlyEmptyPayloads) {
  EXPECT_EQ(decode_frame(frame(MsgType::stdin_eof, ByteView{}), 0).status, DecodeStatus::frame);
  EXPECT_EQ(decode_frame(frame(MsgType::ping, "x"), 0).status, DecodeStatus::error);
}

TEST(FrameDecoder, RejectsNonZeroFlags) {
  for (int flags : {0x01, 0x02, 0x80, 0xff}) {
    Bytes f = frame(MsgType::ping, "x");
    f[5] = static_cast<std::byte>(flags);
    const Decoded d = decode_frame(f, kMax);
    EXPECT_EQ(d.status, DecodeStatus::error) << flags;
    EXPECT_EQ(d.error, errc::bad_frame) << flags;
    // Also from the header alone.
    EXPECT_EQ(decode_frame(ByteView(f).first(kHeaderSize), kMax).status, DecodeStatus::error);
  }
}

TEST(FrameDecoder, UnknownTypeIsNotAFrameError) {
  Bytes f = frame(MsgType::ping, "x");
  f[4] = std::byte{0x7f};
  const Decoded d = decode_frame(f, kMax);
  ASSERT_EQ(d.status, DecodeStatus::frame);
  EXPECT_EQ(static_cast<std::uint8_t>(d.type), 0x7f);
  EXPECT_FALSE(is_known_type(0x7f));
}

TEST(FrameDecoder, ReportsOnlyTheFirstFrame) {
  Bytes two = frame(MsgType::ping, "1");
  const std::size_t first = two.size();
  encode_frame(MsgType::pong, as_bytes("2"), two);
  const Decoded d = decode_frame(two, kMax);
  ASSERT_EQ(d.status, DecodeStatus::frame);
  EXPECT_EQ(d.consumed, first);
  EXPECT_EQ(d.type, MsgType::ping);
}

TEST(FrameTypes, KnownTypesHaveNames) {
  int known = 0;
  for (int t = 0; t < 256; ++t) {
    const auto u = static_cast<std::uint8_t>(t);
    if (is_known_type(u)) {
      ++known;
      EXPECT_STRNE(type_name(static_cast<MsgType>(u)), "unknown");
    } else {
      EXPECT_STREQ(type_name(static_cast<MsgType>(u)), "unknown");
    }
  }
  EXPECT_EQ(known, static_cast<int>(std::size(kAllTypes)));
  EXPECT_STREQ(type_name(MsgType::upper_request), "upper_request");
  EXPECT_FALSE(is_known_type(0));
}

TEST(FramePreface, IsNulThenDPX) {
  EXPECT_EQ(Bytes(kPreface.begin(), kPreface.end()), bytes_of({0, 'D', 'P', 'X'}));
}

TEST(FramePreface, EveryStrictPrefixNeedsMore) {
  for (std::size_t n = 0; n < kPreface.size(); ++n)
    EXPECT_EQ(check_preface(ByteView(kPreface).first(n)), PrefaceStatus::need_more) << n;
}

TEST(FramePreface, ExactPrefaceIsOk) {
  EXPECT_EQ(check_preface(kPreface), PrefaceStatus::ok);
}

TEST(FramePreface, PrefaceFollowedByFrameIsOk) {
  Bytes b(kPreface.begin(), kPreface.end());
  encode_frame(MsgType::ping, as_bytes("x"), b);
  EXPECT_EQ(check_preface(b), PrefaceStatus::ok);
}

TEST(FramePreface, PrefaceFollowedByGarbageIsOk) {
  // check_preface only judges the first four bytes; what follows is the frame decoder's job.
  Bytes b(kPreface.begin(), kPreface.end());
  b.push_back(std::byte{0xff});
  b.push_back(std::byte{'z'});
  EXPECT_EQ(check_preface(b), PrefaceStatus::ok);
  EXPECT_EQ(decode_frame(ByteView(b).subspan(kPreface.size()), kMax).status,
            DecodeStatus::need_more);
}

TEST(FramePreface, FirstByteNotNulIsBad) {
  EXPECT_EQ(check_preface(bytes_of("h")), PrefaceStatus::bad);
  EXPECT_EQ(check_preface(bytes_of("hello")), PrefaceStatus::bad);
  EXPECT_EQ(check_preface(bytes_of("DPX")), PrefaceStatus::bad);
}

TEST(FramePreface, WrongLaterByteIsBad) {
  EXPECT_EQ(check_preface(bytes_of({0, 'D', 'Q'})), PrefaceStatus::bad);
  EXPECT_EQ(check_preface(bytes_of({0, 'D', 'P', 'Y'})), PrefaceStatus::bad);
  EXPECT_EQ(check_preface(bytes_of({0, 0, 0, 0, 0, 0})), PrefaceStatus::bad);
  EXPECT_EQ(check_preface(bytes_of({0, 'd', 'p', 'x'})), PrefaceStatus::bad);
}

}  // namespace
}  // namespace duplex::wire
