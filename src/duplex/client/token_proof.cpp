// answer_challenge: the server proves it knows the token before we prove it (wire/auth_proof.hpp).
#include "duplex/client/token_proof.hpp"

#include "duplex/wire/auth_proof.hpp"

namespace duplex::client {

Result<std::optional<wire::AuthProof>> answer_challenge(net::Stream& stream, std::string_view token,
                                                        const wire::AuthStart& start,
                                                        const wire::AuthChallenge& challenge) {
  const wire::AuthBlock key = wire::auth_key(token);
  wire::AuthBlock binding{};
  if (stream.encrypted()) {
    auto b = stream.channel_binding(wire::kAuthBindingLabel);
    if (!b) return std::move(b).failure();
    binding = *b;
  }
  const auto expected = wire::auth_proof(wire::ProofRole::server, key, binding, start.client_nonce,
                                         challenge.server_nonce);
  if (!wire::same_proof(expected, challenge.server_proof)) return std::optional<wire::AuthProof>();
  return std::optional<wire::AuthProof>(wire::AuthProof{wire::auth_proof(
      wire::ProofRole::client, key, binding, start.client_nonce, challenge.server_nonce)});
}

}  // namespace duplex::client
