#!/usr/bin/env bash
# The one prepared run for a many-core machine without a Rust toolchain (the 16-core device
# machine): the `conflicts` suite over 1-16 threads (docs/benchmarks.md, "On 16 cores"), the
# 16-thread soaks (docs/reliability.md, "16-core device soak") and, as a run of its own, the
# application suite over 1-16 threads (docs/benchmarks.md, "Application suite"). It builds
# nothing: build the binaries here first and carry them along.
#
#   cargo build --release -p commute-benches            # target/release/{conflicts,soak,apps}
#   scripts/device.sh                                  # on the device: results in $OUT
#   STEPS=apps scripts/device.sh                       # the application suite alone (~4 min)
#   STEPS=vacation scripts/device.sh                   # STAMP vacation, 1-16 clients (~5 min)
#   DEVICE_QUICK=1 scripts/device.sh target/device     # a ~10 s rehearsal of the same steps
#
# Results (in the folder given as the first argument, else $OUT, else target/device):
# machine.txt (date, kernel, CPU), table.txt (the table and the targets the runner checks,
# 2 and 16 threads included), suite.json, plots/*.svg, progress.txt (the runner's stderr),
# soak-mixed.txt, soak-churn.txt; with STEPS=apps, apps.txt (the application suite's table
# and checks), apps.json and apps-progress.txt; with STEPS=vacation, vacation-low.txt and
# vacation-high.txt (one table per client count, with the runner's progress lines) and
# vacation.json. Steps run one after the other and each failure is reported
# at the end, so that a failing soak does not lose the table. The default run takes about
# 6 minutes: suite ~3, soaks 2 x 90 s, with time limits that keep it under 10.
set -uo pipefail

cd "$(dirname "$0")/.."

OUT_DIR="${1:-${OUT:-target/device}}"
BIN="${BIN:-target/release}"
THREADS="${THREADS:-1,2,4,8,16}"
SOAK_THREADS="${SOAK_THREADS:-16}"
SOAK_SECONDS="${SOAK_SECONDS:-90}"
# Which runs: "conflicts,soaks" (the default, about 6 minutes), "apps" (about 4) or
# "vacation" (about 5), each within the device's 10 minutes a command.
STEPS="${STEPS:-conflicts,soaks}"
SUITE_ARGS=()
APPS_ARGS=(--preset default)
# STAMP's own sizes (-r1048576 -t4194304), those of the published figures.
VACATION_ARGS=(--canonical --reps 1)
VACATION_LIMIT=240
if [ -n "${DEVICE_QUICK:-}" ]; then
    THREADS="1,2"
    SOAK_THREADS=2
    SOAK_SECONDS=3
    SUITE_ARGS=(--quick)
    APPS_ARGS=(--preset smoke)
    VACATION_ARGS=(-r16384 -t65536 --reps 1)
    VACATION_LIMIT=60
fi

wants() { [[ ",$STEPS," == *",$1,"* ]]; }

bins=()
wants conflicts && bins+=(conflicts)
wants soaks && bins+=(soak)
wants apps && bins+=(apps)
wants vacation && bins+=(vacation)
for bin in "${bins[@]}"; do
    if [ ! -x "$BIN/$bin" ]; then
        echo "device.sh: $BIN/$bin is missing: build it with" \
            "'cargo build --release -p commute-benches' and carry it" >&2
        exit 2
    fi
done

mkdir -p "$OUT_DIR"
failed=()

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "kernel: $(uname -srm)"
    echo "cpus online: $(nproc)"
    if command -v lscpu >/dev/null 2>&1; then
        lscpu
    else
        grep -m1 'model name' /proc/cpuinfo || true
    fi
} >"$OUT_DIR/machine.txt" 2>&1

# step NAME TIME-LIMIT STDOUT-FILE STDERR-FILE COMMAND...
step() {
    local name=$1 limit=$2 out=$3 err=$4
    shift 4
    echo "device.sh: $name" >&2
    local start=$SECONDS
    if [ "$out" = "$err" ]; then
        timeout "$limit" "$@" >"$out" 2>&1
    else
        timeout "$limit" "$@" >"$out" 2>"$err"
    fi
    local rc=$?
    echo "device.sh: $name: exit $rc after $((SECONDS - start)) s" >&2
    if [ "$rc" -ne 0 ]; then
        failed+=("$name (exit $rc)")
    fi
}

if wants conflicts; then
    step "conflicts suite, threads $THREADS" 300 "$OUT_DIR/table.txt" "$OUT_DIR/progress.txt" \
        "$BIN/conflicts" --threads "$THREADS" --json "$OUT_DIR/suite.json" --svg "$OUT_DIR/plots" \
        "${SUITE_ARGS[@]}"
fi

if wants soaks; then
    step "soak mixed, $SOAK_THREADS threads, $SOAK_SECONDS s" $((SOAK_SECONDS + 60)) \
        "$OUT_DIR/soak-mixed.txt" "$OUT_DIR/soak-mixed.txt" \
        "$BIN/soak" --seconds "$SOAK_SECONDS" --threads "$SOAK_THREADS" --fault-rate 0.01 --seed 1

    step "soak churn, $SOAK_THREADS threads, $SOAK_SECONDS s" $((SOAK_SECONDS + 60)) \
        "$OUT_DIR/soak-churn.txt" "$OUT_DIR/soak-churn.txt" \
        "$BIN/soak" --mode churn --seconds "$SOAK_SECONDS" --threads "$SOAK_THREADS" --seed 1
fi

# The application suite at 1-16 threads: sequential once per benchmark, the concurrent
# implementations at each count (PyPy's conflict tests always at 3 threads, as PyPy's).
if wants apps; then
    step "apps suite, threads $THREADS" 540 "$OUT_DIR/apps.txt" "$OUT_DIR/apps-progress.txt" \
        "$BIN/apps" --threads "$THREADS" --json "$OUT_DIR/apps.json" "${APPS_ARGS[@]}"
fi

# vacation-low and -high at each client count: sequential, global-lock and commute in one
# process at the first count (its table gives the ratios), then global-lock and commute at the
# others (the ratio to sequential is taken against the first count's sequential time: it runs
# the same number of actions on one thread whatever the count). One time limit for each preset.
vacation_preset() {
    local preset=$1 first=1 clients impls
    IFS=, read -ra counts <<<"$THREADS"
    for clients in "${counts[@]}"; do
        impls=global-lock,commute
        [ "$first" = 1 ] && impls=sequential,global-lock,commute
        first=0
        echo "== vacation --preset $preset -c $clients --impl $impls ${VACATION_ARGS[*]}"
        "$BIN/vacation" --preset "$preset" -c "$clients" --impl "$impls" "${VACATION_ARGS[@]}" \
            --json "$OUT_DIR/vacation-$preset-$clients.json" || return 1
    done
}
if wants vacation; then
    for preset in low high; do
        step "vacation-$preset, clients $THREADS" "$VACATION_LIMIT" \
            "$OUT_DIR/vacation-$preset.txt" "$OUT_DIR/vacation-$preset.txt" \
            bash -c "$(declare -f vacation_preset); $(declare -p THREADS BIN OUT_DIR VACATION_ARGS); vacation_preset $preset"
    done
    # One file for every run's JSON (the device returns a few files only).
    cat "$OUT_DIR"/vacation-*-*.json >"$OUT_DIR/vacation.json" 2>/dev/null
    rm -f "$OUT_DIR"/vacation-*-*.json
fi

if [ "${#failed[@]}" -ne 0 ]; then
    printf 'device.sh: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "device.sh: all steps passed; results in $OUT_DIR" >&2
