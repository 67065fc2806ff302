#!/usr/bin/env bash
# install_test: `meson install` into a temporary prefix, then build the
# README's example with nothing but `pkg-config --cflags --libs moss`, and
# a plain program with `pkg-config moss-patch`, and run both.
set -euo pipefail
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
meson setup "$work/build" "$src" --prefix="$work/prefix" -Dtests=false >/dev/null
meson compile -C "$work/build" >/dev/null
meson install -C "$work/build" >/dev/null
pc=$(dirname "$(find "$work/prefix" -name moss.pc)")
export PKG_CONFIG_PATH=$pc
libdir=$(pkg-config --variable=libdir moss)
sed -n '/^```cpp$/,/^```$/p' "$src/README.md" | sed '1d;$d' > "$work/example.cpp"
g++ -std=c++20 "$work/example.cpp" $(pkg-config --cflags --libs moss) -Wl,-rpath,"$libdir" -o "$work/example"
"$work/example"
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
g++ -std=c++20 "$work/plain.cpp" $(pkg-config --cflags --libs moss-patch) -Wl,-rpath,"$libdir" -o "$work/plain"
"$work/plain"
echo "install_test: ok"
