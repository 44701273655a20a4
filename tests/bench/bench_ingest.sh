#!/usr/bin/env bash
# bench_ingest.sh BUILD — how fast kasa takes webhooks, with its simulators, on loopback.
#   (a) signed webhooks/s accepted durably: wrk, pre-signed distinct webhooks (each answered 201
#       only once its record is fsynced), tests/bench/ingest.lua, 64 connections, 10 s
#   (b) ack latency p50/p99 at a fixed 2,000/s, open loop (latency from each request's due time),
#       three runs of 5 s, the median one shown
#   (c) webhook -> CREDITED p99 at 1,000/s through the Cobo and MT5 simulators (monitor feed)
#   (d) kasa's peak RSS (VmHWM) after each phase
#   (e) the deposit path without and with MongoDB configured: ack latency at MONGO_LOAD_RATE and
#       webhook -> CREDITED at CREDIT_RATE2, each on a kasa without KASA_MONGO_URI and on one with
#       it, and the projection's lag (records, seconds) when the load ends and how long it takes to
#       catch up. MongoDB: BENCH_MONGO_URI, else the tests' server (tests/mongo/server.mjs) when its
#       npm packages are installed (make test does), else (e) is skipped.
#   (f) webhook ack p99 at BURST_RATE/s while one investor session sends 48 parallel GET /api/me every
#       second and MT5 answers each call in 1 s (the webhooks have their own listener and threads),
#       next to the same load just before with no burst
#   (g) the front door side by side: kasa and the kind of receiver it replaces (tests/bench/peer_ingest.py:
#       FastAPI + uvicorn, Ed25519 with PyNaCl, a fsynced unique insert in SQLite) behind the same
#       `wrk -t2 -c32` load of distinct pre-signed webhooks, one after the other on the same machine,
#       counting 2xx answers only; the ratio kasa / peer
# Each phase runs on a fresh journal and a fresh kasa. Run by `make bench` with BUILD=build/release.
# Knobs: INGEST_SECONDS (10), INGEST_CONNS (64), INGEST_COUNT (distinct webhooks, 250000),
#        LOAD_RATE (2000), LOAD_SECONDS (5), LOAD_REPEAT (3), CREDIT_RATE (1000), CREDIT_SECONDS (3), CREDIT_RATE2
#        (100: (c) again below saturation), BENCH_KASA_EXTRA (config lines added to kasa's),
#        MONGO_LOAD_RATE (1000), MONGO_LOAD_SECONDS (3), BENCH_MONGO_URI.
#        BURST_RATE (200), BURST_SECONDS (5), BURST_SIZE (48), BURST_MT5_MS (1000), BURST_ONLY (1: phase (f) alone),
#        COMPARE_SECONDS (10), COMPARE_COUNT (300000), PEER_WORKERS (1: uvicorn processes; two contend for SQLite's one writer and measured slower here),
#        COMPARE_ONLY (1: phase (g) alone; 0: every phase but (g)), COMPARE_PEER (0: kasa's side alone).
set -u
build=${1:-build/release}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
kasa=${KASA_BIN:-$build/kasa}
gen=$build/bench/bench_ingest_gen
[ -x "$kasa" ] && [ -x "$gen" ] || { echo "bench_ingest: build $kasa and $gen first (make bench)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench_ingest: wrk is not installed (make deps)" >&2; exit 1; }
dir=${KASA_BENCH_DIR:-$root/build/bench-data}/ingest
rm -rf "$dir"; mkdir -p "$dir"

INGEST_SECONDS=${INGEST_SECONDS:-10}; INGEST_CONNS=${INGEST_CONNS:-64}; INGEST_COUNT=${INGEST_COUNT:-250000}
LOAD_RATE=${LOAD_RATE:-2000}; LOAD_SECONDS=${LOAD_SECONDS:-5}; LOAD_REPEAT=${LOAD_REPEAT:-3}
CREDIT_RATE=${CREDIT_RATE:-1000}; CREDIT_SECONDS=${CREDIT_SECONDS:-3}; CREDIT_RATE2=${CREDIT_RATE2:-100}
MONGO_LOAD_RATE=${MONGO_LOAD_RATE:-1000}; MONGO_LOAD_SECONDS=${MONGO_LOAD_SECONDS:-3}
BURST_RATE=${BURST_RATE:-200}; BURST_SECONDS=${BURST_SECONDS:-5}; BURST_SIZE=${BURST_SIZE:-48}; BURST_ONLY=${BURST_ONLY:-0}; BURST_MT5_MS=${BURST_MT5_MS:-1000}
COMPARE_SECONDS=${COMPARE_SECONDS:-10}; COMPARE_COUNT=${COMPARE_COUNT:-300000}; PEER_WORKERS=${PEER_WORKERS:-1}; COMPARE_ONLY=${COMPARE_ONLY:-}


