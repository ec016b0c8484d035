// The client's half of the token's challenge-response, shared by the exec client and `duplex
// bench`.
#pragma once

#include <optional>
#include <string_view>

#include "duplex/core/result.hpp"
#include "duplex/net/stream.hpp"
#include "duplex/wire/messages.hpp"

namespace duplex::client {

/// Answers an AUTH_CHALLENGE with `token` on `stream` (docs/PROTOCOL.md, exec): the server's
/// proof is checked first (constant time), bound to this stream's TLS secrets when it has some.
/// nullopt when the server's proof is wrong: it does not know the token, so prove nothing to it.
/// Fails only when the channel binding cannot be read.
Result<std::optional<wire::AuthProof>> answer_challenge(net::Stream& stream, std::string_view token,
                                                        const wire::AuthStart& start,
                                                        const wire::AuthChallenge& challenge);

}  // namespace duplex::client
