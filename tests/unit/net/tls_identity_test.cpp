// Tests for net/tls_identity.hpp: fingerprints against values computed by the openssl CLI,
// first-use creation (modes, O_EXCL), reloading, a lost certificate remade for the same key, and
// every refusal.
#include "duplex/net/tls_identity.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "duplex/core/fingerprint.hpp"
#include "support/process.hpp"

namespace duplex::net {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// A throwaway Ed25519 key; its fingerprint was computed outside duplex with
//   openssl pkey -in k.pem -pubout -outform DER | openssl dgst -sha256 -binary | base64 | tr -d =
constexpr const char* kEd25519Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIEg/4+swkk3H/3gpankf2SJGVZ2qU3sPIbiBcVwbKtwn\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* kEd25519Fingerprint = "SHA256:L8zbTJqgY+ZK5esJEiRCNsmOgsnsaPf9Y/mnlqCnv34";

// A P-256 key and a certificate made for it by `openssl req -x509` (bring your own).
constexpr const char* kP256Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZOdrzI9VnaOcEbUQ\n"
    "a39VKbaZCzRvMnux+GyNiq/hRgWhRANCAATE56hOYzA3YMVM8z8EhdBMzDjQ2Qqq\n"
    "3eAEs5uZ5ycH5fmUFVUc5iUcck2uKHLEg7+nepWY97Suqze4+gF1/1GF\n"
    "-----END PRIVATE KEY-----\n";
constexpr const char* kP256Cert =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBcTCCARegAwIBAgIUVNIx7ApiF2ee29xixS1+MDHwvsMwCgYIKoZIzj0EAwIw\n"
    "DjEMMAoGA1UEAwwDYnlvMB4XDTI2MTEyOTA5NDY1N1oXDTI2MTIyOTA5NDY1N1ow\n"
    "DjEMMAoGA1UEAwwDYnlvMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExOeoTmMw\n"
    "N2DFTPM/BIXQTMw40NkKqt3gBLObmecnB+X5lBVVHOYlHHJNrihyxIO/p3qVmPe0\n"
    "rqs3uPoBdf9RhaNTMFEwHQYDVR0OBBYEFGqzjItSawEVp8k8cOYHx6FhD4SWMB8G\n"
    "A1UdIwQYMBaAFGqzjItSawEVp8k8cOYHx6FhD4SWMA8GA1UdEwEB/wQFMAMBAf8w\n"
    "CgYIKoZIzj0EAwIDSAAwRQIhAOq+d4mfPOt8wYk5tdYlZM4hXX2robbgirgf5qmn\n"
    "hsHOAiB8kH6tUcAiBaPJEPo1aM5KJONEBBiHab7y8+BhAO4kiQ==\n"
    "-----END CERTIFICATE-----\n";
constexpr const char* kP256Fingerprint = "SHA256:E8lBi9Uc0n3uQwrjFeKQLzsIbAPlYPK4WraS5MTVEWc";

void write_file(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

bool one_line(const std::string& s) {
  return !s.empty() && s.find('\n') == std::string::npos;
}

TEST(TlsIdentity, FingerprintMatchesTheOpensslCli) {
  TempDir dir;
  // The certificate is made here; the fingerprint covers only the key, so it must not matter.
  write_file(dir.file("key"), kEd25519Pem);
  auto id = load_or_create_identity(dir.file("key"), dir.file("cert"), "test");
  ASSERT_TRUE(id) << id.message();
  EXPECT_EQ(id->fingerprint, kEd25519Fingerprint);
  EXPECT_FALSE(id->created);
  auto from_cert = certificate_fingerprint(id->cert.get());
  ASSERT_TRUE(from_cert);
  EXPECT_EQ(*from_cert, kEd25519Fingerprint);

  write_file(dir.file("p256.key"), kP256Pem);
  write_file(dir.file("p256.crt"), kP256Cert, 0644);
  auto p256 = load_identity(dir.file("p256.key"), dir.file("p256.crt"));
  ASSERT_TRUE(p256) << p256.message();
  EXPECT_EQ(p256->fingerprint, kP256Fingerprint);
}

TEST(TlsIdentity, GeneratedIsEd25519SelfSignedForManyYears) {
  auto id = generate_identity("duplex test");
  ASSERT_TRUE(id) << id.message();
  EXPECT_TRUE(id->created);
  EXPECT_TRUE(check_fingerprint(id->fingerprint)) << id->fingerprint;
  EXPECT_EQ(EVP_PKEY_get_id(id->key.get()), EVP_PKEY_ED25519);
  EXPECT_EQ(X509_check_private_key(id->cert.get(), id->key.get()), 1);
  // Self-signed: the signature verifies with the certificate's own key.
  EXPECT_EQ(X509_verify(id->cert.get(), id->key.get()), 1);
  // Valid now, and still in 50 years.
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(id->cert.get())), 0);
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(id->cert.get())), 1);
  EXPECT_GT(days, 50 * 365);
  // Two keys, two fingerprints.
  EXPECT_NE(generate_identity("x")->fingerprint, id->fingerprint);
}

TEST(TlsIdentity, FirstUseCreatesOwnerOnlyFilesAndLaterLoadsTheSameKey) {
  TempDir dir;
  const std::string key = dir.file("cfg/duplex/server_key.pem");
  const std::string cert = dir.file("cfg/duplex/server_cert.pem");
  auto first = load_or_create_identity(key, cert, "duplex server");
  ASSERT_TRUE(first) << first.message();
  EXPECT_TRUE(first->created);
  EXPECT_EQ(mode_of(key), 0600u);
  EXPECT_EQ(mode_of(cert), 0600u);
  EXPECT_EQ(mode_of(dir.file("cfg/duplex")), 0700u);

  auto again = load_or_create_identity(key, cert, "duplex server");
  ASSERT_TRUE(again) << again.message();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->fingerprint, first->fingerprint);
}