port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
used=" "
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))   # below the ephemeral range: no outgoing connection holds it
        case "$used" in *" $p "*) continue ;; esac
        port_busy "$p" || { used="$used$p "; echo "$p"; return; }
    done
}
wait_port() { for _ in $(seq 1 400); do port_busy "$1" && return 0; sleep 0.05; done; return 1; }

# the test keys of tests/integration/harness.h
key_seed=1111111111111111111111111111111111111111111111111111111111111111
client_seed=2222222222222222222222222222222222222222222222222222222222222222
webhook_pub=$("$kasa" sim pubkey --key-seed "$key_seed")
client_pub=$("$kasa" sim pubkey --key-seed "$client_seed")

pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; pids=(); }
trap cleanup EXIT
trap 'exit 130' INT TERM

cobo_port=$(free_port); mt5_port=$(free_port); tg_port=$(free_port); dead_port=$(free_port)
used="$used$cobo_port $mt5_port $tg_port $dead_port "
# the Cobo simulator's own webhooks go to a sink that answers 200: the load generators send the
# timed ones to kasa, on their clock
"$gen" sink --port "$dead_port" >"$dir/sink.log" 2>&1 & pids+=($!)
"$kasa" sim cobo --listen "127.0.0.1:$cobo_port" --webhook-url "http://127.0.0.1:$dead_port/cobo/webhook" \
    --key-seed "$key_seed" --client-key "$client_pub" >"$dir/sim-cobo.log" 2>&1 & pids+=($!)
accounts=()
for i in $(seq 1 20); do accounts+=(--account "$((100000 + i)):Investor1:0"); done
"$kasa" sim mt5 --listen "127.0.0.1:$mt5_port" --manager 1000:ManagerPass1 "${accounts[@]}" \
    >"$dir/sim-mt5.log" 2>&1 & pids+=($!)
"$kasa" sim telegram --listen "127.0.0.1:$tg_port" --token 123456:TESTTOKEN >"$dir/sim-telegram.log" 2>&1 & pids+=($!)
for p in $cobo_port $mt5_port $tg_port $dead_port; do wait_port "$p" || { echo "bench_ingest: a simulator did not start" >&2; tail "$dir"/sim-*.log >&2; exit 1; }; done

kasa_pid=0
kasa_port=0       # the webhook listener (KASA_WEBHOOK_LISTEN): every figure here is a webhook's
api_port=0
monitor_port=0
# start_kasa NAME [EXTRA]: a fresh journal and a fresh kasa (EXTRA: more configuration lines)
start_kasa() {
    kasa_port=$(free_port); api_port=$(free_port); monitor_port=$(free_port)
    cat > "$dir/$1.env" <<EOF
KASA_LISTEN=127.0.0.1:$api_port
KASA_WEBHOOK_LISTEN=127.0.0.1:$kasa_port
KASA_JOURNAL_DIR=$dir/$1-journal
KASA_MONITOR=tcp://127.0.0.1:$monitor_port
COBO_API_URL=http://127.0.0.1:$cobo_port/v2
COBO_API_KEY=$client_pub
COBO_API_SECRET=$client_seed
COBO_WEBHOOK_PUBKEY=$webhook_pub
COBO_WALLET_ID=b0b0b0b0-0000-4000-8000-000000000001
KASA_CHAINS=TRON_USDT,TRON
MT5_URL=http://127.0.0.1:$mt5_port
MT5_LOGIN=1000
MT5_PASSWORD=ManagerPass1
TELEGRAM_API_URL=http://127.0.0.1:$tg_port
TELEGRAM_BOT_TOKEN=123456:TESTTOKEN
TELEGRAM_CHAT_ID=-1001234567890
KASA_TOKEN_TRON_USDT=1:0.5:1
KASA_AUTO_CREDIT_LIMIT=100000
KASA_LOG_LEVEL=warn
KASA_METRICS_LISTEN=127.0.0.1:0
# one load generator on loopback opens more connections than one client may
KASA_MAX_CONNECTIONS_PER_IP=1024
${BENCH_KASA_EXTRA:-}
${2:-}
EOF
    "$kasa" serve --config "$dir/$1.env" >"$dir/$1-kasa.log" 2>&1 &
    kasa_pid=$!; pids+=($kasa_pid)
    { wait_port "$kasa_port" && wait_port "$api_port"; } || { echo "bench_ingest: kasa did not start" >&2; tail -n 20 "$dir/$1-kasa.log" >&2; exit 1; }
}
stop_kasa() { kill -TERM "$kasa_pid" 2>/dev/null; wait "$kasa_pid" 2>/dev/null; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$kasa_pid/status" 2>/dev/null || echo 0; }
kv() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<< " $2" | head -n 1; }
ms() { awk -v us="${1:-0}" 'BEGIN { printf "%.2f", us / 1000 }'; }

