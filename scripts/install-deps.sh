#!/usr/bin/env bash
# Installs what gemma4.cpp needs to build and test, from Debian 12's packages. (The optional chat
# parser fuzzer, -DGEMMA4_FUZZ=ON, also needs clang and libclang-rt-14-dev.)
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libstb-dev
  libwebp-dev libsndfile1-dev libvorbis-dev libsoxr-dev libmpg123-dev
  python3 python3-jinja2 python3-numpy
  tmux libedit-dev
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
