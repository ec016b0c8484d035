#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan) and runs each for a bounded time,
# failing on the first crash. New inputs go to build/fuzz/corpus/<target>; the checked-in
# corpus (tests/fuzz/corpus/<target>) is read, never written.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
scripts/deps.sh
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ -n "${missing[*]:-}" ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
  -DDUPLEX_FUZZ=ON -DDUPLEX_SANITIZE=ON -DDUPLEX_BUILD_BENCH=OFF >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in tests/fuzz/*_fuzz.cpp; do targets+=("$(basename "$src" _fuzz.cpp)"); done
fi
cmake --build build/fuzz -j "$(nproc)" --target "${targets[@]/%/_fuzz}"
# One target per core at a time; each writes its own log, printed when it ends.
run_target() {
  local t="$1" rc=0
  mkdir -p "build/fuzz/corpus/$t"
  # -rss_limit_mb bounds a target's memory; an input that crashes is saved as build/fuzz/crash-*.
  "build/fuzz/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -artifact_prefix="build/fuzz/" -print_final_stats=1 \
    "build/fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"build/fuzz/$t.log" 2>&1 || rc=$?
  echo "$rc" >"build/fuzz/$t.rc"
}
failed=0
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
  echo "fuzz: $t for ${seconds}s"
  rm -f "build/fuzz/$t.rc"
  run_target "$t" &
done
wait
for t in "${targets[@]}"; do
  if [ "$(cat "build/fuzz/$t.rc" 2>/dev/null)" = 0 ]; then
    tail -n 12 "build/fuzz/$t.log"
  else
    echo "fuzz: $t FAILED:"
    tail -n 60 "build/fuzz/$t.log"
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