fs_line=$("$gen" fsync --dir "$dir")

mongo_uri=""; res=""; b_line=""; c_line=""; g_kasa=""; g_peer=""
# ---- (g) the front door side by side -----------------------------------------------------------
# cpu_ticks PID: user + system clock ticks of PID and its children now running (uvicorn's workers)
cpu_ticks() {
    local t=0 p
    for p in $1 $(pgrep -P "$1" 2>/dev/null); do
        t=$(( t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0) ))
    done
    echo "$t"
}
# per_2xx_us T0 T1 N: CPU microseconds per answer between two cpu_ticks readings
per_2xx_us() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1e6 / hz / n; else print "?" }'; }
# wrk_2xx NAME PORT: the compare load against PORT; sets g_out to "2xx rate created repeated other p50 p99"
wrk_2xx() {
    local out r
    out=$(INGEST_FILE="$dir/compare.tsv" INGEST_THREADS=2 wrk -t2 -c32 -d"${COMPARE_SECONDS}s" --timeout 10s \
        -s "$here/ingest.lua" "http://127.0.0.1:$2" 2>&1)
    echo "$out" > "$dir/compare-$1.out"
    r=$(grep WRK_RESULT <<< "$out")
    g_out="$(( $(kv created "$r") + $(kv repeated "$r") )) $(awk -v c="$(kv created "$r")" -v p="$(kv repeated "$r")" \
        -v d="$(kv duration_us "$r")" 'BEGIN { printf "%.0f", (c + p) / (d / 1e6) }') $(kv created "$r") $(kv repeated "$r") $(kv other "$r") $(kv p50_us "$r") $(kv p99_us "$r")"
}
g_run=0; g_peer_ok=0
if [ "$BURST_ONLY" != 1 ] && [ "$COMPARE_ONLY" != 0 ]; then
    g_run=1
    if [ "${COMPARE_PEER:-1}" = 0 ]; then
        :
    elif [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import fastapi, uvicorn, nacl' 2>/dev/null; then
        g_peer_ok=1
    else
        echo "(g) the peer is skipped: /usr/bin/python3 with fastapi, uvicorn and nacl is needed (make bench installs them)" >&2
    fi
fi
if [ "$g_run" = 1 ]; then
    echo "generating $COMPARE_COUNT signed webhooks for the side-by-side run..."
    "$gen" gen --count "$COMPARE_COUNT" --out "$dir/compare.tsv" --tag "compare-$$" || { echo "bench_ingest: gen failed" >&2; exit 1; }
    g_load_before=$(cut -d' ' -f1 /proc/loadavg)
    start_kasa g
    kasa_cpu0=$(cpu_ticks "$kasa_pid")
    wrk_2xx kasa "$kasa_port"; g_kasa=$g_out
    g_kasa_us=$(per_2xx_us "$kasa_cpu0" "$(cpu_ticks "$kasa_pid")" "${g_kasa%% *}")
    stop_kasa
fi
if [ -n "$g_kasa" ] && [ "$g_peer_ok" = 1 ]; then
    peer_port=$(free_port)
    /usr/bin/python3 "$here/peer_ingest.py" --port "$peer_port" --pubkey "$webhook_pub" --db "$dir/peer.db" \
        --workers "$PEER_WORKERS" >"$dir/peer.log" 2>&1 & peer_pid=$!; pids+=($peer_pid)
    for _ in $(seq 1 600); do port_busy "$peer_port" && break; sleep 0.1; done
    sleep 1   # every uvicorn worker up, not only the first
    peer_cpu0=$(cpu_ticks "$peer_pid")
    wrk_2xx peer "$peer_port"; g_peer=$g_out
    g_peer_us=$(per_2xx_us "$peer_cpu0" "$(cpu_ticks "$peer_pid")" "${g_peer%% *}")
    kill -TERM "$peer_pid" 2>/dev/null; wait "$peer_pid" 2>/dev/null
    g_rows=$(/usr/bin/python3 - "$dir/peer.db" <<'PY' 2>/dev/null
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("select count(*) from deposits").fetchone()[0])
PY
)
fi
g_load_after=$(cut -d' ' -f1 /proc/loadavg)
rm -f "$dir/compare.tsv"
if [ "$COMPARE_ONLY" = 1 ]; then
    :
