// A TLS test client: dial over TLS (net::tls_dial, no key check), send bytes, read what comes back.
#pragma once

#include <functional>
#include <string>

namespace duplex::test {

/// What a TLS client (net::tls_dial) saw.
struct TlsTalk {
  std::string error;        // empty: the handshake worked
  std::string fingerprint;  // the server key's
  std::string received;
};

/// Dials `url` (tls://… or tls+unix://…) without checking the server's key, sends `send`, and
/// reads until `done(received)`, the end of the stream, or 10 s.
TlsTalk tls_talk(const std::string& url, const std::string& send,
                 const std::function<bool(const std::string&)>& done);

}  // namespace duplex::test
