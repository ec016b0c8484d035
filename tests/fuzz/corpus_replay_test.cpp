// Replays the checked-in fuzz corpus (tests/fuzz/corpus/<target>/) through the fuzz targets, so
// that every compiler, GCC included, runs them. The targets abort on a broken invariant.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// The fuzz sources are compiled into this test with LLVMFuzzerTestOneInput renamed (CMakeLists).
extern "C" int duplex_fuzz_frame(const std::uint8_t* data, std::size_t size);
extern "C" int duplex_fuzz_messages(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;
using Target = int (*)(const std::uint8_t*, std::size_t);

std::vector<std::uint8_t> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// Returns how many files were replayed.
std::size_t replay(const std::string& target, Target fn) {
  const fs::path dir = fs::path(DUPLEX_FUZZ_CORPUS_DIR) / target;
  EXPECT_TRUE(fs::is_directory(dir)) << dir;
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    SCOPED_TRACE(e.path().string());
    const std::vector<std::uint8_t> bytes = read_file(e.path());
    EXPECT_EQ(e.file_size(), bytes.size());
    EXPECT_EQ(fn(bytes.data(), bytes.size()), 0);
    ++n;
  }
  return n;
}

TEST(CorpusReplay, Frame) {
  EXPECT_GE(replay("frame", &duplex_fuzz_frame), 10u);
}

TEST(CorpusReplay, Messages) {
  EXPECT_GE(replay("messages", &duplex_fuzz_messages), 10u);
}

TEST(CorpusReplay, EmptyInput) {
  EXPECT_EQ(duplex_fuzz_frame(nullptr, 0), 0);
  EXPECT_EQ(duplex_fuzz_messages(nullptr, 0), 0);
}

}  // namespace