elif [ "$BURST_ONLY" != 1 ]; then   # BURST_ONLY=1: phase (f) alone
# ---- (a) throughput --------------------------------------------------------------------------------
echo "generating $INGEST_COUNT signed webhooks..."
"$gen" gen --count "$INGEST_COUNT" --out "$dir/webhooks.tsv" --tag "ingest-$$" || { echo "bench_ingest: gen failed" >&2; exit 1; }
start_kasa a
wrk_out=$(INGEST_FILE="$dir/webhooks.tsv" INGEST_THREADS=2 wrk -t2 -c"$INGEST_CONNS" -d"${INGEST_SECONDS}s" \
    --timeout 10s -s "$here/ingest.lua" "http://127.0.0.1:$kasa_port" 2>&1)
echo "$wrk_out" > "$dir/wrk.out"
res=$(grep WRK_RESULT <<< "$wrk_out")
a_created=$(kv created "$res"); a_rep=$(kv repeated "$res"); a_other=$(kv other "$res")
a_dur=$(kv duration_us "$res"); a_p50=$(kv p50_us "$res"); a_p99=$(kv p99_us "$res")
a_rate=$(awk -v c="${a_created:-0}" -v d="${a_dur:-1}" 'BEGIN { printf "%.0f", c / (d / 1e6) }')
a_hwm=$(hwm_kb)
stop_kasa
a_records=$("$kasa" journal stats "$dir/a-journal" 2>/dev/null | grep -E '^(records|bytes):' | tr '\n' ' ')
rm -f "$dir/webhooks.tsv"

# ---- (b) ack latency at a fixed rate, LOAD_REPEAT times (the run with the median p99 is shown) --
start_kasa b
b_lines=()
for r in $(seq 1 "$LOAD_REPEAT"); do
    b_out=$("$gen" load --port "$kasa_port" --rate "$LOAD_RATE" --seconds "$LOAD_SECONDS" --conns 32 --tag "load-$$-$r" 2>&1)
    echo "$b_out" >> "$dir/load.out"
    b_lines+=("$(grep '^LOAD' <<< "$b_out")")
done
b_p99s=$(for l in "${b_lines[@]}"; do kv p99_us "$l"; done | sort -n | tr '\n' ' ')
b_median=$(tr ' ' '\n' <<< "$b_p99s" | grep . | sed -n "$(( (LOAD_REPEAT + 1) / 2 ))p")
b_line=""
for l in "${b_lines[@]}"; do [ "$(kv p99_us "$l")" = "$b_median" ] && { b_line=$l; break; }; done
b_hwm=$(hwm_kb)
stop_kasa

