// Replays the checked-in corpus of one fuzz target (tests/fuzz/corpus/<target>/) through it, so
// that every compiler, GCC included, runs it. A target aborts on a broken invariant.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// The target's source is compiled into this test with LLVMFuzzerTestOneInput renamed (CMakeLists).
extern "C" int duplex_fuzz_entry(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

std::vector<std::uint8_t> read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

TEST(CorpusReplay, EveryFile) {
  const fs::path dir = fs::path(DUPLEX_FUZZ_CORPUS_DIR) / DUPLEX_FUZZ_TARGET;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    SCOPED_TRACE(e.path().string());
    const std::vector<std::uint8_t> bytes = read_file(e.path());
    EXPECT_EQ(e.file_size(), bytes.size());
    EXPECT_EQ(duplex_fuzz_entry(bytes.data(), bytes.size()), 0);
    ++n;
  }
  // A corpus of a handful of files is a sign it was lost, not a passing fuzz test.
  EXPECT_GE(n, 5u) << "corpus " << dir << " holds too few inputs";
}

TEST(CorpusReplay, EmptyInput) {
  EXPECT_EQ(duplex_fuzz_entry(nullptr, 0), 0);
}

}  // namespace
