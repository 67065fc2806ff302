#!/usr/bin/env bash
# dev.sh: set up, build and run moss on Debian 12 (as root, or with sudo).
#
#   bash scripts/dev.sh demo     install what is missing, build, run moss-tour
#   bash scripts/dev.sh test     install what is missing, build, run every test
#   bash scripts/dev.sh bench    ... and run the benchmarks (meson test --benchmark)
#   bash scripts/dev.sh suite [--quick] [suite.py options]
#                                install the suite's peers and plotter too (golang-go,
#                                python3-gevent, python3-greenlet, python3-matplotlib),
#                                build the release tree $BUILD-rel, run the whole benchmark
#                                suite with its peers (tests/bench/suite.py): a Markdown
#                                table and PNG plots under results/<date>/ (~15 minutes;
#                                --quick ~4); --publish also copies them to docs/bench/
#   bash scripts/dev.sh sanitize ... and run the unit tests and the fuzz corpora under
#                                ASan+UBSan, and the thread tests under TSan (trees
#                                $BUILD-asan, $BUILD-tsan)
#   bash scripts/dev.sh valgrind ... and run the core tests under valgrind's memcheck
#   bash scripts/dev.sh fuzz [S] install clang too, build the fuzz targets with libFuzzer
#                                (tree $BUILD-fuzz) and run each for S seconds (default 60)
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

# install_packages() installs, with apt, those of the named Debian packages
# that are missing; fails if apt does.
install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "dev.sh: installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup() {
  install_packages "${PACKAGES[@]}"
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
# the samples) and the fuzz targets' corpus replays (tests/fuzz) under
# ASan+UBSan (LeakSanitizer included, without suppressions), then TSAN_TESTS
# under TSan. meson test sets
# ASAN_OPTIONS and UBSAN_OPTIONS so that the first report fails the test;
# TSan is told the same here, and to let a forked child start threads (the
# fork tests check that a child gets a fresh pool). Both runs always happen;
# either failing fails the command.
sanitize() {
  local asan="$BUILD-asan" tsan="$BUILD-tsan"
  [ -f "$asan/build.ninja" ] || meson setup "$asan" -Db_sanitize=address,undefined -Db_lundef=false
  [ -f "$tsan/build.ninja" ] || meson setup "$tsan" -Db_sanitize=thread -Db_lundef=false
  local unit
  ninja -C "$asan" build.ninja >/dev/null  # the test list as tests/meson.build has it now
  mapfile -t unit < <(meson test -C "$asan" --no-rebuild --list --suite unit --suite fuzz 2>/dev/null | sed -n 's#^[^ ]* / ##p')
  ((${#unit[@]})) || { echo "dev.sh sanitize: no unit tests listed in $asan" >&2; return 1; }
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

# valgrind_core() runs the core tests (meson suite 'core': the switch,
# stacks, greenlets, timers, poller, hub, tasks, time) under memcheck
# (tests/meson.build's 'valgrind' test setup: any error, or a definite leak,
# fails the test). moss registers every greenlet stack with valgrind, so the
# switches are not reported as stack overflows.
valgrind_core() {
  build
  meson test -C "$BUILD" --no-rebuild --setup valgrind --suite core --print-errorlogs
}

# fuzz() builds the fuzz targets (tests/fuzz) with clang, libFuzzer, ASan and
# UBSan (the whole library instrumented for coverage) and runs each for
# $1 seconds (default 60) from its seed corpus; what libFuzzer finds new goes
# to $BUILD-fuzz/corpus/<target>, a crash to $BUILD-fuzz/<target>-crash-*
# (replay it: $BUILD-fuzz/tests/fuzz/<target>_libfuzzer FILE). Prints the
# executions per target. -fsized-deallocation: clang 14 does not turn it on
# for C++20, and task_base.hpp's class operator delete calls the sized one.
fuzz() {
  local seconds=${1:-60} dir="$BUILD-fuzz"
  case "$seconds" in '' | *[!0-9]*) echo "dev.sh fuzz: seconds must be a whole number, not \"$seconds\"" >&2; return 2 ;; esac
  install_packages clang libclang-rt-14-dev
  [ -f "$dir/build.ninja" ] || CC=clang CXX=clang++ meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args="-fsanitize=fuzzer-no-link -fsized-deallocation"
  local targets=(dns_reply_fuzz fd_table_fuzz)
  meson compile -C "$dir" "${targets[@]/%/_libfuzzer}"
  local failed=0 t seeds="$PWD/tests/fuzz/corpus"
  for t in "${targets[@]}"; do
    mkdir -p "$dir/corpus/$t"
    echo "dev.sh fuzz: $t for ${seconds}s"
    (cd "$dir" && "tests/fuzz/${t}_libfuzzer" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$t-" \
      "corpus/$t" "$seeds/$t" 2>"$t.log") || { failed=1; tail -n 40 "$dir/$t.log"; }
    grep -m1 '^stat::number_of_executed_units' "$dir/$t.log" | sed "s|^stat::number_of_executed_units: *|dev.sh fuzz: $t: |; s|\$| executions|"
  done
  return $failed
}

# suite() installs what only the benchmark suite needs (not part of setup:
# CI does not run the suite), builds the release tree and runs the driver.
# apt-get update only when an install fails with the lists as they are.
SUITE_PACKAGES=(golang-go python3-gevent python3-greenlet python3-matplotlib)
suite() {
  install_packages "${SUITE_PACKAGES[@]}" || echo "dev.sh: could not install every one of ${SUITE_PACKAGES[*]}; the suite skips what needs them"
  local rel="$BUILD-rel"
  [ -f "$rel/build.ninja" ] || meson setup "$rel" --buildtype=release
  meson compile -C "$rel"
  # Debian's python3 has the packages just installed (a python3 earlier in
  # PATH, such as pyenv's, may not).
  local py=python3
  [ -x /usr/bin/python3 ] && py=/usr/bin/python3
  "$py" tests/bench/suite.py --build "$rel" --command "bash scripts/dev.sh suite${*:+ $*}" "$@"
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
  suite) setup; shift; suite "$@" ;;
  sanitize) setup; sanitize ;;
  docs) docs ;;
  valgrind) setup; valgrind_core ;;
  fuzz) setup; fuzz "${2:-60}" ;;
  *) echo "usage: bash scripts/dev.sh demo|test|bench|suite [--quick]|sanitize|valgrind|fuzz [seconds]|docs|setup" >&2; exit 2 ;;
esac