# ---- (c) webhook -> CREDITED ---------------------------------------------------------------------
start_kasa c
addr_args=()
for i in $(seq 1 20); do
    a=TBenchCredit$(printf '%021d' "$i")
    "$kasa" wallet link "$a" "$((100000 + i))" --config "$dir/c.env" >>"$dir/link.out" 2>&1 || { echo "bench_ingest: wallet link failed" >&2; cat "$dir/link.out" >&2; exit 1; }
    addr_args+=(--address "$a:$((100000 + i))")
done
c_out=$("$gen" credit --port "$kasa_port" --cobo "http://127.0.0.1:$cobo_port" --monitor "tcp://127.0.0.1:$monitor_port" \
    --rate "$CREDIT_RATE" --seconds "$CREDIT_SECONDS" --conns 32 "${addr_args[@]}" 2>&1)
echo "$c_out" > "$dir/credit.out"
c_line=$(grep '^CREDIT' <<< "$c_out")
c_hwm=$(hwm_kb)
stop_kasa

# ---- (c') the same at a rate the pipeline keeps up with: latency without a backlog ---------------
start_kasa c2
for i in $(seq 1 20); do
    "$kasa" wallet link "TBenchCredit$(printf '%021d' "$i")" "$((100000 + i))" --config "$dir/c2.env" >>"$dir/link.out" 2>&1
done
c2_out=$("$gen" credit --port "$kasa_port" --cobo "http://127.0.0.1:$cobo_port" --monitor "tcp://127.0.0.1:$monitor_port" \
    --rate "$CREDIT_RATE2" --seconds "$CREDIT_SECONDS" --conns 32 "${addr_args[@]}" 2>&1)
echo "$c2_out" > "$dir/credit2.out"
c2_line=$(grep '^CREDIT' <<< "$c2_out")
stop_kasa

# ---- (e) without and with MongoDB ------------------------------------------------------------------
mongo_uri=${BENCH_MONGO_URI:-}
if [ -z "$mongo_uri" ] && command -v node >/dev/null && [ -d "$root/tests/mongo/node_modules/@push.rocks/smartmongo" ]; then
    mongo_port=$(free_port)
    node "$root/tests/mongo/server.mjs" --port "$mongo_port" >"$dir/mongo-fixture.log" 2>&1 & pids+=($!)
    wait_port "$mongo_port" && mongo_uri="mongodb://127.0.0.1:$mongo_port/"
fi
# lag NAME: the projection's lag now, then polls until it is 0; sets lag_records, lag_seconds, catchup_s
lag() {
    local out t0 t1
    out=$("$kasa" mongo status --config "$dir/$1.env" 2>&1)
    lag_records=$(kv lag_records "$out"); lag_seconds=$(kv lag_seconds "$out")
    [ -n "$lag_records" ] || { lag_records="?"; lag_seconds="? (kasa mongo status: ${out%%$'\n'*})"; }
    t0=$(date +%s.%N)
    for _ in $(seq 1 1200); do
        [ "$(kv lag_records "$("$kasa" mongo status --config "$dir/$1.env" 2>&1)")" = 0 ] && break
        sleep 0.1
    done
    t1=$(date +%s.%N)
    catchup_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
}
# mongo_run NAME EXTRA: (b) once at MONGO_LOAD_RATE and (c') once, on fresh kasas with EXTRA
mongo_run() {
    start_kasa "$1-ack" "$2"
    local out
    out=$("$gen" load --port "$kasa_port" --rate "$MONGO_LOAD_RATE" --seconds "$MONGO_LOAD_SECONDS" --conns 32 \
        --tag "mload-$1-$$" 2>&1)
    echo "$out" >> "$dir/mongo-load.out"
    e_ack=$(grep '^LOAD' <<< "$out")
    e_ack_lag=""
    [ -n "$2" ] && { lag "$1-ack"; e_ack_lag="$lag_records records / ${lag_seconds} s behind at the end; caught up ${catchup_s} s later"; }
    stop_kasa
    start_kasa "$1-credit" "$2"
    for i in $(seq 1 20); do
        "$kasa" wallet link "TBenchCredit$(printf '%021d' "$i")" "$((100000 + i))" --config "$dir/$1-credit.env" >>"$dir/link.out" 2>&1
    done
    out=$("$gen" credit --port "$kasa_port" --cobo "http://127.0.0.1:$cobo_port" --monitor "tcp://127.0.0.1:$monitor_port" \
        --rate "$CREDIT_RATE2" --seconds "$CREDIT_SECONDS" --conns 32 "${addr_args[@]}" 2>&1)
    echo "$out" >> "$dir/mongo-credit.out"
    e_credit=$(grep '^CREDIT' <<< "$out")
    e_credit_lag=""
    [ -n "$2" ] && { lag "$1-credit"; e_credit_lag="$lag_records records / ${lag_seconds} s behind at the end; caught up ${catchup_s} s later"; }
    stop_kasa
}
if [ -n "$mongo_uri" ]; then
    mongo_run e0 ""
    e0_ack=$e_ack; e0_credit=$e_credit
    mongo_run e1 "KASA_MONGO_URI=$mongo_uri