TEST(TlsIdentity, LostCertificateIsRemadeForTheSameKey) {
  TempDir dir;
  const std::string key = dir.file("k"), cert = dir.file("c");
  auto first = load_or_create_identity(key, cert, "s");
  ASSERT_TRUE(first);
  ASSERT_TRUE(fs::remove(cert));
  auto again = load_or_create_identity(key, cert, "s");
  ASSERT_TRUE(again) << again.message();
  EXPECT_EQ(again->fingerprint, first->fingerprint);  // pins stay valid
  EXPECT_TRUE(fs::exists(cert));
}

TEST(TlsIdentity, CertificateWithoutItsKeyIsRefusedNotReplaced) {
  TempDir dir;
  const std::string key = dir.file("k"), cert = dir.file("c");
  ASSERT_TRUE(load_or_create_identity(key, cert, "s"));
  ASSERT_TRUE(fs::remove(key));
  auto r = load_or_create_identity(key, cert, "s");
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("exists but its key"), std::string::npos) << r.message();
  EXPECT_FALSE(fs::exists(key));
}

TEST(TlsIdentity, ClientKeyAndCertificateInOneFile) {
  TempDir dir;
  const std::string path = dir.file("id_ed25519");
  auto made = load_or_create_identity(path, path, "duplex client");
  ASSERT_TRUE(made) << made.message();
  EXPECT_TRUE(made->created);
  EXPECT_EQ(mode_of(path), 0600u);
  std::ifstream f(path);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_NE(text.find("BEGIN CERTIFICATE"), std::string::npos);
  auto loaded = load_identity(path, path);
  ASSERT_TRUE(loaded) << loaded.message();
  EXPECT_EQ(loaded->fingerprint, made->fingerprint);
}

TEST(TlsIdentity, KeyFileOthersCanReadOrThatIsALinkIsRefused) {
  TempDir dir;
  write_file(dir.file("key"), kEd25519Pem, 0644);
  auto r = load_or_create_identity(dir.file("key"), dir.file("cert"), "s");
  ASSERT_FALSE(r);
  EXPECT_NE(r.message().find("chmod 600"), std::string::npos) << r.message();
  EXPECT_FALSE(fs::exists(dir.file("cert")));  // refused, not worked around

  write_file(dir.file("real"), kEd25519Pem, 0600);
  fs::create_symlink(dir.file("real"), dir.file("link"));
  auto l = load_identity(dir.file("link"), dir.file("link"));
  ASSERT_FALSE(l);
  EXPECT_NE(l.message().find("symbolic link"), std::string::npos) << l.message();
}

TEST(TlsIdentity, MismatchedGarbageAndEncryptedFilesGiveOneLine) {
  TempDir dir;
  auto other = generate_identity("other");
  ASSERT_TRUE(other);
  ASSERT_TRUE(save_identity(*other, dir.file("other.key"), dir.file("other.crt")));
  write_file(dir.file("key"), kEd25519Pem);

  auto mismatch = load_identity(dir.file("key"), dir.file("other.crt"));
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.message().find("does not carry the key"), std::string::npos)
      << mismatch.message();
  EXPECT_TRUE(one_line(mismatch.message()));

  write_file(dir.file("garbage"), "not a key\n");
  auto garbage = load_identity(dir.file("garbage"), dir.file("other.crt"));
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.message().find(dir.file("garbage")), std::string::npos) << garbage.message();
  EXPECT_TRUE(one_line(garbage.message())) << garbage.message();

  // An encrypted key would need a passphrase: refused, never prompted for.
  constexpr const char* kEncrypted =
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
      "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhnENi1sm792AICCAAw\n"
      "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEEJai7d6+FzCHywrifnWtfQoEQJLu\n"
      "dYKbLqPUywUshWR4EwnBQIUljL1M1ik/k8vZiGm9B9p7vV3s80weTUsjfIlilfRD\n"
      "R+QmSnAPSIr/+rZk3/4=\n"
      "-----END ENCRYPTED PRIVATE KEY-----\n";
  write_file(dir.file("enc"), kEncrypted);
  auto enc = load_identity(dir.file("enc"), dir.file("other.crt"));
  ASSERT_FALSE(enc);
  EXPECT_NE(enc.message().find("passphrases are not supported"), std::string::npos)
      << enc.message();
}

TEST(TlsIdentity, SaveNeverOverwrites) {
  TempDir dir;
  auto a = generate_identity("a");
  auto b = generate_identity("b");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(save_identity(*a, dir.file("k"), dir.file("c")));
  auto again = save_identity(*b, dir.file("k"), dir.file("c"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::error_code(EEXIST, std::system_category()));
  EXPECT_EQ(load_identity(dir.file("k"), dir.file("c"))->fingerprint, a->fingerprint);
}

TEST(TlsIdentity, DefaultPathsSitBesideTheToken) {
  ::setenv("XDG_CONFIG_HOME", "/cfg", 1);
  EXPECT_EQ(default_server_key_path(), "/cfg/duplex/server_key.pem");
  EXPECT_EQ(default_server_cert_path(), "/cfg/duplex/server_cert.pem");
  EXPECT_EQ(default_client_key_path(), "/cfg/duplex/id_ed25519");
  ::unsetenv("XDG_CONFIG_HOME");
}

}  // namespace
}  // namespace duplex::net
