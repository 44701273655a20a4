#!/usr/bin/env bash
# Runs every test binary in BUILD/tests (unit, then integration), then the browser tests, and
# prints one closing line "N passed, N failed". Each test program ends with its own such line;
# a program that crashes or prints no closing line counts as one failure. Each program's line shows
# the seconds it took, and a line before the last the whole run's.
# Programs run KASA_TEST_JOBS at a time (default 2: the suite mostly waits; 1: one after another),
# the longest (FIRST) started first so the others fill the cores beside it. Each picks its own free
# loopback ports and its own directories under KASA_TEST_OUT, so they do not meet. Lines come in
# the programs' order whatever the finishing order.
set -u
build=${1:-build/san}
here=$(cd "$(dirname "$0")" && pwd)
export KASA_BIN=${KASA_BIN:-$(cd "$build" && pwd)/kasa}
export KASA_TEST_OUT=${KASA_TEST_OUT:-$(pwd)/build/test-out}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$here/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$KASA_TEST_OUT"
passed=0; failed=0
log="$KASA_TEST_OUT/run.log"; : > "$log"

tally() {   # name, output file, exit status, seconds taken
    local name=$1 out=$2 rc=$3 took=" (${4}s)" line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "FAIL $name (exit $rc, no closing line)$took"; tail -n 20 "$out"; failed=$((failed + 1)); return
    fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
        echo "FAIL $name: $line (exit $rc)$took"; grep -E '^FAIL|^  ' "$out" | head -n 40
        [ "$f" = 0 ] && failed=$((failed + 1))
    else
        echo "ok   $name: $line$took"
    fi
}

# integration/test_crash alone takes a third of the time (its two workers use about one core)
FIRST=" integration/test_crash "
jobs_max=${KASA_TEST_JOBS:-2}
names=(); cmds=(); outs=()
for t in "$build"/tests/unit/* "$build"/tests/integration/*; do
    [ -x "$t" ] || continue
    name=${t#"$build"/tests/}
    names+=("$name"); cmds+=("$t"); outs+=("$KASA_TEST_OUT/${name//\//_}.log")
done
if [ -z "${KASA_SKIP_BROWSER:-}" ] && ls "$here"/browser/*.test.mjs >/dev/null 2>&1; then
    for t in "$here"/browser/*.test.mjs; do
        name=browser/$(basename "$t")
        names+=("$name"); cmds+=("$t"); outs+=("$KASA_TEST_OUT/${name//\//_}.log")
    done
fi

run_one() {   # index: runs that program, then writes "exit-status seconds" to its output's .done
    local t0=$SECONDS rc out=${outs[$1]}
    case ${names[$1]} in
        browser/*) node "${cmds[$1]}" > "$out" 2>&1; rc=$? ;;
        *) "${cmds[$1]}" > "$out" 2>&1; rc=$? ;;
    esac
    echo "$rc $((SECONDS - t0))" > "$out.done"
}

running() {   # how many started programs have not finished
    local done
    done=$(find "$KASA_TEST_OUT" -maxdepth 1 -name '*.log.done' | wc -l)
    echo $((launched - shown - done))
}

shown=0
show_done() {   # tallies, in order, every program finished since the last call
    local rc took
    while [ "$shown" -lt "${#names[@]}" ] && [ -e "${outs[$shown]}.done" ]; do
        read -r rc took < "${outs[$shown]}.done"; rm -f "${outs[$shown]}.done"
        case ${names[$shown]} in browser/*) ;; *) cat "${outs[$shown]}" >> "$log" ;; esac
        tally "${names[$shown]}" "${outs[$shown]}" "$rc" "$took"
        shown=$((shown + 1))
    done
}

order=()
for i in "${!names[@]}"; do
    rm -f "${outs[$i]}.done"
    [[ $FIRST == *" ${names[$i]} "* ]] && order=("$i" "${order[@]}") || order+=("$i")
done
launched=0
for i in "${order[@]}"; do
    while [ "$(running)" -ge "$jobs_max" ]; do wait -n 2>/dev/null || sleep 0.1; show_done; done
    launched=$((launched + 1))
    run_one "$i" &
    show_done
done
wait; show_done

echo "took ${SECONDS}s in all"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
