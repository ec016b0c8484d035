// Exec client for load: authentication (the token's proof is client/token_proof.hpp's) and one
// command's frames.
#include "duplex/loadgen/exec_client.hpp"

#include <fmt/format.h>

#include "duplex/client/token_proof.hpp"
#include "duplex/core/errors.hpp"
#include "duplex/wire/auth_proof.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::loadgen {
namespace {

template <class M>
Bytes encoded(const M& m) {
  Bytes f;
  wire::encode(m, f);
  return f;
}

Failure unexpected(const client::Connection& conn, wire::MsgType got, const char* where) {
  return fail(errc::unexpected_message, fmt::format("{} answered {} with {}", conn.endpoint().url(),
                                                    where, wire::type_name(got)));
}

}  // namespace

awaitable<Status> authenticate(client::Connection& conn, const std::string& token) {
  auto nonce = wire::make_nonce();
  if (!nonce) co_return std::move(nonce).failure();
  const wire::AuthStart start{*nonce};
  const Bytes hello = encoded(start);
  if (auto w = co_await conn.write(hello); !w) co_return w;
  auto r = co_await conn.read_frame();
  if (!r) co_return std::move(r).failure();
  if (r->type == wire::MsgType::auth_ok) co_return Status{};
  if (r->type != wire::MsgType::auth_challenge) co_return unexpected(conn, r->type, "AUTH_START");
  auto c = wire::decode_auth_challenge(r->payload);
  if (!c) co_return fail(errc::bad_message, "malformed AUTH_CHALLENGE");
  if (token.empty())
    co_return fail(errc::auth_failed,
                   "the server wants a token and none was found (DUPLEX_TOKEN, --token-file, "
                   "~/.config/duplex/token)");
  auto answer = client::answer_challenge(conn.stream(), token, start, *c);
  if (!answer) co_return std::move(answer).failure();
  if (!*answer)
    co_return fail(errc::auth_failed,
                   fmt::format("the server at {} does not know the token", conn.endpoint().url()));
  const Bytes proof = encoded(**answer);
  if (auto w = co_await conn.write(proof); !w) co_return w;
  auto ok = co_await conn.read_frame();
  if (!ok) co_return std::move(ok).failure();
  if (ok->type != wire::MsgType::auth_ok) co_return unexpected(conn, ok->type, "AUTH_PROOF");
  co_return Status{};
}

Bytes exec_frames(const std::string& command) {
  wire::ExecStart start;
  start.argv = {command};
  start.shell = true;
  Bytes out;
  wire::encode(start, out);
  wire::encode_frame(wire::MsgType::stdin_eof, {}, out);
  return out;
}

awaitable<Status> run_command(client::Connection& conn, const Bytes& frames) {
  if (auto w = co_await conn.write(frames); !w) co_return w;
  for (;;) {
    auto f = co_await conn.read_frame();
    if (!f) co_return std::move(f).failure();
    if (f->type != wire::MsgType::exit) continue;  // output and stdin windows: dropped
    auto e = wire::decode_exit(f->payload);
    if (!e) co_return fail(errc::bad_message, "malformed EXIT");
    if (e->how == wire::Exit::How::exited && e->code == 0) co_return Status{};
    co_return fail(errc::exec_failed,
                   e->how == wire::Exit::How::exited
                       ? fmt::format("the command exited with status {}", e->code)
                       : fmt::format("the command did not run to exit 0 (how {}, code {})",
                                     static_cast<int>(e->how), e->code));
  }
}

}  // namespace duplex::loadgen
