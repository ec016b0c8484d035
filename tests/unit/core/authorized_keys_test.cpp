// Tests for core/authorized_keys.hpp: every option form, every rejection with its line number,
// address patterns (exact, CIDR, glob, negation) and the per-connection decision.
#include "duplex/core/authorized_keys.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "support/process.hpp"

namespace duplex {
namespace {

using test::TempDir;

const std::string kA = "SHA256:ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs";
const std::string kB = "SHA256:PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0";
const std::string kC = "SHA256:Ln0sA6lQeuJl7PW1NWiFpTOTogKdJBOUmXJloaJa78Y";

AuthorizedKey one(const std::string& line) {
  auto k = AuthorizedKeys::parse(line);
  EXPECT_TRUE(k) << line << " -> " << k.message();
  if (!k || k->keys().size() != 1) return {};
  return k->keys()[0];
}

std::string refusal(const std::string& text) {
  auto k = AuthorizedKeys::parse(text);
  EXPECT_FALSE(k) << text;
  if (k) return {};
  EXPECT_EQ(k.error(), std::make_error_code(std::errc::invalid_argument));
  EXPECT_EQ(k.message().find('\n'), std::string::npos) << k.message();
  return k.message();
}

TEST(AuthorizedKeys, BareFingerprintWithAndWithoutComment) {
  const auto a = one(kA);
  EXPECT_EQ(a.fingerprint, kA);
  EXPECT_EQ(a.comment, "");
  EXPECT_FALSE(a.command);
  EXPECT_TRUE(a.from.empty());
  const auto b = one("  " + kA + "   alice@laptop  work key \r");
  EXPECT_EQ(b.comment, "alice@laptop  work key");
}

TEST(AuthorizedKeys, CommentsBlankLinesAndLineNumbers) {
  auto k = AuthorizedKeys::parse("# keys\n\n" + kA + " a\n   # indented comment\n" + kB + " b");
  ASSERT_TRUE(k) << k.message();
  ASSERT_EQ(k->keys().size(), 2u);
  EXPECT_EQ(k->keys()[0].line, 3u);
  EXPECT_EQ(k->keys()[1].line, 5u);
  EXPECT_EQ(k->keys()[1].comment, "b");
}

TEST(AuthorizedKeys, TheIssuesExample) {
  const auto k = one("from=\"127.0.0.1,::1\" command=\"uptime\" " + kA + " laptop");
  EXPECT_EQ(k.fingerprint, kA);
  EXPECT_EQ(k.comment, "laptop");
  ASSERT_TRUE(k.command);
  EXPECT_EQ(*k.command, "uptime");
  ASSERT_EQ(k.from.size(), 2u);
  EXPECT_EQ(k.from[0].pattern, "127.0.0.1");
  EXPECT_EQ(k.from[1].pattern, "::1");
}

TEST(AuthorizedKeys, SshdStyleCommaSeparatedOptionsAndCaseInsensitiveNames) {
  const auto k = one("Command=\"ls -l\",FROM=\"10.0.0.0/8\" " + kA);
  ASSERT_TRUE(k.command);
  EXPECT_EQ(*k.command, "ls -l");
  ASSERT_EQ(k.from.size(), 1u);
  const auto spaced = one("command=\"a\", from=\"::1\" " + kA);
  EXPECT_EQ(*spaced.command, "a");
  EXPECT_EQ(spaced.from.size(), 1u);
}

TEST(AuthorizedKeys, CommandEscapesOnlyTheQuote) {
  // sshd's rule: \" is a quote; any other backslash stays as written.
  const auto k = one(R"(command="echo \"hi there\" \\n \x" )" + kA);
  ASSERT_TRUE(k.command);
  EXPECT_EQ(*k.command, R"(echo "hi there" \\n \x)");
  // So a command cannot end in a backslash: `\\"` is a backslash and an escaped quote.
  EXPECT_NE(refusal(R"(command="a\\" )" + kA).find("no closing quote"), std::string::npos);
  const auto inner = one(R"(command="say \"x,y\" SHA256:" )" + kA);  // quoted text is not parsed
  EXPECT_EQ(*inner.command, R"(say "x,y" SHA256:)");
}

TEST(AuthorizedKeys, EveryRejectionNamesTheLine) {
  const std::pair<std::string, std::string> cases[] = {
      {"command=\"x\"", "no SHA256"},
      {"command=\"x\" ", "no SHA256"},
      {"command=x " + kA, "double quotes"},
      {"command=\"x " + kA, "no closing quote"},
      {"command=\"\" " + kA, "command= is empty"},
      {"command=\"a\" command=\"b\" " + kA, "twice"},
      {"from=\"::1\" from=\"::1\" " + kA, "twice"},
      {"no-pty " + kA, "neither an option"},
      {"no-pty=\"1\" " + kA, "unknown option 'no-pty'"},
      {"command=\"a\"from=\"::1\" " + kA, "comma or a blank"},
      {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 alice", "neither an option"},
      {"SHA256:abc laptop", "not a key fingerprint"},
      {"from=\"\" " + kA, "is empty"},
      {"from=\"10.0.0.1,\" " + kA, "is empty"},
      {"from=\"example.com\" " + kA, "host names are not looked up"},
      {"from=\"*.example.com\" " + kA, "never match"},
      {"from=\"10.0.0.0/33\" " + kA, "prefix length of 0-32"},
      {"from=\"::/129\" " + kA, "prefix length of 0-128"},
      {"from=\"10.0.0.0/\" " + kA, "prefix length"},
      {"from=\"10.0.0.1/8\" " + kA, "bits set beyond"},
      {"from=\"bad/8\" " + kA, "ADDRESS/BITS"},
      {std::string("command=\"a\tb\" ") + kA, "control character"},
  };
  for (const auto& [line, why] : cases) {
    const std::string msg = refusal("# header\n" + kB + "\n" + line + "\n");
    EXPECT_TRUE(msg.starts_with("line 3: ")) << line << " -> " << msg;
    EXPECT_NE(msg.find(why), std::string::npos) << line << " -> " << msg;
  }
}

TEST(AddressPatterns, ExactAddressesCompareAsAddresses) {
  const AddressPattern v4{false, "127.0.0.1"}, v6{false, "::1"};
  EXPECT_TRUE(address_matches(v4, "127.0.0.1"));
  EXPECT_FALSE(address_matches(v4, "127.0.0.2"));
  EXPECT_TRUE(address_matches(v4, "::ffff:127.0.0.1"));  // v4-mapped is the v4 address
  EXPECT_TRUE(address_matches(v6, "0:0:0::1"));          // another spelling of ::1
  EXPECT_FALSE(address_matches(v6, "127.0.0.1"));
  EXPECT_TRUE(address_matches(AddressPattern{false, "fe80::1"}, "fe80::1%eth0"));
  // A Unix peer ("uid:1000") or garbage is no address: nothing matches it.
  EXPECT_FALSE(address_matches(v4, "uid:1000"));
  EXPECT_FALSE(address_matches(AddressPattern{false, "*"}, "uid:1000"));
  EXPECT_FALSE(address_matches(v4, ""));
}

TEST(AddressPatterns, CidrBlocks) {
  const AddressPattern ten{false, "10.0.0.0/8"}, host{false, "192.168.1.7/32"},
      all4{false, "0.0.0.0/0"}, ula{false, "fd00::/8"}, odd{false, "10.1.128.0/17"};
  EXPECT_TRUE(address_matches(ten, "10.255.1.2"));
  EXPECT_FALSE(address_matches(ten, "11.0.0.1"));
  EXPECT_TRUE(address_matches(host, "192.168.1.7"));
  EXPECT_FALSE(address_matches(host, "192.168.1.8"));
  EXPECT_TRUE(address_matches(all4, "8.8.8.8"));
  EXPECT_FALSE(address_matches(all4, "::1"));  // families do not mix
  EXPECT_TRUE(address_matches(ula, "fdab::1"));
  EXPECT_FALSE(address_matches(ula, "fe80::1"));
  EXPECT_TRUE(address_matches(odd, "10.1.200.3"));
  EXPECT_FALSE(address_matches(odd, "10.1.127.3"));
  EXPECT_TRUE(address_matches(ten, "::ffff:10.1.1.1"));
}

TEST(AddressPatterns, GlobsOverTheAddressText) {
  EXPECT_TRUE(address_matches(AddressPattern{false, "192.168.1.*"}, "192.168.1.20"));
  EXPECT_FALSE(address_matches(AddressPattern{false, "192.168.1.*"}, "192.168.10.2"));
  EXPECT_TRUE(address_matches(AddressPattern{false, "10.0.0.?"}, "10.0.0.7"));
  EXPECT_FALSE(address_matches(AddressPattern{false, "10.0.0.?"}, "10.0.0.17"));
  EXPECT_TRUE(address_matches(AddressPattern{false, "*"}, "2001:db8::5"));
  EXPECT_TRUE(address_matches(AddressPattern{false, "2001:db8:*"}, "2001:DB8::5"));
  EXPECT_TRUE(address_matches(AddressPattern{false, "*.*.*.1"}, "10.20.30.1"));
  // A hostile pattern finishes quickly (no exponential backtracking).
  const AddressPattern stars{false, std::string(200, '*') + "x"};
  EXPECT_FALSE(address_matches(stars, "1111:2222:3333:4444:5555:6666:7777:8888"));
}

TEST(AddressPatterns, NegationRefusesWhateverElseMatches) {
  auto k = AuthorizedKeys::parse("from=\"10.0.0.0/8,!10.6.6.6\" " + kA);
  ASSERT_TRUE(k) << k.message();
  const auto& key = k->keys()[0];
  EXPECT_TRUE(key.from[1].negated);
  EXPECT_EQ(key.from[1].pattern, "10.6.6.6");
  EXPECT_TRUE(key.allows_address("10.1.1.1"));
  EXPECT_FALSE(key.allows_address("10.6.6.6"));
  EXPECT_FALSE(key.allows_address("192.168.0.1"));
  // Only negations: nothing positive matches, so nothing is allowed (sshd's rule).
  auto neg = AuthorizedKeys::parse("from=\"!10.6.6.6\" " + kA);
  ASSERT_TRUE(neg);
  EXPECT_FALSE(neg->keys()[0].allows_address("10.1.1.1"));
}

TEST(AuthorizedKeys, AuthorizeTellsUnknownRefusedAndAllowedApart) {
  auto k = AuthorizedKeys::parse("from=\"10.0.0.0/8\" command=\"backup\" " + kA + " office\n" +
                                 "from=\"127.0.0.1\" " + kA + " local\n" + kB + " anywhere\n");
  ASSERT_TRUE(k) << k.message();

  const auto office = k->authorize(kA, "10.1.2.3");
  EXPECT_EQ(office.verdict, KeyVerdict::allowed);
  ASSERT_NE(office.key, nullptr);
  EXPECT_EQ(office.key->line, 1u);
  EXPECT_EQ(*office.key->command, "backup");

  // The first line refuses 127.0.0.1; sshd goes on to the next line for the same key.
  const auto local = k->authorize(kA, "127.0.0.1");
  EXPECT_EQ(local.verdict, KeyVerdict::allowed);
  EXPECT_EQ(local.key->line, 2u);
  EXPECT_FALSE(local.key->command);

  const auto refused = k->authorize(kA, "192.168.0.1");
  EXPECT_EQ(refused.verdict, KeyVerdict::address_refused);
  ASSERT_NE(refused.key, nullptr);
  EXPECT_EQ(refused.key->line, 1u);

  EXPECT_EQ(k->authorize(kB, "uid:1000").verdict, KeyVerdict::allowed);  // no from=: anywhere
  const auto unknown = k->authorize(kC, "127.0.0.1");
  EXPECT_EQ(unknown.verdict, KeyVerdict::unknown_key);
  EXPECT_EQ(unknown.key, nullptr);
}

TEST(AuthorizedKeysFile, LoadNamesTheFileAndRefusesAWritableOne) {
  TempDir dir;
  const std::string path = dir.file("authorized_keys");
  std::ofstream(path) << kA << " a\nbad line\n";
  ::chmod(path.c_str(), 0644);
  auto k = load_authorized_keys(path);
  ASSERT_FALSE(k);
  EXPECT_TRUE(k.message().starts_with(path + ": line 2: ")) << k.message();

  std::ofstream(path) << kA << " a\n";
  auto good = load_authorized_keys(path);
  ASSERT_TRUE(good) << good.message();
  EXPECT_EQ(good->keys().size(), 1u);

  ::chmod(path.c_str(), 0646);
  EXPECT_FALSE(load_authorized_keys(path));
  EXPECT_FALSE(load_authorized_keys(dir.file("absent")));  // no file: no keys, said loudly
}

}  // namespace
}  // namespace duplex
