#!/usr/bin/env bash
# install_test: moss as a dependency of an outside project, three ways.
#  1. `meson install` into a temporary prefix, then with pkg-config: the
#     README's example, a consumer, a plain program on moss-patch and a C
#     program on moss-patch; what the .pc files promise (no -std flag, no
#     Boost.Context on x86-64, no absolute path in --static output, enough
#     there to link libmoss.a); <moss/moss.hpp> stops C++17 with its message.
#  2. CMake: find_package(moss) against the same prefix, moss::moss and
#     moss::patch linked, moss::preload's file present, the version checked.
#  3. Meson: the source tree as subprojects/moss of a consumer, with only the
#     library's dependencies looked up, tests and samples off by default, and
#     only libmoss and the consumer compiled.
set -euo pipefail
src=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "install_test: $*" >&2; exit 1; }
step() { echo "install_test: [${SECONDS}s] $*"; }

step "install into a temporary prefix"
meson setup "$work/build" "$src" --prefix="$work/prefix" -Dtests=false -Dsamples=false >/dev/null
meson compile -C "$work/build" >/dev/null
meson install -C "$work/build" >/dev/null
pc=$(dirname "$(find "$work/prefix" -name moss.pc)")
export PKG_CONFIG_PATH=$pc
libdir=$(pkg-config --variable=libdir moss)
version=$(pkg-config --modversion moss)

# The consumer all three builds make: it runs two tasks and prints the
# version macros, which must match the installed version.
cat > "$work/consumer.cpp" <<'CPP'
#include <moss/moss.hpp>
#include <cstdio>
int main() {
  int done = 0;
  moss::run([&] {
    auto a = moss::spawn([&] { moss::yield(); ++done; });
    auto b = moss::spawn([&] { ++done; });
    a.join();
    b.join();
  });
  std::printf("%d.%d.%d %s\n", MOSS_VERSION_MAJOR, MOSS_VERSION_MINOR, MOSS_VERSION_PATCH, MOSS_VERSION_STRING);
  return done == 2 ? 0 : 1;
}
CPP
check_consumer() {  # check_consumer how program
  local out
  out=$("$2") || fail "$1: the consumer failed"
  [ "$out" = "$version $version" ] || fail "$1: the consumer printed '$out', expected '$version $version'"
}
cat > "$work/plain.cpp" <<'CPP'
#include <moss/moss.hpp>
#include <unistd.h>
#include <chrono>
#include <cstdio>
int main() {
  auto t0 = std::chrono::steady_clock::now();
  moss::run([] {
    auto a = moss::spawn([] { usleep(100000); });
    auto b = moss::spawn([] { usleep(100000); });
    a.join();
    b.join();
  });
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  std::printf("two 100 ms usleep() calls took %lld ms\n", static_cast<long long>(ms));
  return ms < 180 ? 0 : 1;
}
CPP

