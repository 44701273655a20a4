#!/usr/bin/env bash
# Runs every test binary in BUILD/tests (unit, then integration), then the browser tests, and
# prints one closing line "N passed, N failed". Each test program ends with its own such line;
# a program that crashes or prints no closing line counts as one failure. Each program's line shows
# the seconds it took, and a line before the last the whole run's.
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

for t in "$build"/tests/unit/* "$build"/tests/integration/*; do
    [ -x "$t" ] || continue
    name=${t#"$build"/tests/}
    out="$KASA_TEST_OUT/${name//\//_}.log"
    t0=$SECONDS
    "$t" > "$out" 2>&1; rc=$?
    cat "$out" >> "$log"
    tally "$name" "$out" "$rc" $((SECONDS - t0))
done

if [ -z "${KASA_SKIP_BROWSER:-}" ] && ls "$here"/browser/*.test.mjs >/dev/null 2>&1; then
    for t in "$here"/browser/*.test.mjs; do
        name=browser/$(basename "$t")
        out="$KASA_TEST_OUT/${name//\//_}.log"
        t0=$SECONDS
        node "$t" > "$out" 2>&1; rc=$?
        tally "$name" "$out" "$rc" $((SECONDS - t0))
    done
fi

echo "took ${SECONDS}s in all"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
