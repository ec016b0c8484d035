// Trust in a TLS server's key, as ssh's StrictHostKeyChecking decides it: known_hosts,
// --fingerprint,
// --trust accept-new, or the user asked on the terminal. The decision is pure; only
// check_server_key touches the known_hosts file and /dev/tty.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "duplex/client/connection.hpp"
#include "duplex/core/known_hosts.hpp"
#include "duplex/core/result.hpp"
#include "duplex/net/endpoint.hpp"

namespace duplex::client {

enum class TrustVerdict {
  go_on,            // known_hosts pins this very key
  pin,              // first contact, and --fingerprint matches or --trust accept-new: pin, go on
  ask,              // first contact on a terminal: ask the user
  refuse_changed,   // known_hosts pins another key: refused whatever the options say
  refuse_mismatch,  // --fingerprint names another key than the server showed
  refuse_unknown,   // first contact and nobody to ask
};

/// What to do about `offered` given what known_hosts says (`known`) and the options. Pure.
TrustVerdict decide_trust(const HostKeyCheck& known, std::string_view offered,
                          const TrustOptions& opt) noexcept;

/// The name `ep` is pinned under (and its TLS sessions kept under): "host:port" or "[v6]:port"
/// as known_host_name() spells it; for a Unix socket, its path.
std::string pin_name(const net::Endpoint& ep);

/// The one-line refusals (without the "duplex: " every command puts in front), for tests too.
std::string changed_key_message(std::string_view name, std::size_t line, std::string_view pinned,
                                std::string_view offered, std::string_view known_hosts_path);
std::string mismatch_message(std::string_view name, std::string_view expected,
                             std::string_view offered);
std::string unknown_host_message(std::string_view name, std::string_view offered);
/// The question asked on the terminal about an unknown key (ssh's words).
std::string trust_question(std::string_view name, std::string_view offered);

/// Asks `question` and returns the answer's line; nullopt when there is no one to ask.
using AskFunction = std::function<std::optional<std::string>(const std::string& question)>;
/// Asks on /dev/tty (the terminal, even when stdin is a pipe).
std::optional<std::string> ask_on_tty(const std::string& question);

/// Decides whether to go on with a server at `ep` that showed `offered` ("SHA256:…"), and pins
/// the key when the decision is to pin it (known_hosts: opt.known_hosts or the default). A
/// refusal's code is std::errc::permission_denied and its detail the one line to show; an
/// unreadable known_hosts file or a failed append also fail (never go on unchecked).
Status check_server_key(const net::Endpoint& ep, std::string_view offered, const TrustOptions& opt,
                        const AskFunction& ask = ask_on_tty);

}  // namespace duplex::client