step "pkg-config"
cflags=$(pkg-config --cflags moss moss-patch)
case " $cflags " in *" -std="*) fail "pkg-config --cflags has a -std flag: $cflags" ;; esac
static_libs=$(pkg-config --static --libs moss)
for w in $static_libs; do
  case $w in /* | *.so | *.so.*) fail "pkg-config --static --libs moss names a file: $static_libs" ;; esac
done
if [ "$(uname -m)" = x86_64 ]; then
  case $static_libs in *boost*) fail "Boost.Context in moss.pc, but the x86-64 switch does not use it: $static_libs" ;; esac
fi
sed -n '/^```cpp$/,/^```$/p' "$src/README.md" | sed '1d;$d' > "$work/example.cpp"
g++ -std=c++20 "$work/example.cpp" $(pkg-config --cflags --libs moss) -Wl,-rpath,"$libdir" -o "$work/example"
"$work/example"
g++ -std=c++20 "$work/consumer.cpp" $(pkg-config --cflags --libs moss) -Wl,-rpath,"$libdir" -o "$work/consumer"
check_consumer pkg-config "$work/consumer"
# libmoss.a with exactly what --static gives, nothing else.
g++ -std=c++20 "$work/consumer.cpp" $(pkg-config --cflags moss) \
  $(pkg-config --static --libs moss | sed "s|-lmoss\\b|$libdir/libmoss.a|") -o "$work/consumer_static"
check_consumer "pkg-config --static" "$work/consumer_static"
g++ -std=c++20 "$work/plain.cpp" $(pkg-config --cflags --libs moss-patch) -Wl,-rpath,"$libdir" -o "$work/plain"
"$work/plain"
# A C program may link moss-patch (its Cflags must not carry a C++ flag).
printf '#include <unistd.h>\nint main(void) { return usleep(1000); }\n' > "$work/plain_c.c"
gcc -Werror "$work/plain_c.c" $(pkg-config --cflags --libs moss-patch) -Wl,-rpath,"$libdir" -o "$work/plain_c"
# It names nothing of libmoss, so --as-needed drops it from the program and
# only libmoss_patch (no RUNPATH, as installed) needs it: a temporary prefix
# is not in the loader's search path.
LD_LIBRARY_PATH=$libdir "$work/plain_c"
readelf -d "$work/plain_c" | grep -q 'NEEDED.*libmoss_patch' || fail "the C program does not load libmoss_patch"
# The standard is checked by the headers, with a message naming the fix.
printf '#include <moss/moss.hpp>\n' > "$work/std.cpp"
if g++ -std=c++17 -fsyntax-only $(pkg-config --cflags moss) "$work/std.cpp" 2> "$work/std.err"; then
  fail "<moss/moss.hpp> compiled as C++17"
fi
grep -q 'moss: needs C++20 or later; compile with -std=c++20' "$work/std.err" ||
  { cat "$work/std.err" >&2; fail "C++17 was not stopped by <moss/version.hpp>'s message"; }
g++ -std=c++23 -fsyntax-only $(pkg-config --cflags moss) "$work/std.cpp" || fail "<moss/moss.hpp> does not compile as C++23"

step "CMake find_package"
IFS=. read -r major minor _ <<< "$version"
mkdir "$work/cmake"
cat > "$work/cmake/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(moss_consumer CXX)
# The next minor version must be refused (0.x: minor releases may break).
find_package(moss ${MOSS_NEXT_MINOR} QUIET)
if(moss_FOUND)
  message(FATAL_ERROR "find_package(moss ${MOSS_NEXT_MINOR}) accepted moss ${moss_VERSION}")
endif()
find_package(moss ${MOSS_EXPECTED_VERSION} EXACT REQUIRED)
foreach(t moss::moss moss::patch moss::preload moss::mossrun)
  if(NOT TARGET ${t})
    message(FATAL_ERROR "find_package(moss) gave no target ${t}")
  endif()
endforeach()
get_target_property(preload moss::preload IMPORTED_LOCATION)
if(NOT EXISTS "${preload}")
  message(FATAL_ERROR "moss::preload names ${preload}, which does not exist")
endif()
# No standard set here: moss::moss asks for C++20 itself.
add_executable(consumer ${CMAKE_SOURCE_DIR}/../consumer.cpp)
target_link_libraries(consumer PRIVATE moss::moss)
add_executable(plain ${CMAKE_SOURCE_DIR}/../plain.cpp)
target_link_libraries(plain PRIVATE moss::patch)
CMAKE
cmake -S "$work/cmake" -B "$work/cmake/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DMOSS_EXPECTED_VERSION="$version" -DMOSS_NEXT_MINOR="$major.$((minor + 1))" >/dev/null
cmake --build "$work/cmake/build" >/dev/null
check_consumer CMake "$work/cmake/build/consumer"
"$work/cmake/build/plain"

step "Meson subproject"
mkdir -p "$work/sub/subprojects"
ln -s "$src" "$work/sub/subprojects/moss"
cp "$work/consumer.cpp" "$work/sub/"
cat > "$work/sub/meson.build" <<MESON
project('moss_consumer', 'cpp', default_options: ['cpp_std=c++20'])
moss_dep = dependency('moss', version: '>=$version', fallback: 'moss')
executable('consumer', 'consumer.cpp', dependencies: moss_dep)
MESON
# Without PKG_CONFIG_PATH and with the fallback forced, so the installed copy
# (or one on the system) cannot stand in for the subproject.
env -u PKG_CONFIG_PATH meson setup "$work/sub/build" "$work/sub" --force-fallback-for=moss >/dev/null
log=$work/sub/build/meson-logs/meson-log.txt
deps=$(sed -n 's/^Run-time dependency \([^ ]*\) found.*/\1/p' "$log" | sort -u | tr '\n' ' ')
case " $deps " in *" libcares "*) ;; *) fail "no dependency lookups found in $log" ;; esac
allowed=" libcares threads "
[ "$(uname -m)" = x86_64 ] || allowed+="Boost boost "
for d in $deps; do
  case $allowed in *" $d "*) ;; *) fail "the subproject looked up $d (only the library's dependencies: $allowed)" ;; esac
done
tests_opt=$(meson introspect --buildoptions "$work/sub/build" |
  python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "moss:tests"][0])')
[ "$tests_opt" = auto ] || fail "moss:tests is '$tests_opt' in a subproject, expected auto"
[ "$(meson introspect --tests "$work/sub/build")" = "[]" ] || fail "a subproject build defines moss's tests"
if meson introspect --targets "$work/sub/build" | grep -q '"moss-tour"'; then
  fail "a subproject build defines the samples"
fi
meson compile -C "$work/sub/build" consumer >/dev/null
check_consumer "Meson subproject" "$work/sub/build/consumer"

step "ok"
