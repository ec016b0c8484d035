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
# haproxy and prometheus are here as test tools (the tests run their own haproxy on loopback and
# only promtool of prometheus): when this script installs them, their daemons must not start,
# now or at boot (prometheus would listen on every interface). Debian's policy-rc.d says "not
# now" during the install; the services are then disabled. A machine that had them keeps them.
daemons=()
for p in "${missing[@]}"; do
  case "$p" in haproxy | prometheus) daemons+=("$p") ;; esac
done
policy=""
if [ ${#daemons[@]} -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
fi
status=0
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
  status=$?
[ -n "$policy" ] && $sudo rm -f "$policy"
if [ ${#daemons[@]} -gt 0 ] && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now "${daemons[@]}" >/dev/null 2>&1 || true
fi
exit "$status"
