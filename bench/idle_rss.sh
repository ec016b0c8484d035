#!/usr/bin/env bash
# Measures the server's RSS with 0 and with N idle connections (each after one round trip).
# Usage: bench/idle_rss.sh [N=10000] [duplex binary]
set -euo pipefail
n="${1:-10000}"
bin="${2:-$(dirname "$0")/../build/release/apps/duplex/duplex}"
ulimit -n $((n + 1024))
out=$(mktemp)
"$bin" serve --listen tcp://127.0.0.1:0 -q ${SERVE_ARGS:-} >"$out" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q 'listening on' "$out" && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$out")
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
base=$(rss)
coproc HOLD { python3 "$(dirname "$0")/idle_connections.py" "$url" "$n"; }
read -r ready <&"${HOLD[0]}"
loaded=$(rss)
fds=$(ls "/proc/$server/fd" | wc -l)
echo "connections=$n ($ready) fds=$fds rss_base_kib=$base rss_loaded_kib=$loaded per_conn_bytes=$(( (loaded - base) * 1024 / n ))"
eval "exec ${HOLD[1]}>&-"
wait "$HOLD_PID" 2>/dev/null || true
