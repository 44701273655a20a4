#!/usr/bin/env bash
# run.sh — `make fuzz`: runs each libFuzzer target for FUZZ_SECONDS (or until FUZZ_RUNS executions,
# whichever comes first), one after another, at nice FUZZ_NICE (default 19, the lowest priority),
# over a working corpus seeded from tests/fuzz/corpus/NAME, and prints one line per target
# (executions, executions per second, corpus size, result). A crash stops the run: its input is
# saved under BUILD/crashes/ and belongs, once fixed, in tests/fuzz/regress/NAME/ (the normal suite
# replays it: tests/unit/test_fuzz_replay.c).
#
#   tests/fuzz/run.sh BUILD [NAME...]        (make fuzz passes build/fuzz and $(FUZZ))
set -u
build=${1:?usage: run.sh BUILD [NAME...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:--1}
niceness=${FUZZ_NICE:-19}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for b in "$build"/fuzz_*; do [ -x "$b" ] && names+=("$(basename "$b")"); done
fi
# the configuration target reads the environment too: none of kasa's keys may leak in
for v in $(env | grep -oE '^(KASA|COBO|MT5|TELEGRAM)_[A-Za-z0-9_]*'); do unset "$v"; done
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# A freed block waits in a 32 MiB quarantine (ASan's default is 256 MiB) before it is reused: a use
# after free is still caught for many thousands of inputs after the free, and the fuzzer does not
# spend its time faulting in fresh pages for every connection's memory pool.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=32}
export TMPDIR=${TMPDIR:-/tmp}
mkdir -p "$build/crashes" "$build/logs"
# -reload=0: one fuzzer per corpus, so nothing else adds to it; libFuzzer would otherwise list and stat
# every file of the working corpus each second (thousands of files, a few per cent of the time).
printf '%-17s %14s %10s %8s  %s\n' target executions "exec/s" corpus result
status=0
for name in "${names[@]}"; do
    bin=$build/$name
    [ -x "$bin" ] || { echo "run.sh: no $bin (make fuzz-build)" >&2; status=1; continue; }
    work=$build/corpus/$name
    mkdir -p "$work"
    log=$build/logs/$name.log
    nice -n "$niceness" "$bin" -max_total_time="$seconds" -runs="$runs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -reload=0 \
        -artifact_prefix="$build/crashes/$name-" "$work" "$here/corpus/$name" > "$log" 2>&1
    rc=$?
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1)
    files=$(find "$work" -type f | wc -l)
    result=clean
    if [ "$rc" != 0 ]; then
        result="CRASH (exit $rc): $(ls -t "$build/crashes/$name-"* 2>/dev/null | head -n 1); log $log"
        status=1
    fi
    printf '%-17s %14s %10s %8s  %s\n' "$name" "${execs:-?}" "${rate:-?}" "$files" "$result"
    [ "$rc" != 0 ] && { grep -E 'ERROR|SUMMARY|property failed' "$log" | head -n 5; break; }
done
exit $status
