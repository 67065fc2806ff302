#!/usr/bin/env bash
# dev.sh: set up, build and run moss on Debian 12 (as root, or with sudo).
#
#   bash scripts/dev.sh demo     install what is missing, build, run moss-tour
#   bash scripts/dev.sh test     install what is missing, build, run every test
#   bash scripts/dev.sh bench    ... and run the benchmarks (meson test --benchmark)
#   bash scripts/dev.sh sanitize ... and run the unit tests under ASan+UBSan, and
#                                the thread tests under TSan (trees $BUILD-asan, $BUILD-tsan)
#   bash scripts/dev.sh docs     install doxygen if missing, build the API reference
#                                from include/moss/*.hpp into $BUILD/docs/html; an
#                                undocumented public name or any other warning fails it
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

# The unit tests that start threads of their own, run again under TSan. Not
# task_test (it keeps over 8,128 greenlets alive, and each is a TSan fiber:
# "Thread limit exceeded") nor dns_test (its time bounds do not hold at
# TSan's speed).
TSAN_TESTS=(
  threadsafe_test threadpool_test async_result_test signal_test monitor_test
  hub_test run_test task_group_test greenlet_test poller_test fd_table_test io_test
)

# sanitize() runs the unit tests of lib/ (tests/*_test.cpp: not tests/patch or
# tests/preload, since preloading into a sanitized process does not work, nor
# the samples) under ASan+UBSan, then TSAN_TESTS under TSan. meson test sets
# ASAN_OPTIONS and UBSAN_OPTIONS so that the first report fails the test;
# TSan is told the same here, and to let a forked child start threads (the
# fork tests check that a child gets a fresh pool). Both runs always happen;
# either failing fails the command.
sanitize() {
  local asan="$BUILD-asan" tsan="$BUILD-tsan"
  [ -f "$asan/build.ninja" ] || meson setup "$asan" -Db_sanitize=address,undefined -Db_lundef=false
  [ -f "$tsan/build.ninja" ] || meson setup "$tsan" -Db_sanitize=thread -Db_lundef=false
  local unit
  mapfile -t unit < <(meson test -C "$asan" --no-rebuild --list 2>/dev/null |
    sed -n 's|^moss / \([a-z_]*_test\)$|\1|p' | grep -vx -e header_check_test -e install_test)
  local failed=0
  meson compile -C "$asan" moss-tour "${unit[@]}"
  meson test -C "$asan" --no-rebuild --print-errorlogs "${unit[@]}" || failed=1
  meson compile -C "$tsan" moss-tour "${TSAN_TESTS[@]}"
  TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:die_after_fork=0} meson test -C "$tsan" --no-rebuild --print-errorlogs "${TSAN_TESTS[@]}" ||
    failed=1
  return $failed
}

# docs() needs only doxygen (not the build packages), so it installs just
# that. The Doxyfile's paths are relative to the source root; the output
# directory comes from the environment so that MOSS_BUILD_DIR is honoured.
docs() {
  if ! command -v doxygen >/dev/null; then
    echo "dev.sh: installing doxygen"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends doxygen >/dev/null
  fi
  mkdir -p "$BUILD/docs"
  MOSS_DOCS_OUT="$BUILD/docs" doxygen docs/Doxyfile
  echo "dev.sh: API reference in $BUILD/docs/html/index.html"
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
  sanitize) setup; sanitize ;;
  docs) docs ;;
  *) echo "usage: bash scripts/dev.sh demo|test|bench|sanitize|docs|setup" >&2; exit 2 ;;
esac
