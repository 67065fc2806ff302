#!/usr/bin/env bash
# dev.sh: set up, build and run moss on Debian 12 (as root, or with sudo).
#
#   bash scripts/dev.sh demo     install what is missing, build, run moss-tour
#   bash scripts/dev.sh test     install what is missing, build, run every test
#   bash scripts/dev.sh bench    ... and run the benchmarks (meson test --benchmark)
#   bash scripts/dev.sh setup    only install the packages
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${MOSS_BUILD_DIR:-build}

PACKAGES=(
  g++ meson ninja-build pkg-config cmake
  libboost-context-dev libboost-fiber-dev libc-ares-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  valgrind
  libcurl4-openssl-dev libpq-dev postgresql wrk python3 curl
)

setup() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "dev.sh: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build() {
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD"
  meson compile -C "$BUILD"
}

case "${1:-}" in
  setup) setup ;;
  demo) setup; build; "$BUILD/samples/tour/moss-tour" ;;
  test) setup; build; meson test -C "$BUILD" --print-errorlogs ;;
  bench) setup; build; meson test -C "$BUILD" --benchmark --verbose ;;
  *) echo "usage: bash scripts/dev.sh demo|test|bench|setup" >&2; exit 2 ;;
esac