KASA_MONGO_DB=kasa_bench_$$"
    e1_ack=$e_ack; e1_credit=$e_credit; e1_ack_lag=$e_ack_lag; e1_credit_lag=$e_credit_lag
fi

fi

# ---- (f) webhooks while an investor bursts /api/me against a slow MT5 ----------------------------
if [ "$COMPARE_ONLY" != 1 ]; then
start_kasa f
sid=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' -d '{"login":"100001","password":"Investor1"}' \
    "http://127.0.0.1:$api_port/api/login" | sed -n 's/^[Ss]et-[Cc]ookie: kasa_sid=\([0-9a-f]*\).*/\1/p')
[ -n "$sid" ] || echo "bench_ingest: (f) could not log in" >&2
curl -s -o /dev/null -H 'Content-Type: application/json' -d "{\"delay_ms\":$BURST_MT5_MS}" "http://127.0.0.1:$mt5_port/sim/faults"
f0_out=$("$gen" load --port "$kasa_port" --rate "$BURST_RATE" --seconds "$BURST_SECONDS" --conns 8 --tag "calm-$$" 2>&1)
echo "$f0_out" > "$dir/calm.out"
f0_line=$(grep '^LOAD' <<< "$f0_out")
"$gen" burst --port "$api_port" --sid "$sid" --size "$BURST_SIZE" --seconds "$BURST_SECONDS" > "$dir/burst.codes" 2>&1 &
burst_pid=$!
f_out=$("$gen" load --port "$kasa_port" --rate "$BURST_RATE" --seconds "$BURST_SECONDS" --conns 8 --tag "burst-$$" 2>&1)
echo "$f_out" > "$dir/burst.out"
wait "$burst_pid"
curl -s -o /dev/null -H 'Content-Type: application/json' -d '{"delay_ms":0}' "http://127.0.0.1:$mt5_port/sim/faults"
f_line=$(grep '^LOAD' <<< "$f_out")
f_burst=$(grep '^BURST' "$dir/burst.codes")
f_codes="200 x$(kv s200 "$f_burst"), 429 x$(kv s429 "$f_burst"), 503 x$(kv s503 "$f_burst"), other x$(kv other "$f_burst")"
stop_kasa
fi

verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { if (v == "") print "n/a"; else if ((dir == ">=" && v + 0 >= t) || (dir == "<=" && v + 0 <= t)) print "ok"; else print "MISS" }'; }
b_p50=$(kv p50_us "$b_line"); b_p99=$(kv p99_us "$b_line"); b_rate=$(kv rate "$b_line"); b_bad=$(kv bad "$b_line")
c_p50=$(kv p50_us "$c_line"); c_p99=$(kv p99_us "$c_line"); c_n=$(kv n "$c_line"); c_cr=$(kv credited "$c_line")
b_p99ms=$([ -n "$b_p99" ] && ms "$b_p99"); c_p99ms=$([ -n "$c_p99" ] && ms "$c_p99")

printf '\n%-46s %-14s %-34s %s\n' "kasa ingest ($(nproc) CPUs, $(basename "$build"))" "target" "measured" ""
if [ "$COMPARE_ONLY" != 1 ]; then
if [ "$BURST_ONLY" != 1 ]; then   # (a) to (e) were not run with BURST_ONLY=1
printf '%-46s %-14s %-34s %s\n' "    disk: fdatasync of a 4 KiB append avg / p99, ms" "" \
    "$(ms "$(kv avg_us "$fs_line")") / $(ms "$(kv p99_us "$fs_line")")" ""
