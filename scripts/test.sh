#!/usr/bin/env bash
# Quick start 2: build if needed, then run every test (unit, integration, compat, fuzz corpus).
# Usage: scripts/test.sh [release|debug|asan|tsan]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/build.sh "$preset"
ctest --preset "$preset"
