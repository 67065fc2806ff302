#!/usr/bin/env bash
# header_check_test: what the public headers promise at compile time.
#  - each new header compiles on its own;
#  - <moss/signal.hpp> alone gives the signal numbers its example uses;
#  - `moss::timeout(50ms);` (a temporary, cancelled at once) is diagnosed;
#  - `h.keep_alive();` whose handle is dropped at once is diagnosed;
#  - every public header compiles with clang++ too (where clang++ is
#    installed: `dev.sh fuzz` installs it), without -fsized-deallocation,
#    which clang before 19 leaves off.
set -euo pipefail
src=$1
build_inc=${2:-}  # the build tree's include/ (the generated <moss/version.hpp>)
cxx=${CXX:-c++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
compile() { "$cxx" -std=c++20 -fsyntax-only -Werror=unused-result -I"$src/include" -x c++ "$1"; }

for h in task_group shield task_local error_handler signal stream patch wait subprocess; do
  printf '#include <moss/%s.hpp>\n' "$h" > "$work/alone_$h.cpp"
  compile "$work/alone_$h.cpp"
done

cat > "$work/signal.cpp" <<'CPP'
#include <moss/signal.hpp>
int numbers[] = {SIGINT, SIGTERM};
CPP
compile "$work/signal.cpp"

cat > "$work/named.cpp" <<'CPP'
#include <moss/timeout.hpp>
using namespace std::chrono_literals;
void f() { moss::timeout t(50ms); }
CPP
compile "$work/named.cpp"

cat > "$work/temporary.cpp" <<'CPP'
#include <moss/timeout.hpp>
using namespace std::chrono_literals;
void f() { moss::timeout(50ms); }
CPP
if compile "$work/temporary.cpp" 2> "$work/err"; then
  echo "a temporary moss::timeout compiled without a diagnostic" >&2
  exit 1
fi
grep -q "cancelled at once" "$work/err" || { cat "$work/err" >&2; exit 1; }

cat > "$work/keepalive.cpp" <<'CPP'
#include <moss/hub.hpp>
void f() { moss::hub::current().keep_alive(); }
CPP
if compile "$work/keepalive.cpp" 2> "$work/err"; then
  echo "a dropped keep_alive() compiled without a diagnostic" >&2
  exit 1
fi
grep -q "keep it in a variable" "$work/err" || { cat "$work/err" >&2; exit 1; }

if command -v clang++ > /dev/null && [ -n "$build_inc" ]; then
  for h in "$src"/include/moss/*.hpp; do printf '#include <moss/%s>\n' "${h##*/}"; done > "$work/all.cpp"
  clang++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I"$src/include" -I"$build_inc" "$work/all.cpp"
  echo "clang++: every public header compiles"
else
  echo "clang++ not installed (or no build include dir): the clang check is skipped"
fi
echo ok
