// TLS identity: a private key and the self-signed certificate that carries it (the server's, or a
// client's from `duplex keygen`), loaded from files or made on first use, and its fingerprint.
#pragma once

#include <openssl/types.h>

#include <memory>
#include <string>
#include <string_view>

#include "duplex/core/result.hpp"

namespace duplex::net {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept;
};
struct X509Free {
  void operator()(X509* p) const noexcept;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

struct TlsIdentity {
  PkeyPtr key;
  X509Ptr cert;             // self-signed, carries `key`; only the key is ever pinned
  std::string fingerprint;  // of the key: what known_hosts and authorized_keys hold
  bool created = false;     // made by this call (print the fingerprint: someone must pin it)
};

/// ${XDG_CONFIG_HOME:-~/.config}/duplex/server_key.pem and server_cert.pem (beside the token).
std::string default_server_key_path();
std::string default_server_cert_path();
/// ${XDG_CONFIG_HOME:-~/.config}/duplex/id_ed25519: the client's key and certificate, one file.
std::string default_client_key_path();

/// "SHA256:" + unpadded base64 of SHA-256 over the key's DER SubjectPublicKeyInfo (as ssh prints
/// fingerprints; the hash is over the public key only, so a new certificate keeps it).
/// The newest OpenSSL error as a Failure: the library's reason after our one-line context
/// (`what`), and the queue cleared.
Failure openssl_failure(std::string_view what);

Result<std::string> key_fingerprint(EVP_PKEY* key);
Result<std::string> certificate_fingerprint(X509* cert);
/// The fingerprint of the key in `key_path` (a secret file, read as load_identity reads it),
/// without its certificate: what `duplex fingerprint` prints. A missing file fails with ENOENT.
Result<std::string> key_file_fingerprint(const std::string& key_path);

/// A fresh Ed25519 key and a self-signed X.509 certificate for it (CN `common_name`, valid from an
/// hour ago for 100 years: the pin is what is checked, never the dates). In memory only.
Result<TlsIdentity> generate_identity(std::string_view common_name);

/// Loads a key (a secret file: ours, 0600 or stricter, no symlink) and the certificate carrying it
/// (`cert_path` may be `key_path`: one file with both PEM blocks). Passphrase-protected keys are
/// refused (a server starts unattended). Details are one line naming the file.
Result<TlsIdentity> load_identity(const std::string& key_path, const std::string& cert_path);

/// Writes `id` as PEM: the key 0600 with O_EXCL|O_NOFOLLOW (never over an existing file), the
/// certificate likewise; both in one file when the paths are equal. Directories are made 0700.
Status save_identity(const TlsIdentity& id, const std::string& key_path,
                     const std::string& cert_path);

/// Loads the identity, or makes it on first use: no key file → a new key and certificate;
/// a key without its certificate (separate files) → a new certificate for the same key (the
/// fingerprint stays). A certificate without its key is refused rather than replaced.
Result<TlsIdentity> load_or_create_identity(const std::string& key_path,
                                            const std::string& cert_path,
                                            std::string_view common_name);

}  // namespace duplex::net
