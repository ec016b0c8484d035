// `duplex fingerprint`: prints the local server's TLS key fingerprint (what its clients pin).
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <system_error>

#include "cli.hpp"
#include "duplex/net/tls_identity.hpp"

namespace duplex::app {
namespace {

struct FingerprintOptions {
  std::string tls_key;
};

int run_fingerprint(const FingerprintOptions& o) {
  const std::string path = o.tls_key.empty() ? net::default_server_key_path() : o.tls_key;
  auto fp = net::key_file_fingerprint(path);
  if (!fp) {
    if (fp.error() == std::error_code(ENOENT, std::system_category()))
      std::fprintf(stderr,
                   "duplex: no server key at %s: start `duplex serve --tls` once to make one\n",
                   path.c_str());
    else
      std::fprintf(stderr, "duplex: %s\n", fp.message().c_str());
    return kExitFailure;
  }
  std::printf("%s\n", fp->c_str());
  return kExitOk;
}

}  // namespace

CLI::App* add_fingerprint(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<FingerprintOptions>();
  auto* cmd = root.add_subcommand(
      "fingerprint",
      "Print the fingerprint (SHA256:…) of this machine's server TLS key, the one `duplex serve "
      "--tls` prints at start-up and clients pin");
  cmd->add_option("--tls-key", o->tls_key,
                  "Private key FILE (PEM) (default server_key.pem beside the token)")
      ->type_name("FILE");
  cmd->callback([o, &result] { result.code = run_fingerprint(*o); });
  return cmd;
}

}  // namespace duplex::app
