#!/usr/bin/env bash
# Quick start 1: build if needed, then run `duplex serve` on its defaults (tcp://127.0.0.1:8080).
# Arguments are passed to `duplex serve` (e.g. --listen unix:///tmp/duplex.sock).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh release >&2
exec build/release/apps/duplex/duplex serve "$@"
