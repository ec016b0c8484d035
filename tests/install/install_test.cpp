// duplex(1) and the completions list every command and option there is (they are generated from
// the same definitions); `cmake --install` and the .deb put a working binary and them in place.
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/process.hpp"

namespace duplex::test {
namespace {

namespace fs = std::filesystem;
constexpr ExitStatus kOk{true, 0};

const std::vector<std::string> kCommands = {"serve",    "send",   "chat",        "exec", "shell",
                                            "discover", "keygen", "fingerprint", "bench"};

// The long options `duplex CMD --help` shows.
std::set<std::string> help_options(const std::string& cmd) {
  const auto r = run({duplex_bin(), cmd, "--help"});
  EXPECT_EQ(r.status, kOk) << r.err;
  std::set<std::string> out;
  // An option's own line: "  -l,--listen URL …" or "  --max-connections N" (not its text).
  const std::regex opt(R"(^\s+(?:-[A-Za-z],)*(--[a-z][a-z0-9-]+))");
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (std::smatch m; std::regex_search(line, m, opt)) out.insert(m[1]);
  return out;
}

std::string roff_dashes(const std::string& s) {
  std::string out;
  for (char c : s)
    out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

bool have(const char* program) {
  return run({"sh", "-c", std::string("command -v ") + program}).status == kOk;
}

TEST(Docs, TheManPageRendersCleanlyAndListsEveryCommandAndOption) {
  const auto man = run({duplex_bin(), "manpage"});
  ASSERT_EQ(man.status, kOk) << man.err;
  for (const auto& cmd : kCommands) {
    EXPECT_NE(man.out.find(".SS \"duplex " + cmd + "\""), std::string::npos) << cmd;
    for (const auto& opt : help_options(cmd))
      EXPECT_NE(man.out.find(roff_dashes(opt)), std::string::npos) << cmd << " " << opt;
  }
  for (const char* section : {".SH EXIT STATUS", ".SH FILES", ".SH EXAMPLES"})
    EXPECT_NE(man.out.find(section), std::string::npos) << section;
  if (!have("groff")) GTEST_SKIP() << "groff is not installed: the page was not rendered";
  // -ww: every warning; -z: no output. A clean page says nothing.
  const auto rendered = run({"groff", "-man", "-ww", "-z"}, man.out);
  EXPECT_EQ(rendered.status, kOk);
  EXPECT_EQ(rendered.err, "");
}

// What bash offers after `words` (the last one being completed).
std::string bash_offers(const std::string& words) {
  const std::string script = "source <(\"$DUPLEX\" completion bash); COMP_WORDS=(" + words +
                             "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _duplex; "
                             "printf '%s\\n' \"${COMPREPLY[@]}\"";
  const auto r =
      run({"bash", "-c", script}, {}, std::chrono::seconds(20), {"DUPLEX=" + duplex_bin()});
  EXPECT_EQ(r.status, kOk) << r.err;
  return r.out;
}

TEST(Docs, BashCompletesCommandsAndEachCommandsOptions) {
  EXPECT_EQ(bash_offers("duplex se"), "serve\nsend\n");
  EXPECT_EQ(bash_offers("duplex serve --max-conn"),
            "--max-connections\n--max-connections-per-address\n");
  EXPECT_EQ(bash_offers("duplex -v exec --ident"), "--identity\n");
  for (const auto& cmd : kCommands) {
    const auto offered = bash_offers("duplex " + cmd + " --");
    for (const auto& opt : help_options(cmd))
      EXPECT_NE(offered.find(opt + "\n"), std::string::npos) << cmd << " " << opt;
  }
}

TEST(Docs, ZshCompletionIsValidZsh) {
  const auto z = run({duplex_bin(), "completion", "zsh"});
  ASSERT_EQ(z.status, kOk) << z.err;
  EXPECT_EQ(z.out.rfind("#compdef duplex\n", 0), 0u);
  for (const auto& cmd : kCommands)
    EXPECT_NE(z.out.find("\n      " + cmd + ")\n"), std::string::npos) << cmd;
  if (!have("zsh")) GTEST_SKIP() << "zsh is not installed: the script was not parsed";
  const auto parsed = run({"zsh", "-n"}, z.out);
  EXPECT_EQ(parsed.status, kOk) << parsed.err;
}

TEST(Install, CmakeInstallPutsTheBinaryManPageCompletionsAndUnitInPlace) {
  TempDir dir;
  const auto prefix = dir.path() / "usr";
  const auto r = run({"cmake", "--install", DUPLEX_BUILD_DIR, "--prefix", prefix.string()}, {},
                     std::chrono::seconds(120));
  ASSERT_EQ(r.status, kOk) << r.out << r.err;
  for (const char* f :
       {"bin/duplex", "share/man/man1/duplex.1", "share/bash-completion/completions/duplex",
        "share/zsh/vendor-completions/_duplex", "lib/systemd/system/duplex.service",
        "share/doc/duplex/examples/serve.toml"})
    EXPECT_TRUE(fs::is_regular_file(prefix / f)) << f;
  const auto v = run({(prefix / "bin/duplex").string(), "--version"});
  EXPECT_EQ(v.status, kOk) << v.err;
  EXPECT_EQ(v.out.rfind("duplex ", 0), 0u) << v.out;
  // The example config is a valid one.
  const auto check =
      run({(prefix / "bin/duplex").string(), "serve", "--config",
           (prefix / "share/doc/duplex/examples/serve.toml").string(), "--check-config"});
  EXPECT_EQ(check.status, kOk) << check.err;
}

TEST(Install, TheDebUnpacksIntoAFreshRootAndItsBinaryRuns) {
  if (!have("dpkg-deb") || !have("cpack")) GTEST_SKIP() << "dpkg-deb or cpack missing";
  TempDir dir;
  const auto out = dir.path() / "pkg";
  const auto r = run({"cpack", "-G", "DEB", "--config",
                      std::string(DUPLEX_BUILD_DIR) + "/CPackConfig.cmake", "-B", out.string()},
                     {}, std::chrono::seconds(240));
  ASSERT_EQ(r.status, kOk) << r.out << r.err;
  std::string deb;
  for (const auto& e : fs::directory_iterator(out))
    if (e.path().extension() == ".deb") deb = e.path().string();
  ASSERT_FALSE(deb.empty()) << "no .deb in " << out;
  const auto root = dir.path() / "root";
  ASSERT_EQ(run({"dpkg-deb", "-x", deb, root.string()}).status, kOk);
  const auto info = run({"dpkg-deb", "-f", deb, "Package", "Depends"});
  EXPECT_NE(info.out.find("Package: duplex"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("libc6"), std::string::npos) << "Depends not computed: " << info.out;
  EXPECT_TRUE(fs::is_regular_file(root / "usr/share/man/man1/duplex.1"));
  EXPECT_TRUE(fs::is_regular_file(root / "usr/lib/systemd/system/duplex.service"));
  const auto v = run({(root / "usr/bin/duplex").string(), "--version"});
  EXPECT_EQ(v.status, kOk) << v.err;
  EXPECT_EQ(v.out.rfind("duplex ", 0), 0u) << v.out;
}

}  // namespace
}  // namespace duplex::test