printf '%-46s %-14s %-34s %s\n' "(a) signed webhooks accepted durably, /s" ">= 10000" \
    "${a_rate:-?}/s (${INGEST_CONNS} conns, ${INGEST_SECONDS} s)" "$(verdict "$a_rate" 10000 '>=')"
printf '%-46s %-14s %-34s %s\n' "    wrk: 201 new / 200 repeat / other" "" "${a_created:-?} / ${a_rep:-?} / ${a_other:-?}" ""
printf '%-46s %-14s %-34s %s\n' "    wrk latency p50 / p99, ms" "" "$(ms "${a_p50:-0}") / $(ms "${a_p99:-0}")" ""
printf '%-46s %-14s %-34s %s\n' "(b) ack latency at ${LOAD_RATE}/s p50 / p99, ms" "p99 <= 5" \
    "$(ms "${b_p50:-0}") / ${b_p99ms:-?} (rate ${b_rate:-?}/s, ${b_bad:-?} bad)" "$(verdict "$b_p99ms" 5 '<=')"
printf '%-46s %-14s %-34s %s\n' "    p99 of each of the ${LOAD_REPEAT} runs, ms" "" "$(for v in $b_p99s; do printf '%s ' "$(ms "$v")"; done)" ""
printf '%-46s %-14s %-34s %s\n' "(c) webhook -> CREDITED at ${CREDIT_RATE}/s p50 / p99, ms" "p99 <= 25" \
    "$(ms "${c_p50:-0}") / ${c_p99ms:-?} (${c_cr:-?} of ${c_n:-?} credited)" "$(verdict "$c_p99ms" 25 '<=')"
c2_p50=$(kv p50_us "$c2_line"); c2_p99=$(kv p99_us "$c2_line"); c2_n=$(kv n "$c2_line"); c2_cr=$(kv credited "$c2_line")
printf '%-46s %-14s %-34s %s\n' "    the same at ${CREDIT_RATE2}/s p50 / p99, ms" "" \
    "$(ms "${c2_p50:-0}") / $([ -n "$c2_p99" ] && ms "$c2_p99") (${c2_cr:-?} of ${c2_n:-?} credited)" ""
printf '%-46s %-14s %-34s %s\n' "(d) kasa peak RSS (VmHWM) after a / b / c, MB" "" \
    "$(awk -v a="${a_hwm:-0}" -v b="${b_hwm:-0}" -v c="${c_hwm:-0}" 'BEGIN { printf "%.1f / %.1f / %.1f", a/1024, b/1024, c/1024 }')" ""
[ -n "$a_records" ] && echo "    journal after (a): $a_records"
if [ -n "$mongo_uri" ]; then
    e_row() {   # label, LOAD/CREDIT line
        printf '%-46s %-14s %-34s %s\n' "$1" "" "$(ms "$(kv p50_us "$2")") / $(ms "$(kv p99_us "$2")")" ""
    }
    echo "(e) without / with MongoDB ($( [ -n "${BENCH_MONGO_URI:-}" ] && echo "BENCH_MONGO_URI" || echo "the tests' CongoDB server, in-memory JavaScript: not a MongoDB"))"
    e_row "    ack at ${MONGO_LOAD_RATE}/s p50 / p99, ms, no MongoDB" "$e0_ack"
    e_row "    ack at ${MONGO_LOAD_RATE}/s p50 / p99, ms, MongoDB" "$e1_ack"
    printf '%-46s %-14s %s\n' "    projection lag after the ack run" "" "$e1_ack_lag"
    e_row "    CREDITED at ${CREDIT_RATE2}/s p50 / p99, ms, no MongoDB" "$e0_credit"
    e_row "    CREDITED at ${CREDIT_RATE2}/s p50 / p99, ms, MongoDB" "$e1_credit"
    printf '%-46s %-14s %s\n' "    projection lag after the credit run" "" "$e1_credit_lag"
else
    echo "(e) skipped: no MongoDB (set BENCH_MONGO_URI, or install tests/mongo's packages: make npm-deps)"
