#!/usr/bin/env bash
# CI's short version of the benchmark suite (bench/suite.py --smoke): builds duplex and the
# reference servers, runs every workload once for ~0.5 s against duplex and one reference, and
# fails if any run errors or any server does not answer. Bounded: 90 s for the runs.
# Usage: bench/smoke.sh [BUILD_DIR=build/release]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build/release}"
cmake --build "$build_dir" --target duplex bench_refs
exec timeout --kill-after=10 90 python3 bench/suite.py --smoke --no-build \
  --build-dir "$build_dir" --out "$build_dir/bench-smoke/results.md"
