// Tests for core/known_hosts.hpp and core/fingerprint.hpp: every line form, every rejection, the
// three lookup outcomes, and the file's load and append.
#include "duplex/core/known_hosts.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "duplex/core/fingerprint.hpp"
#include "support/process.hpp"

namespace duplex {
namespace {

using test::TempDir;

const std::string kA = "SHA256:ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs";
const std::string kB = "SHA256:PiPoFgA5WUoziU9lZOGxNIu9egCI1CxKy3PurtWcAJ0";
const std::string kC = "SHA256:Ln0sA6lQeuJl7PW1NWiFpTOTogKdJBOUmXJloaJa78Y";

TEST(Fingerprint, AcceptsOnlyTheCanonicalForm) {
  EXPECT_TRUE(check_fingerprint(kA));
  EXPECT_TRUE(check_fingerprint("SHA256:" + std::string(43, 'A')));
  for (const std::string& bad : {
           std::string("sha256:") + kA.substr(7),   // prefix is case-sensitive
           std::string("MD5:") + kA.substr(7),      // another hash
           kA.substr(0, kA.size() - 1),             // 42 characters
           kA + "A",                                // 44 characters
           kA + "=",                                // padding is not printed
           kA.substr(0, 20) + "!" + kA.substr(21),  // not base64
           kA.substr(0, kA.size() - 1) + "t",       // 't' leaves low bits set
           std::string("SHA256:"),
           std::string(""),
       }) {
    auto r = check_fingerprint(bad);
    EXPECT_FALSE(r) << bad;
    EXPECT_EQ(r.message().find('\n'), std::string::npos);
  }
}

TEST(Fingerprint, MessageQuotesAtMost80PrintableBytes) {
  const std::string hostile = std::string("SHA256:\n\x1b[31m") + std::string(500, 'x');
  auto r = check_fingerprint(hostile);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.message().find('\n'), std::string::npos);
  EXPECT_EQ(r.message().find('\x1b'), std::string::npos);
  EXPECT_LT(r.message().size(), 200u);
}

TEST(KnownHostName, BracketsIPv6AndLowerCasesNames) {
  EXPECT_EQ(known_host_name("127.0.0.1", 8080), "127.0.0.1:8080");
  EXPECT_EQ(known_host_name("::1", 8080), "[::1]:8080");
  EXPECT_EQ(known_host_name("Server.Example.ORG", 1), "server.example.org:1");
}

TEST(KnownHosts, ParsesEveryLineForm) {
  const std::string text =
      "# pinned by duplex\n"
      "\n"
      "   \t\n"
      "127.0.0.1:8080 " +
      kA + "\n" + "[::1]:8080\t" + kB + " added 2025-01-01\r\n" + "  [Host.Example]:22 " + kC +
      "\n" + "box:9 " + kA;  // no final newline
  auto k = KnownHosts::parse(text);
  ASSERT_TRUE(k) << k.message();
  ASSERT_EQ(k->entries().size(), 4u);
  EXPECT_EQ(k->entries()[0].name, "127.0.0.1:8080");
  EXPECT_EQ(k->entries()[0].fingerprint, kA);
  EXPECT_EQ(k->entries()[0].line, 4u);
  EXPECT_EQ(k->entries()[1].name, "[::1]:8080");
  EXPECT_EQ(k->entries()[1].fingerprint, kB);
  EXPECT_EQ(k->entries()[2].name, "host.example:22");
  EXPECT_EQ(k->entries()[3].name, "box:9");
  EXPECT_EQ(k->entries()[3].line, 7u);
}

TEST(KnownHosts, EachBadLineIsRefusedNamingItsNumber) {
  const std::pair<std::string, std::string> cases[] = {
      {"127.0.0.1:8080", "one word"},
      {"127.0.0.1 " + kA, "no :PORT"},
      {"127.0.0.1:0 " + kA, "port"},
      {"127.0.0.1:65536 " + kA, "port"},
      {"127.0.0.1:80x " + kA, "port"},
      {"127.0.0.1: " + kA, "port"},
      {":8080 " + kA, "empty host"},
      {"::1:8080 " + kA, "brackets"},
      {"[::1:8080 " + kA, "]:PORT"},
      {"[]:8080 " + kA, "empty host"},
      {"ho/st:80 " + kA, "character"},
      {"[name%1]:80 " + kA, "character"},  // a zone index only in an IPv6 literal (fuzzer)
      {"host:80 " + kA.substr(0, 30), "not a key fingerprint"},
      {"host:80 ssh-ed25519 AAAAC3Nza", "not a key fingerprint"},
  };
  for (const auto& [line, why] : cases) {
    auto k = KnownHosts::parse("# first\n" + line + "\n");
    ASSERT_FALSE(k) << line;
    EXPECT_EQ(k.error(), std::make_error_code(std::errc::invalid_argument));
    EXPECT_TRUE(k.message().starts_with("line 2: ")) << k.message();
    EXPECT_NE(k.message().find(why), std::string::npos) << line << " -> " << k.message();
    EXPECT_EQ(k.message().find('\n'), std::string::npos);
  }
}

TEST(KnownHosts, UnixSocketPathsAreNames) {
  auto k = KnownHosts::parse("/run/duplex/Exec.sock " + kA + "\n/tmp/a:1 " + kB + " comment\n");
  ASSERT_TRUE(k) << k.message();
  ASSERT_EQ(k->entries().size(), 2u);
  EXPECT_EQ(k->entries()[0].name, "/run/duplex/Exec.sock") << "kept as it is, case and all";
  EXPECT_EQ(k->entries()[1].name, "/tmp/a:1") << "a path, not a host:port";
  auto bad = KnownHosts::parse("/run/x\x01y.sock " + kA + "\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("control character"), std::string::npos) << bad.message();
  EXPECT_TRUE(can_pin_socket_path("/run/d.sock"));
  EXPECT_FALSE(can_pin_socket_path("run/d.sock"));
  EXPECT_FALSE(can_pin_socket_path("/run/my dir/d.sock"));
  EXPECT_FALSE(can_pin_socket_path("/run/d\n.sock"));
}

TEST(KnownHosts, CheckTellsUnknownKnownAndChangedApart) {
  auto k = KnownHosts::parse("host:80 " + kA + "\n[::1]:80 " + kB + "\n");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->check("host", 80, kA).status, HostKeyStatus::known);
  EXPECT_EQ(k->check("HOST", 80, kA).status, HostKeyStatus::known);
  EXPECT_EQ(k->check("::1", 80, kB).status, HostKeyStatus::known);
  EXPECT_EQ(k->check("host", 81, kA).status, HostKeyStatus::unknown);  // the port is part of it
  EXPECT_EQ(k->check("other", 80, kA).status, HostKeyStatus::unknown);
  const auto changed = k->check("host", 80, kC);
  EXPECT_EQ(changed.status, HostKeyStatus::changed);
  EXPECT_EQ(changed.pinned, kA);
  EXPECT_EQ(changed.line, 1u);
}

TEST(KnownHosts, AnyPinnedKeyOfSeveralMatches) {
  auto k = KnownHosts::parse("host:80 " + kA + "\nhost:80 " + kB + "\n");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->check("host", 80, kB).status, HostKeyStatus::known);
  EXPECT_EQ(k->check("host", 80, kC).status, HostKeyStatus::changed);
}