fi
fi
f_p50=$(kv p50_us "$f_line"); f_p99=$(kv p99_us "$f_line"); f_p99ms=$([ -n "$f_p99" ] && ms "$f_p99")
printf '%-46s %-14s %-34s %s\n' "(f) webhook ack p50 / p99 during /api/me bursts, ms" "p99 < 50" \
    "$(ms "${f_p50:-0}") / ${f_p99ms:-?} (${BURST_RATE}/s, $(kv bad "$f_line") bad)" "$(verdict "$f_p99ms" 50 '<=')"
printf '%-46s %-14s %-34s %s\n' "    ${BURST_SIZE} GET /api/me a second, MT5 at 1 s: answers" "" "${f_codes:-?}" ""
printf '%-46s %-14s %-34s %s\n' "    the same webhooks just before, no burst, ms" "" \
    "$(ms "$(kv p50_us "$f0_line")") / $(ms "$(kv p99_us "$f0_line")") ($(kv bad "$f0_line") bad)" ""
echo "    raw output: $dir/{wrk,load,credit,credit2,calm,burst}.out (every 201 waited for its record's fdatasync)"
fi
if [ -n "$g_kasa" ] && [ -z "$g_peer" ]; then
    read -r gk_n gk_rate gk_c gk_r gk_o gk_p50 gk_p99 <<< "$g_kasa"
    echo "(g) kasa alone: wrk -t2 -c32 -d${COMPARE_SECONDS}s: ${gk_rate} 2xx/s ($gk_c / $gk_r / $gk_o), p50 / p99 $(ms "$gk_p50") / $(ms "$gk_p99") ms, ${g_kasa_us} CPU us per 2xx, load ${g_load_before}"
fi
if [ -n "$g_kasa" ] && [ -n "$g_peer" ]; then
    read -r gk_n gk_rate gk_c gk_r gk_o gk_p50 gk_p99 <<< "$g_kasa"
    read -r gp_n gp_rate gp_c gp_r gp_o gp_p50 gp_p99 <<< "$g_peer"
    g_ratio=$(awk -v k="$gk_rate" -v p="$gp_rate" 'BEGIN { if (p > 0) printf "%.1f", k / p; else print "?" }')
    g_cpu_ratio=$(awk -v k="$g_kasa_us" -v p="$g_peer_us" 'BEGIN { if (k > 0 && p > 0) printf "%.1fx less", p / k; else print "?" }')
    echo "(g) the front door side by side: wrk -t2 -c32 -d${COMPARE_SECONDS}s, distinct pre-signed webhooks, 2xx only"
    echo "    (one after the other on this machine; load average ${g_load_before} before, ${g_load_after} after;"
    echo "    fdatasync of a 4 KiB append here: $(ms "$(kv avg_us "$fs_line")") ms on average, p99 $(ms "$(kv p99_us "$fs_line")") ms)"
    printf '    %-40s %10s %20s %16s %14s\n' "server" "2xx /s" "201 / 200 / other" "p50 / p99, ms" "CPU us / 2xx"
    printf '    %-40s %10s %20s %16s %14s\n' "kasa (fdatasync per group commit)" "$gk_rate" "$gk_c / $gk_r / $gk_o" "$(ms "$gk_p50") / $(ms "$gk_p99")" "$g_kasa_us"
    printf '    %-40s %10s %20s %16s %14s\n' "FastAPI+uvicorn x${PEER_WORKERS}, PyNaCl, SQLite FULL" "$gp_rate" "$gp_c / $gp_r / $gp_o" "$(ms "$gp_p50") / $(ms "$gp_p99")" "$g_peer_us"
    printf '    %-40s %10s %20s %16s %14s\n' "ratio kasa / peer (goal >= 10)" "${g_ratio}x" "$(verdict "$g_ratio" 10 '>=')" "" "$g_cpu_ratio"
    echo "    peer's table holds ${g_rows:-?} rows; raw output: $dir/compare-{kasa,peer}.out"
fi
if [ "$COMPARE_ONLY" = 1 ]; then [ -n "$g_kasa" ]; exit; fi
[ "$BURST_ONLY" = 1 ] || { [ -n "$res" ] && [ -n "$b_line" ] && [ -n "$c_line" ]; }
