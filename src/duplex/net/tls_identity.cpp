// TLS identity: Ed25519 keys and self-signed certificates with OpenSSL 3, PEM files on disk.
#include "duplex/net/tls_identity.hpp"

#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <array>
#include <cerrno>
#include <climits>
#include <string>

#include <fmt/format.h>

#include "duplex/core/fingerprint.hpp"
#include "duplex/core/secure_file.hpp"
#include "duplex/net/asio.hpp"

#include <asio/ssl/error.hpp>

namespace duplex::net {

Failure openssl_failure(std::string_view what) {
  const unsigned long e = ERR_peek_last_error();
  std::array<char, 256> text{};
  if (e != 0) ERR_error_string_n(e, text.data(), text.size());
  ERR_clear_error();
  const std::error_code code(static_cast<int>(e != 0 ? ERR_GET_REASON(e) : 0),
                             asio::error::get_ssl_category());
  if (e == 0) return fail(std::errc::invalid_argument, std::string(what));
  return fail(code, fmt::format("{}: {}", what, text.data()));
}

namespace {

struct BioFree {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct BnFree {
  void operator()(BIGNUM* b) const noexcept { BN_free(b); }
};

constexpr long kValidityDays = 100L * 365;

// Wipes a PEM-encoded key once it is no longer needed (it may sit in freed heap memory otherwise).
struct Wiped {
  std::string text;
  ~Wiped() { OPENSSL_cleanse(text.data(), text.size()); }
};

BioPtr memory_bio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

// A server starts unattended: never prompt on the terminal for a passphrase.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

Result<PkeyPtr> parse_key(std::string_view pem, const std::string& path) {
  if (pem.size() > INT_MAX) return fail(std::errc::file_too_large, path);
  auto bio = memory_bio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, &no_passphrase, nullptr));
  if (!key)
    return openssl_failure(fmt::format(
        "{} holds no private key duplex can use (passphrases are not supported)", path));
  return key;
}

Result<X509Ptr> parse_cert(std::string_view pem, const std::string& path) {
  if (pem.size() > INT_MAX) return fail(std::errc::file_too_large, path);
  auto bio = memory_bio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, &no_passphrase, nullptr));
  if (!cert) return openssl_failure(fmt::format("{} holds no certificate", path));
  return cert;
}

Result<X509Ptr> self_signed(EVP_PKEY* key, std::string_view common_name) {
  X509Ptr cert(X509_new());
  if (!cert) return openssl_failure("cannot make a certificate");
  // A random positive 63-bit serial: certificates from one key stay distinguishable.
  std::array<unsigned char, 8> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    return openssl_failure("cannot draw a serial number");
  raw[0] &= 0x7f;
  std::unique_ptr<BIGNUM, BnFree> serial(
      BN_bin2bn(raw.data(), static_cast<int>(raw.size()), nullptr));
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn(common_name);
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 || !serial ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(kValidityDays), 0,
                       nullptr) == nullptr ||
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key) != 1)
    return openssl_failure("cannot fill in the certificate");
  // Ed25519 signs the message itself: no separate digest (RFC 8410), hence the null md.
  const EVP_MD* md = EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), key, md) <= 0) return openssl_failure("cannot sign the certificate");
  return cert;
}

Result<std::string> key_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return openssl_failure("cannot encode the private key");
  std::string out = bio_text(bio.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  if (n > 0) OPENSSL_cleanse(data, static_cast<std::size_t>(n));
  return out;
}

Result<std::string> cert_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
    return openssl_failure("cannot encode the certificate");
  return bio_text(bio.get());
}

bool missing(const Failure& f) {
  return f.code == std::error_code(ENOENT, std::system_category());
}

Result<TlsIdentity> with_fingerprint(PkeyPtr key, X509Ptr cert) {
  auto fp = key_fingerprint(key.get());
  if (!fp) return std::move(fp).failure();
  return TlsIdentity{std::move(key), std::move(cert), std::move(*fp), false};
}

// SHA-256 of a SubjectPublicKeyInfo's DER, as ssh prints it ("SHA256:" + unpadded base64).
Result<std::string> spki_fingerprint(unsigned char* der, int len) {
  if (len <= 0) return openssl_failure("cannot encode the public key");
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  const int ok = EVP_Digest(der, static_cast<std::size_t>(len), digest.data(), &digest_len,
                            EVP_sha256(), nullptr);
  OPENSSL_free(der);
  if (ok != 1 || digest_len != 32) return openssl_failure("cannot hash the public key");
  std::array<unsigned char, 4 * 33 / 3 + 1> b64{};  // EVP_EncodeBlock writes 44 + NUL
  const int n = EVP_EncodeBlock(b64.data(), digest.data(), 32);
  std::string out(kFingerprintPrefix);
  out.append(reinterpret_cast<const char*>(b64.data()), static_cast<std::size_t>(n));
  while (out.ends_with('='))
    out.pop_back();  // ssh prints fingerprints unpadded
  return out;
}

}  // namespace

