// System readings for a run: another process's resident memory, our own CPU time, and the file
// descriptor limit raised as far as it goes.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>

namespace duplex::loadgen {

/// VmRSS of /proc/PID/status in KiB; nullopt when it cannot be read.
std::optional<long> rss_kib(pid_t pid);

/// User plus system CPU seconds this process used so far (getrusage).
double cpu_seconds();

/// Raises RLIMIT_NOFILE's soft limit to the hard one; returns the soft limit now in force.
std::size_t raise_fd_limit();

}  // namespace duplex::loadgen
