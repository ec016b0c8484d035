// `duplex keygen [-f FILE] [--force]`: makes the client's key (Ed25519, with a self-signed
// certificate carrying it, one 0600 file) and prints its authorized_keys line.
#include <pwd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli.hpp"
#include "duplex/net/tls_identity.hpp"

namespace duplex::app {
namespace {

struct KeygenOptions {
  std::string file;
  bool force = false;
};

// "alice@laptop": the comment that tells this key apart in the server's authorized_keys.
std::string key_comment() {
  const passwd* pw = ::getpwuid(::geteuid());
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return fmt::format("{}@{}", pw != nullptr ? pw->pw_name : std::to_string(::geteuid()),
                     host[0] != '\0' ? host.data() : "localhost");
}

int run_keygen(const KeygenOptions& o) {
  setup_logging(verbosity().verbose, verbosity().quiet, /*server=*/false);
  const std::string path = o.file.empty() ? net::default_client_key_path() : o.file;
  if (!o.force && ::access(path.c_str(), F_OK) == 0) {
    std::fprintf(stderr,
                 "duplex: %s already exists (--force replaces it; servers that list its "
                 "key will refuse the new one)\n",
                 path.c_str());
    return kExitFailure;
  }
  const std::string comment = key_comment();
  auto id = net::generate_identity(comment);
  if (!id) {
    std::fprintf(stderr, "duplex: %s\n", id.message().c_str());
    return kExitFailure;
  }
  // Written beside the target and renamed over it: with --force an old key is replaced whole or
  // not at all, and the new file is made with O_EXCL (never through a planted link).
  const std::string fresh = fmt::format("{}.new.{}", path, ::getpid());
  if (auto ok = net::save_identity(*id, fresh, fresh); !ok) {
    std::fprintf(stderr, "duplex: %s\n", ok.message().c_str());
    return kExitFailure;
  }
  // Without --force, link(2) puts it in place only if nothing is there yet (EEXIST otherwise).
  const int placed =
      o.force ? ::rename(fresh.c_str(), path.c_str()) : ::link(fresh.c_str(), path.c_str());
  const int err = errno;
  ::unlink(fresh.c_str());
  if (placed != 0) {
    std::fprintf(stderr, "duplex: cannot write %s: %s\n", path.c_str(), std::strerror(err));
    return kExitFailure;
  }
  std::fprintf(stderr,
               "duplex: client key saved in %s; add this line to the server's "
               "authorized_keys:\n",
               path.c_str());
  std::printf("%s %s\n", id->fingerprint.c_str(), comment.c_str());
  return std::fflush(stdout) == 0 ? kExitOk : kExitFailure;
}

}  // namespace

CLI::App* add_keygen(CLI::App& root, CommandResult& result) {
  auto o = std::make_shared<KeygenOptions>();
  auto* cmd = root.add_subcommand(
      "keygen",
      "Make a client key for TLS (Ed25519, 0600) and print its fingerprint as the line for the "
      "server's authorized_keys");
  cmd->add_option("-f,--file", o->file, "Where to write it (default: ~/.config/duplex/id_ed25519)")
      ->type_name("FILE");
  cmd->add_flag("--force", o->force, "Replace an existing key");
  cmd->callback([o, &result] { result.code = run_keygen(*o); });
  return cmd;
}

}  // namespace duplex::app