TEST(KnownHosts, LineRoundTripsThroughTheParser) {
  for (const auto& [host, port] : {std::pair<std::string, std::uint16_t>{"10.0.0.1", 1},
                                   {"fe80::1", 65535},
                                   {"Name.Example", 8080}}) {
    const std::string line = known_hosts_line(host, port, kA);
    EXPECT_TRUE(line.ends_with('\n'));
    auto k = KnownHosts::parse(line);
    ASSERT_TRUE(k) << line << k.message();
    EXPECT_EQ(k->check(host, port, kA).status, HostKeyStatus::known) << line;
  }
}

TEST(KnownHostsFile, MissingFileIsEmptyThenAppendPinsAndLoadFindsIt) {
  TempDir dir;
  const std::string path = dir.file("cfg/duplex/known_hosts");
  auto empty = load_known_hosts(path);
  ASSERT_TRUE(empty) << empty.message();
  EXPECT_TRUE(empty->entries().empty());

  ASSERT_TRUE(append_known_host(path, "127.0.0.1", 9000, kA));
  ASSERT_TRUE(append_known_host(path, "::1", 9000, kB));
  auto k = load_known_hosts(path);
  ASSERT_TRUE(k) << k.message();
  EXPECT_EQ(k->check("127.0.0.1", 9000, kA).status, HostKeyStatus::known);
  EXPECT_EQ(k->check("::1", 9000, kB).status, HostKeyStatus::known);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(KnownHostsFile, AppendSocketThenLoadFindsItAndABadPathIsRefused) {
  test::TempDir dir;
  const std::string path = dir.file("known_hosts");
  ASSERT_TRUE(append_known_host(path, "h", 1, kA));
  ASSERT_TRUE(append_known_socket(path, "/run/d.sock", kB));
  auto k = load_known_hosts(path);
  ASSERT_TRUE(k) << k.message();
  ASSERT_EQ(k->entries().size(), 2u);
  EXPECT_EQ(k->entries()[1].name, "/run/d.sock");
  EXPECT_EQ(k->entries()[1].fingerprint, kB);
  EXPECT_FALSE(append_known_socket(path, "/run/my dir/d.sock", kB));
  EXPECT_FALSE(append_known_socket(path, "/run/e.sock", "SHA256:short"));
  auto again = load_known_hosts(path);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->entries().size(), 2u) << "nothing appended by a refusal";
}

TEST(KnownHostsFile, AppendAfterAHandEditWithoutFinalNewlineKeepsLinesApart) {
  TempDir dir;
  const std::string path = dir.file("known_hosts");
  std::ofstream(path) << "a:1 " << kA;  // no newline at the end
  ::chmod(path.c_str(), 0600);
  ASSERT_TRUE(append_known_host(path, "b", 2, kB));
  auto k = load_known_hosts(path);
  ASSERT_TRUE(k) << k.message();
  EXPECT_EQ(k->entries().size(), 2u);
}

TEST(KnownHostsFile, BadLineNamesTheFileAndLineAndAppendRefusesABadFingerprint) {
  TempDir dir;
  const std::string path = dir.file("known_hosts");
  std::ofstream(path) << "a:1 " << kA << "\ngarbage\n";
  ::chmod(path.c_str(), 0600);
  auto k = load_known_hosts(path);
  ASSERT_FALSE(k);
  EXPECT_TRUE(k.message().starts_with(path + ": line 2: ")) << k.message();
  EXPECT_FALSE(append_known_host(dir.file("other"), "a", 1, "SHA256:short"));
}

TEST(KnownHostsFile, WritableByOthersIsNotBelieved) {
  TempDir dir;
  const std::string path = dir.file("known_hosts");
  std::ofstream(path) << "a:1 " << kA << "\n";
  ::chmod(path.c_str(), 0622);
  auto k = load_known_hosts(path);
  ASSERT_FALSE(k);
  EXPECT_NE(k.message().find("writable by other users"), std::string::npos) << k.message();
}

}  // namespace
}  // namespace duplex
