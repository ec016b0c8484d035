// TLS contexts: the server's (our certificate, optional client certificates, session tickets) and
// the client's (no CA: the caller pins the server's key; a per-server session cache so that a
// reconnecting client resumes). TLS 1.3 only, both sides.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <string>

#include "duplex/core/result.hpp"
#include "duplex/net/asio.hpp"
#include "duplex/net/tls_identity.hpp"

#include <asio/ssl/context.hpp>

namespace duplex::net {

/// The server's context: TLS 1.3 only (AEAD suites: the only kind 1.3 has), `identity`'s
/// certificate and key; asks every client for a certificate but accepts any, or none: the session
/// checks the key's fingerprint against authorized_keys after the handshake. Stateless session
/// tickets (one per connection) for resumption; no server-side cache and no 0-RTT data.
Result<asio::ssl::context> make_server_context(const TlsIdentity& identity);

class SessionCache;

/// The client's context: TLS 1.3 only, no CA verification (the server's certificate is accepted
/// whatever signs it; the caller compares its fingerprint with known_hosts), the client's
/// certificate presented when it has one, and the sessions of earlier connections kept per server
/// so that the next connection resumes. Streams made from it may outlive it.
class TlsClientContext {
 public:
  /// `identity`: the key and certificate to present (`duplex keygen`), or null for none.
  static Result<std::unique_ptr<TlsClientContext>> create(const TlsIdentity* identity);

  asio::ssl::context& context() noexcept { return ctx_; }
  /// The presented key's fingerprint, empty without an identity.
  const std::string& identity_fingerprint() const noexcept { return identity_fp_; }

  /// Ties `ssl` (a connection about to shake hands) to `server` ("host:port", known_host_name()):
  /// offers the session kept from the last connection to it, and keeps the one this connection
  /// gets. Called by tls_connect().
  void prepare(SSL* ssl, const std::string& server);
  /// After the handshake of a connection prepare() offered a session to: a session the server did
  /// not resume is dropped (unless a newer one replaced it already), so that no later connection
  /// offers it again. OpenSSL 3.0's server sends no new ticket after refusing a session made under
  /// a suite of another hash (openssl/openssl#18549): kept, such a session (one from before our
  /// suite order changed, say) would cost every later connection a full handshake. Called by
  /// tls_connect().
  void settle(SSL* ssl);
  /// Sessions kept in memory (one per server).
  std::size_t session_count() const;
  /// Drops what is kept for `server` (e.g. after its key changed).
  void forget(const std::string& server);

  /// Sessions in a file, for a CLI that makes one connection per process. The file holds
  /// resumption secrets: a secret file (0600, ours, no symlink), replaced atomically on save.
  /// Loading a missing file is not an error; expired sessions and those made with another client
  /// key are skipped.
  Status load_sessions(const std::string& path);
  Status save_sessions(const std::string& path) const;

  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  ~TlsClientContext();

 private:
  TlsClientContext(asio::ssl::context ctx, std::shared_ptr<SessionCache> cache, std::string fp);

  asio::ssl::context ctx_;
  std::shared_ptr<SessionCache> cache_;
  std::string identity_fp_;
};

/// ${XDG_CONFIG_HOME:-~/.config}/duplex/tls_sessions: where the CLI keeps its sessions.
std::string default_tls_sessions_path();

}  // namespace duplex::net
