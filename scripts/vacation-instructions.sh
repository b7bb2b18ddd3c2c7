#!/usr/bin/env bash
# Instructions per action of STAMP vacation itself (the `vacation` binary's own client actions
# and tables, not the `instructions` benchmark's one-reservation case), for commute and for the
# sequential code, counted by valgrind's callgrind: deterministic where the times of
# `vacation` drift with the machine.
#
#   cargo build --release -p commute-benches --bin vacation
#   scripts/vacation-instructions.sh                  # low and high, commute and sequential
#   PRESETS=low IMPLS=commute scripts/vacation-instructions.sh
#
# Each figure is (Ir(t = N + 1) - Ir(t = 1)) / N for one client on `-r16384` tables (N = 65,536
# by default, ACTIONS to change it), which cancels the population and start-up. Only the
# actions themselves are counted (`--collect-atstart=no`, `--toggle-collect`): for commute,
# everything inside `atomically` (`commute_stm::tx::run`: the action, its commit and the
# reclamation that ends it; population transactions cancel out); for sequential, the action
# (`client::perform`). Drawing the actions (`Client::next_action`) is outside both. The
# tables' hashers are seeded from the run's seed, so that the tables' layout is the same from
# one run of a binary to the next: a figure moves by an instruction or two between runs (with
# ahash's random seeds, by about 15). About a minute per figure on 2 cores. It installs
# nothing: valgrind comes from the system (Debian/Ubuntu: `apt-get install valgrind`).
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "vacation-instructions.sh: valgrind is not installed. On Debian or Ubuntu: apt-get install valgrind" >&2
    exit 1
fi

BIN="${BIN:-target/release/vacation}"
PRESETS="${PRESETS:-low high}"
IMPLS="${IMPLS:-commute sequential}"
ACTIONS="${ACTIONS:-65536}"
RELATIONS="${RELATIONS:-16384}"

if [ ! -x "$BIN" ]; then
    echo "vacation-instructions.sh: $BIN not found; build it first: cargo build --release -p commute-benches --bin vacation" >&2
    exit 1
fi

# Instructions counted in one run of `actions` actions.
count() {
    local preset=$1 impl=$2 actions=$3 pattern
    case "$impl" in
        commute) pattern='*commute_stm::tx::run*' ;;
        sequential) pattern='*vacation::client::perform*' ;;
        *) echo "vacation-instructions.sh: no such implementation: $impl" >&2; exit 2 ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
        --toggle-collect="$pattern" "$BIN" --preset "$preset" --reps 1 -c 1 \
        -r "$RELATIONS" -t "$actions" --impl "$impl" 2>&1 >/dev/null |
        awk '/Collected :/ { print $NF; found = 1 } END { if (!found) exit 1 }'
}

echo "instructions per action, callgrind: (Ir(t=$((ACTIONS + 1))) - Ir(t=1)) / $ACTIONS, -r$RELATIONS, 1 client"
for preset in $PRESETS; do
    for impl in $IMPLS; do
        base=$(count "$preset" "$impl" 1)
        full=$(count "$preset" "$impl" $((ACTIONS + 1)))
        if [ "$full" -le "$base" ]; then
            # The toggled function was not found (inlined or renamed): nothing was counted.
            echo "vacation-instructions.sh: nothing counted for $impl; is its function still out of line?" >&2
            exit 1
        fi
        echo "$preset $impl $(( (full - base) / ACTIONS ))"
    done
done
