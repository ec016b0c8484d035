// Tests for wire/auth_proof.hpp: the proofs against vectors computed independently (Python's
// hmac/hashlib, the values in docs/PROTOCOL.md), and what each input changes.
#include "duplex/wire/auth_proof.hpp"

#include <gtest/gtest.h>

#include <string>

namespace duplex::wire {
namespace {

std::string hex(const AuthBlock& b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (auto x : b) {
    const auto v = std::to_integer<unsigned>(x);
    out += kHex[v >> 4];
    out += kHex[v & 15];
  }
  return out;
}

AuthBlock counting(int first) {
  AuthBlock b{};
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<std::byte>(first + static_cast<int>(i));
  return b;
}

// python3: K = sha256(b"sesame"); hmac.new(K, b"duplex-auth server v1" + bytes(32) +
// bytes(range(32)) + bytes(range(32, 64)), sha256)
TEST(AuthProof, MatchesIndependentVectors) {
  const AuthBlock k = auth_key("sesame");
  EXPECT_EQ(hex(k), "d0c04f4b1951e4aeaaec8223ed2039e542f3aae805a6fa7f6d794e5afff5d272");
  const AuthBlock zero{};
  EXPECT_EQ(hex(auth_proof(ProofRole::server, k, zero, counting(0), counting(32))),
            "f03c71736bdef92c394bb0b64187b19b78ed369d857a256511b163b2f2544f8c");
  EXPECT_EQ(hex(auth_proof(ProofRole::client, k, zero, counting(0), counting(32))),
            "18f63adf76691392906a4f23fa94675bfdf841e0dc4d42da53b220d9401c1763");
}

TEST(AuthProof, EveryInputChangesTheProof) {
  const AuthBlock k = auth_key("sesame");
  const AuthBlock b{}, nc = counting(0), ns = counting(32);
  const AuthBlock base = auth_proof(ProofRole::client, k, b, nc, ns);
  EXPECT_FALSE(same_proof(base, auth_proof(ProofRole::server, k, b, nc, ns)));
  EXPECT_FALSE(same_proof(base, auth_proof(ProofRole::client, auth_key("sesamE"), b, nc, ns)));
  EXPECT_FALSE(same_proof(base, auth_proof(ProofRole::client, k, counting(1), nc, ns)));
  EXPECT_FALSE(same_proof(base, auth_proof(ProofRole::client, k, b, counting(1), ns)));
  EXPECT_FALSE(same_proof(base, auth_proof(ProofRole::client, k, b, nc, counting(33))));
  // The nonces are not interchangeable either.
  EXPECT_FALSE(same_proof(base, auth_proof(ProofRole::client, k, b, ns, nc)));
  EXPECT_TRUE(same_proof(base, auth_proof(ProofRole::client, k, b, nc, ns)));
}

TEST(AuthProof, NoncesAreFresh) {
  auto a = make_nonce();
  auto b = make_nonce();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(same_proof(*a, *b));
  EXPECT_NE(hex(*a), std::string(64, '0'));
}

}  // namespace
}  // namespace duplex::wire
