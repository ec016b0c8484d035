// Micro-benchmarks of the pure hot paths, each beside a baseline run in the same process:
// the upper transform against a std::toupper loop, frame decode against a memcpy of the bytes.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <random>

#include "duplex/services/upper.hpp"
#include "duplex/wire/frame.hpp"

namespace {

std::string random_text(std::size_t n) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> d(32, 126);
  std::string s(n, ' ');
  for (auto& c : s)
    c = static_cast<char>(d(rng));
  return s;
}

void BM_UpperBaselineToupper(benchmark::State& st) {
  auto s = random_text(static_cast<std::size_t>(st.range(0)));
  for (auto _ : st) {
    for (auto& c : s)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * st.range(0));
}
BENCHMARK(BM_UpperBaselineToupper)->Arg(64)->Arg(4096)->Arg(65536);

void BM_Upper(benchmark::State& st) {
  auto s = random_text(static_cast<std::size_t>(st.range(0)));
  for (auto _ : st) {
    duplex::services::to_upper_in_place(std::span(s.data(), s.size()));
    benchmark::DoNotOptimize(s.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * st.range(0));
}
BENCHMARK(BM_Upper)->Arg(64)->Arg(4096)->Arg(65536);

// 64 small frames back to back, as a pipelining client sends them.
duplex::Bytes frames(std::size_t payload, int count) {
  duplex::Bytes out;
  const auto text = random_text(payload);
  for (int i = 0; i < count; ++i)
    duplex::wire::encode_frame(duplex::wire::MsgType::upper_request, duplex::as_bytes(text), out);
  return out;
}

void BM_FrameBaselineMemcpy(benchmark::State& st) {
  const auto in = frames(static_cast<std::size_t>(st.range(0)), 64);
  duplex::Bytes copy(in.size());
  for (auto _ : st) {
    std::memcpy(copy.data(), in.data(), in.size());
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * static_cast<std::int64_t>(in.size()));
}
BENCHMARK(BM_FrameBaselineMemcpy)->Arg(16)->Arg(1024);

void BM_FrameDecode(benchmark::State& st) {
  const auto in = frames(static_cast<std::size_t>(st.range(0)), 64);
  for (auto _ : st) {
    duplex::ByteView rest(in);
    std::size_t n = 0;
    for (;;) {
      auto d = duplex::wire::decode_frame(rest, 1u << 20);
      if (d.status != duplex::wire::DecodeStatus::frame) break;
      benchmark::DoNotOptimize(d.payload.data());
      rest = rest.subspan(d.consumed);
      ++n;
    }
    benchmark::DoNotOptimize(n);
  }
  st.SetBytesProcessed(st.iterations() * static_cast<std::int64_t>(in.size()));
  st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * 64);
}
BENCHMARK(BM_FrameDecode)->Arg(16)->Arg(1024);

}  // namespace
