#!/usr/bin/env bash
# Installs, with apt-get, exactly the Debian 12 packages duplex needs that are not yet installed.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config clang-format
  libasio-dev libssl-dev libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libedit-dev libutfcpp-dev libtomlplusplus-dev
  libhttp-parser-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 netcat-openbsd socat openssl util-linux procps tmux iproute2
  groff-base zsh dpkg-dev
  haproxy
  curl prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
