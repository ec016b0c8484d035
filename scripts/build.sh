#!/usr/bin/env bash
# Installs what is missing, then configures and builds one preset (release by default).
# Usage: scripts/build.sh [release|debug|asan|tsan]   (extra CMake -D flags via $CMAKE_ARGS)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/deps.sh
# shellcheck disable=SC2086
cmake --preset "$preset" ${CMAKE_ARGS:-} >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
