#!/usr/bin/env bash
# Runs every benchmark in BUILD/bench in order; each prints its own table.
set -u
build=${1:-build/release}
export KASA_BIN=${KASA_BIN:-$(cd "$build" && pwd)/kasa}
export KASA_BENCH_DIR=${KASA_BENCH_DIR:-$(pwd)/build/bench-data}
mkdir -p "$KASA_BENCH_DIR"
status=0
for b in "$build"/bench/bench_*; do
    [ -x "$b" ] || continue
    echo "== $(basename "$b")"
    "$b" || status=1
    echo
done
for s in tests/bench/*.sh; do
    [ "$(basename "$s")" = run.sh ] && continue
    [ -x "$s" ] || continue
    echo "== $(basename "$s")"
    "$s" "$build" || status=1
    echo
done
exit $status