void PkeyFree::operator()(EVP_PKEY* p) const noexcept {
  EVP_PKEY_free(p);
}
void X509Free::operator()(X509* p) const noexcept {
  X509_free(p);
}

std::string default_server_key_path() {
  return config_path("server_key.pem");
}
std::string default_server_cert_path() {
  return config_path("server_cert.pem");
}
std::string default_client_key_path() {
  return config_path("id_ed25519");
}

Result<std::string> key_fingerprint(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  return spki_fingerprint(der, len);
}

Result<std::string> certificate_fingerprint(X509* cert) {
  if (X509_get0_pubkey(cert) == nullptr)
    return openssl_failure("the certificate carries no usable public key");
  // The certificate's own SubjectPublicKeyInfo, the same DER i2d_PUBKEY makes of its key, without
  // OpenSSL 3's encoder lookup (a third of a TLS client's start-up beyond the handshake).
  unsigned char* der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  return spki_fingerprint(der, len);
}

Result<TlsIdentity> generate_identity(std::string_view common_name) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return openssl_failure("cannot generate an Ed25519 key");
  auto cert = self_signed(key.get(), common_name);
  if (!cert) return std::move(cert).failure();
  auto id = with_fingerprint(std::move(key), std::move(*cert));
  if (id) id->created = true;
  return id;
}

Result<std::string> key_file_fingerprint(const std::string& key_path) {
  auto key_text = read_private_file(key_path, FileTrust::secret, 1 << 16);
  if (!key_text) return std::move(key_text).failure();
  Wiped secret{std::move(*key_text)};
  auto key = parse_key(secret.text, key_path);
  if (!key) return std::move(key).failure();
  return key_fingerprint(key->get());
}

Result<TlsIdentity> load_identity(const std::string& key_path, const std::string& cert_path) {
  auto key_text = read_private_file(key_path, FileTrust::secret, 1 << 16);
  if (!key_text) return std::move(key_text).failure();
  Wiped secret{std::move(*key_text)};
  auto key = parse_key(secret.text, key_path);
  if (!key) return std::move(key).failure();

  Result<X509Ptr> cert = Failure{};
  if (cert_path == key_path) {
    cert = parse_cert(secret.text, cert_path);
  } else {
    auto cert_text = read_private_file(cert_path, FileTrust::trusted, 1 << 16);
    if (!cert_text) return std::move(cert_text).failure();
    cert = parse_cert(*cert_text, cert_path);
  }
  if (!cert) return std::move(cert).failure();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return fail(std::errc::invalid_argument,
                fmt::format("certificate {} does not carry the key in {}", cert_path, key_path));
  }
  return with_fingerprint(std::move(*key), std::move(*cert));
}

Status save_identity(const TlsIdentity& id, const std::string& key_path,
                     const std::string& cert_path) {
  auto key = key_pem(id.key.get());
  if (!key) return std::move(key).failure();
  Wiped secret{std::move(*key)};
  auto cert = cert_pem(id.cert.get());
  if (!cert) return std::move(cert).failure();
  if (key_path == cert_path) return create_private_file(key_path, secret.text + *cert);
  if (auto ok = create_private_file(key_path, secret.text); !ok) return ok;
  return create_private_file(cert_path, *cert);
}

Result<TlsIdentity> load_or_create_identity(const std::string& key_path,
                                            const std::string& cert_path,
                                            std::string_view common_name) {
  auto loaded = load_identity(key_path, cert_path);
  if (loaded || !missing(loaded.failure())) return loaded;

  // Which file is missing decides what to make. The key is never replaced: peers pin it.
  auto key_text = read_private_file(key_path, FileTrust::secret, 1 << 16);
  if (key_text) {
    Wiped secret{std::move(*key_text)};
    auto key = parse_key(secret.text, key_path);
    if (!key) return std::move(key).failure();
    auto cert = self_signed(key->get(), common_name);
    if (!cert) return std::move(cert).failure();
    auto pem = cert_pem(cert->get());
    if (!pem) return std::move(pem).failure();
    if (auto ok = create_private_file(cert_path, *pem); !ok) return std::move(ok).failure();
    return with_fingerprint(std::move(*key), std::move(*cert));
  }
  if (!missing(key_text.failure())) return std::move(key_text).failure();
  if (cert_path != key_path && ::access(cert_path.c_str(), F_OK) == 0)
    return fail(std::errc::file_exists,
                fmt::format("certificate {} exists but its key {} does not; remove the certificate "
                            "to make a new key (peers that pinned the old one will refuse it)",
                            cert_path, key_path));

  auto id = generate_identity(common_name);
  if (!id) return id;
  if (auto ok = save_identity(*id, key_path, cert_path); !ok) {
    // Another process made it first (O_EXCL): use theirs, so that both agree on one key.
    if (ok.error() == std::error_code(EEXIST, std::system_category()))
      return load_identity(key_path, cert_path);
    return std::move(ok).failure();
  }
  return id;
}

}  // namespace duplex::net
