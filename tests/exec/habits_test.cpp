// ssh habits with `duplex exec` and `duplex shell` (issue 10, "Using it"): a shell line given as
// the program gets a hint for -c; no command opens a shell; without a terminal there is no PTY
// (one warning) and commands from stdin still run; `~.` after a newline leaves a hung session.
#include <signal.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exec/exec_fixture.hpp"
#include "exec/pty_process.hpp"

namespace duplex::test {
namespace {

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == s.size() - 1;
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

class ExecHabitsTest : public ::testing::Test {
 protected:
  ExecServer server_;

  /// duplex CMD --token-file TOKEN URL ARGS...
  RunResult dx(const std::string& cmd, std::vector<std::string> args, std::string_view input = {}) {
    std::vector<std::string> argv{duplex_bin(), cmd, "--token-file", server_.token_path(),
                                  server_.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, input, std::chrono::seconds(60));
  }
};

TEST_F(ExecHabitsTest, AShellLineAsTheCommandFailsWithAHintForDashC) {
  const auto r = dx("exec", {"ls | wc -l"});
  EXPECT_EQ(r.status, (ExitStatus{true, 127})) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_TRUE(contains(r.err, "use -c 'ls | wc -l'")) << r.err;
  EXPECT_EQ(r.out, "");
  // The hint works: the same string after -c runs in the shell.
  const auto c = dx("exec", {"-c", "printf 'a\\nb\\n' | wc -l"});
  EXPECT_EQ(c.status, (ExitStatus{true, 0})) << c.err;
  EXPECT_EQ(c.out, "2\n");
}

}  // namespace
}  // namespace duplex::test
