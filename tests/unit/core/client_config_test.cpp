// Host blocks of the client config: parsing, ssh's first-value-wins lookup, patterns, and a
// one-line error naming the line for every kind of mistake.
#include "duplex/core/client_config.hpp"

#include "duplex/core/glob.hpp"

#include <string>

#include <gtest/gtest.h>

namespace duplex {
namespace {

constexpr std::string_view kConfig = R"(# servers I use
Host web1 web1.lan
  Address tls://10.0.0.5:8443
  Fingerprint SHA256:abc
  TokenFile ~/.config/duplex/web1.token

Host build-*  !build-old
  Address=unix:///run/duplex/build.sock
  Identity = "~/keys/my build key"

Host *
  Trust strict
  TokenFile /etc/duplex/default.token
)";

TEST(ClientConfig, LookupTakesTheFirstValueOfEveryMatchingBlock) {
  auto cfg = ClientConfig::parse(kConfig, "/home/ann");
  ASSERT_TRUE(cfg) << cfg.message();
  bool matched = false;
  const auto web = cfg->lookup("web1.lan", &matched);
  EXPECT_TRUE(matched);
  EXPECT_EQ(web.address, "tls://10.0.0.5:8443");
  EXPECT_EQ(web.fingerprint, "SHA256:abc");
  EXPECT_EQ(web.token_file, "/home/ann/.config/duplex/web1.token");  // not Host *'s
  EXPECT_EQ(web.trust, "strict");                                    // from Host *
  const auto build = cfg->lookup("build-7");
  EXPECT_EQ(build.address, "unix:///run/duplex/build.sock");
  EXPECT_EQ(build.identity, "/home/ann/keys/my build key");
  EXPECT_EQ(build.token_file, "/etc/duplex/default.token");
}

TEST(ClientConfig, NegatedPatternsAndUnknownNames) {
  auto cfg = ClientConfig::parse(kConfig, "/home/ann");
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->lookup("build-old").address, "");  // excluded by !build-old
  bool matched = true;
  auto none = ClientConfig::parse("Host a\n Address x:1\n");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->lookup("b", &matched).address, "");
  EXPECT_FALSE(matched);
}

TEST(ClientConfig, PatternsMatchLikeAShell) {
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("web?", "web1"));
  EXPECT_FALSE(glob_match("web?", "web12"));
  EXPECT_TRUE(glob_match("*.lan", "a.b.lan"));
  EXPECT_FALSE(glob_match("*.lan", "lan"));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  // Linear even for the pattern that makes naive backtracking exponential.
  EXPECT_FALSE(glob_match("a*a*a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

TEST(ClientConfig, EveryMistakeIsOneLineNamingItsLine) {
  const struct {
    const char* text;
    const char* says;
  } cases[] = {
      {"Address x:1\n", "line 1: 'address' before any Host line"},
      {"Host a\n\n  Adress x:1\n", "line 3: unknown keyword 'adress'"},
      {"Host a\n  Trust maybe\n", "line 2: Trust is accept-new, ask or strict"},
      {"Host a\n  Address\n", "line 2: 'Address' has no value"},
      {"Host a\n  Address a:1 b:2\n", "line 2: address takes one value"},
      {"Host a\n  Identity \"unclosed\n", "line 2: unclosed quote"},
      {"Host\n", "line 1: 'Host' has no value"},
  };
  for (const auto& c : cases) {
    const auto cfg = ClientConfig::parse(c.text);
    ASSERT_FALSE(cfg) << c.text;
    EXPECT_NE(cfg.message().find(c.says), std::string::npos) << cfg.message();
    EXPECT_EQ(cfg.message().find('\n'), std::string::npos) << cfg.message();
  }
}

TEST(ClientConfig, GarbageNeverCrashes) {
  std::string junk;
  for (int i = 0; i < 2000; ++i)
    junk.push_back(static_cast<char>((i * 7919) % 256));
  (void)ClientConfig::parse(junk);
  (void)ClientConfig::parse(std::string(100000, '='));
  (void)ClientConfig::parse("Host " + std::string(100000, '*') + "\n Address a:1\n");
  SUCCEED();
}

}  // namespace
}  // namespace duplex
