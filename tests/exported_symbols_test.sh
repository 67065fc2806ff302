#!/usr/bin/env bash
# exported_symbols_test: libmoss.so exports the public API and nothing of lib/.
#
# Every dynamic symbol libmoss.so defines is checked:
#  - a C-linkage name (not mangled) must be on the list below (none today: a
#    user's function of the same name would silently replace it);
#  - a name in moss::detail must belong to what the public headers' inline
#    code and templates call (the list below, by class or function);
#  - moss::interpose is the seam of patch/ (include/moss/detail/interpose.hpp);
#  - any other moss:: name is public API.
# Names of the standard library instantiated inside libmoss (std::string
# members and the like) are exported by libstdc++'s own visibility and are
# not checked, unless they are instantiated over a moss::detail type.
set -euo pipefail
lib=$1
nm=${NM:-nm}
cxxfilt=${CXXFILT:-c++filt}

allowed_c=''   # extern "C" names libmoss may export, separated by '|'

# moss::detail names that public inline code and templates reach.
allowed_detail='moss::detail::(greenlet_impl|task_base|waiter|waiter_list|done_hook|done_callback|timer|completion_set|item_completions|wait_item|async_state_base|result_callback|posted|posted_call|signal_fn|signal_registration|pool_job|run_scope)(::|$| )'
allowed_detail+='|moss::detail::(destroy_locals|live_greenlets|stacks_in_use|current_impl|switch_with|resume|set_parent|demangle|check_may_block|launch|interrupt|sleep_until|await_job|add_signal_handler|remove_signal_handler|joinall|wait|wait_items|gather_wait|killall|throw_as_completed_timeout|throw_with_timeout_expired|next_local_key)(\(|\[|$| )'

raw=$("$nm" -D --defined-only "$lib" | awk '{print $3}')
[ -n "$raw" ] || { echo "no dynamic symbols in $lib" >&2; exit 1; }
bad=0

# Unmangled names: C linkage (or a variable with it).
while read -r name; do
  [ -z "$name" ] && continue
  case $name in _Z*) continue ;; esac
  if [ -z "$allowed_c" ] || ! [[ $name =~ ^($allowed_c)$ ]]; then
    echo "unexpected C-linkage symbol exported: $name" >&2
    bad=1
  fi
done <<< "$raw"

# Mangled names, demangled; the kind prefix ("typeinfo for", "vtable for") is kept.
while read -r sym; do
  case $sym in *moss::*) ;; *) continue ;; esac
  # What a name is about: drop the kind prefix and, for a template
  # instantiation of the standard library, look at its arguments.
  about=${sym#typeinfo name for }
  about=${about#typeinfo for }
  about=${about#vtable for }
  about=${about#non-virtual thunk to }
  about=${about#guard variable for }
  if [[ $about == *moss::detail::* ]]; then
    # Every moss::detail name the symbol mentions must be allowed.
    rest=$about
    while [[ $rest =~ (moss::detail::[A-Za-z_][A-Za-z0-9_:]*)(.*) ]]; do
      name=${BASH_REMATCH[1]}
      rest=${BASH_REMATCH[2]}
      if ! [[ "$name " =~ ^($allowed_detail) ]]; then
        echo "unexpected moss::detail symbol exported: $sym" >&2
        bad=1
        break
      fi
    done
  fi
done < <(printf '%s\n' "$raw" | grep '^_Z' | "$cxxfilt")

if [ "$bad" -ne 0 ]; then
  echo "libmoss.so exports names outside the public headers; hide them, or mark what a public header needs with MOSS_API" >&2
  exit 1
fi
count=$(printf '%s\n' "$raw" | grep '^_Z' | "$cxxfilt" | grep -c 'moss::' || true)
echo "ok: $count moss symbols exported, all public or reached by the public headers"
