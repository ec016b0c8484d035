// Socket activation (sd_listen_fds(3)'s protocol, plain environment variables: no libsystemd):
// sockets a service manager bound for us and passed as fds 3, 4, ...
#pragma once

#include <string>
#include <vector>

#include "duplex/core/result.hpp"
#include "duplex/net/endpoint.hpp"

namespace duplex::net {

/// One socket passed by the service manager, judged from the fd itself (getsockname, SO_TYPE,
/// SO_ACCEPTCONN), never from its name.
struct InheritedSocket {
  int fd = -1;
  std::string name;   // LISTEN_FDNAMES's entry (FileDescriptorName=), or "" when none was given
  Endpoint endpoint;  // tcp, unix_stream, udp or unix_dgram; the bound address (real port)
};

/// Takes the sockets passed with LISTEN_PID (= this process) and LISTEN_FDS=N: fds 3..3+N-1,
/// each made close-on-exec. LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are removed from the
/// environment in every case, so that commands we run never believe the sockets are theirs.
/// Empty when nothing was passed (or it was meant for another process). Fails, with one line
/// naming the fd, on a malformed LISTEN_FDS, an fd that is not a socket of a family we serve,
/// or a stream socket that is not listening (Accept=yes hands over one connection: --inetd).
/// Not thread-safe (the environment): call before starting threads.
Result<std::vector<InheritedSocket>> take_inherited_sockets();

/// The bound address of a socket fd (tcp, udp, unix, unixgram by family and SO_TYPE), or a
/// failure naming the fd.
Result<Endpoint> socket_endpoint(int fd);

}  // namespace duplex::net
