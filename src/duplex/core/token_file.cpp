// Token file helpers: the file holds one line of 64 lowercase hex digits, read only from a private
// file that is ours (secure_file.hpp: no symlink, owner, mode, StrictModes directory).
#include "duplex/core/token_file.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "duplex/core/secure_file.hpp"

namespace duplex {
namespace {

constexpr std::size_t kTokenHexDigits = 64;

bool generated_form(std::string_view t) {
  return t.size() == kTokenHexDigits &&
         t.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

}  // namespace

std::string default_token_path() {
  return config_path("token");
}

Result<std::string> read_token_file(const std::string& path) {
  // A token file is at most a line: anything much larger is not one.
  auto text = read_private_file(path, FileTrust::secret, 4096);
  if (!text) return std::move(text).failure();
  std::string_view t(*text);
  if (t.ends_with('\n')) t.remove_suffix(1);
  if (t.empty())
    return fail(std::errc::invalid_argument,
                fmt::format("token file {} is empty; remove it and `duplex serve --exec` makes a "
                            "new one",
                            path));
  if (!generated_form(t))
    return fail(std::errc::invalid_argument,
                fmt::format("token file {} does not hold a token as duplex makes them (one line of "
                            "64 lowercase hex digits); remove it and `duplex serve --exec` makes a "
                            "new one",
                            path));
  return std::string(t);
}

Result<std::string> load_or_create_token_file(const std::string& path) {
  std::array<unsigned char, kTokenHexDigits / 2> raw{};
  if (::getrandom(raw.data(), raw.size(), 0) != static_cast<ssize_t>(raw.size()))
    return fail(std::error_code(errno, std::system_category()),
                "cannot generate a token: getrandom failed");
  const std::string token = fmt::format("{:02x}", fmt::join(raw, ""));
  // O_CREAT|O_EXCL|O_NOFOLLOW: anything already there (a file, a link, another process's fresh
  // token) is read instead, with every check of read_token_file.
  if (auto made = create_private_file(path, token + "\n"); made)
    return token;
  else if (made.error() != std::error_code(EEXIST, std::system_category()))
    return std::move(made).failure();
  return read_token_file(path);
}

Result<ResolvedToken> resolve_token_with_source(const std::string& token_file) {
  if (!token_file.empty()) {
    auto token = read_token_file(token_file);
    if (!token) return std::move(token).failure();
    return ResolvedToken{std::move(*token), "--token-file " + token_file};
  }
  if (const char* t = std::getenv("DUPLEX_TOKEN"); t && *t)
    return ResolvedToken{std::string(t), "$DUPLEX_TOKEN"};
  const std::string path = default_token_path();
  auto token = read_token_file(path);
  // No file: the server may know us by the transport (SO_PEERCRED, a client key).
  if (!token && token.error() == std::error_code(ENOENT, std::system_category()))
    return ResolvedToken{};
  if (!token) return std::move(token).failure();
  return ResolvedToken{std::move(*token), path};
}

Result<std::string> resolve_token(const std::string& token_file) {
  auto r = resolve_token_with_source(token_file);
  if (!r) return std::move(r).failure();
  return std::move(r->token);
}

}  // namespace duplex
