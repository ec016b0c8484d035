#!/usr/bin/env python3
"""Whole-process cost of one remote command over TLS, against the same over plain sockets.

Usage: bench/tls_exec.py [DUPLEX_BINARY] [ROUNDS]

Starts `duplex serve --exec --tls` on 127.0.0.1 and a Unix socket (temp config dir), then times
`duplex exec URL -- true` as a user runs it (a whole process: start-up, connect, handshake,
authentication, the command, exit) in rounds that alternate the modes:
  unix        plain Unix socket (the peer's uid authenticates: no token exchange)
  tcp         plain TCP on 127.0.0.1 (token challenge-response)
  tls-full    tls://127.0.0.1 with no saved session: a full TLS 1.3 handshake every time
  tls-resumed tls://127.0.0.1 with the session saved by the previous run (a ticket)
Prints the median and min-max of each mode in ms, the client's CPU time (user + system), and each
TLS mode's extra cost over tcp.
Bounded: ROUNDS (default 30) runs per mode, a 10 s limit per run.

Each run is reaped with a blocking wait4(): subprocess.run(timeout=...) polls instead, sleeping
1, 2, 4, 8 ms… between looks, so that a run which took 8.5 ms was counted as 15 (the "+8 ms" that
this benchmark reported for TLS until 2026-11-29 was that).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

duplex = sys.argv[1] if len(sys.argv) > 1 else "build/release/apps/duplex/duplex"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
cfg = tempfile.mkdtemp(prefix="duplex-tls-bench-")
env = dict(os.environ, XDG_CONFIG_HOME=cfg)
sock = os.path.join(cfg, "exec.sock")


def timed(argv, env):
    """Wall-clock and CPU ms of one whole run, reaped the moment it exits (a blocking wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(10, proc.kill)
    watchdog.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - start) * 1000
    watchdog.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode})")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1000


server = subprocess.Popen(
    [duplex, "serve", "-q", "--exec", "--tls", "--allow-root", "-l", "tcp://127.0.0.1:0",
     "-l", "unix://" + sock],
    stdout=subprocess.PIPE, text=True, env=env)
try:
    urls, fingerprint = [], None
    while len(urls) < 2 or fingerprint is None:
        line = server.stdout.readline()
        if not line:
            sys.exit("the server ended before it was ready")
        if line.startswith("listening on "):
            urls.append(line.split()[-1])
        elif line.startswith("fingerprint "):
            fingerprint = line.split()[-1]
    port = urls[0].rsplit(":", 1)[1]
    tls_url = f"tls://127.0.0.1:{port}"
    sessions = os.path.join(cfg, "duplex", "tls_sessions")
    modes = {
        "unix": ["unix://" + sock],
        "tcp": [f"tcp://127.0.0.1:{port}"],
        "tls-full": [tls_url],
        "tls-resumed": [tls_url],
    }
    # Pin the key once, as a user would on first contact.
    subprocess.run([duplex, "exec", "--fingerprint", fingerprint, tls_url, "--", "true"],
                   env=env, check=True, timeout=10)
    times = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    for _ in range(rounds):
        for mode, args in modes.items():
            if mode == "tls-full" and os.path.exists(sessions):
                os.unlink(sessions)
            ms, cpu_ms = timed([duplex, "exec", *args, "--", "true"], env)
            times[mode].append(ms)
            cpu[mode].append(cpu_ms)
    print(f"duplex exec URL -- true, whole process, {rounds} alternating rounds "
          f"(median, min-max, client CPU median, ms):")
    med = {m: statistics.median(t) for m, t in times.items()}
    for mode, t in times.items():
        extra = f"  (+{med[mode] - med['tcp']:.2f} over tcp)" if mode.startswith("tls") else ""
        print(f"  {mode:12} {med[mode]:6.2f}  {min(t):6.2f}-{max(t):6.2f}  "
              f"cpu {statistics.median(cpu[mode]):5.2f}{extra}")
finally:
    server.terminate()
    server.wait(timeout=10)
    shutil.rmtree(cfg, ignore_errors=True)
