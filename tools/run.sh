#!/usr/bin/env bash
# run.sh — `make run`: kasa with its Cobo, MT5, Telegram and price-source simulators, all on 127.0.0.1.
#
#   tools/run.sh [KASA_BINARY]        (make run passes build/release/kasa)
#
# Everything lives under ./run/ (override with KASA_RUN_DIR): the generated config (kasa.env), the
# demo keys (keys.env, made once), the journal (run/journal, kept between runs) and one log per
# process. A demo address is linked to the demo MT5 account 100001. Ctrl-C stops everything.
# Ports (override with KASA_PORT, WEBHOOK_PORT, COBO_PORT, MT5_PORT, TELEGRAM_PORT, RATES_PORT,
# MONITOR_PORT, METRICS_PORT): the usual ones
# if free, else the next free one.
set -euo pipefail

kasa=${1:-build/release/kasa}
[ -x "$kasa" ] || { echo "run.sh: no kasa binary at $kasa (run 'make' first)" >&2; exit 1; }
kasa=$(cd "$(dirname "$kasa")" && pwd)/$(basename "$kasa")
rundir=${KASA_RUN_DIR:-$(pwd)/run}
mkdir -p "$rundir"
rundir=$(cd "$rundir" && pwd)

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {   # first free port from $1 on
    local p=$1
    while port_busy "$p"; do p=$((p + 1)); done
    echo "$p"
}
taken=" "
pick_unique() {   # a free port from $1 on, not one picked already (the caller records it in $taken)
    local p=$1
    while :; do
        p=$(pick_port "$p")
        case "$taken" in *" $p "*) p=$((p + 1)); continue ;; esac
        echo "$p"; return
    done
}
kasa_port=$(pick_unique "${KASA_PORT:-8000}");        taken="$taken$kasa_port "
hook_port=$(pick_unique "${WEBHOOK_PORT:-8001}");      taken="$taken$hook_port "
cobo_port=$(pick_unique "${COBO_PORT:-9001}");        taken="$taken$cobo_port "
mt5_port=$(pick_unique "${MT5_PORT:-9002}");          taken="$taken$mt5_port "
tg_port=$(pick_unique "${TELEGRAM_PORT:-9003}");      taken="$taken$tg_port "
rates_port=$(pick_unique "${RATES_PORT:-9004}");      taken="$taken$rates_port "
monitor_port=$(pick_unique "${MONITOR_PORT:-5560}");  taken="$taken$monitor_port "
metrics_port=$(pick_unique "${METRICS_PORT:-9100}");  taken="$taken$metrics_port "

# Demo keys: made once, kept in run/keys.env (mode 600). Cobo's simulator signs webhooks with
# COBO_SIM_KEY_SEED; kasa signs its Cobo API requests with COBO_API_SECRET.
keys=$rundir/keys.env
if [ ! -s "$keys" ]; then
    umask 077
    {
        echo "COBO_SIM_KEY_SEED=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
        echo "COBO_API_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
    } > "$keys"
    umask 022
fi
# shellcheck disable=SC1090
. "$keys"
webhook_pub=$("$kasa" sim pubkey --key-seed "$COBO_SIM_KEY_SEED")
api_key=$("$kasa" sim pubkey --key-seed "$COBO_API_SECRET")

manager_login=1000
manager_password=demo-manager-1
demo_login=100001
demo_password=demo-investor-1
demo_address=TKasaDemoAddr1111111111111111111x
tg_token=100000001:demo-bot-token
tg_chat=-1001000000001

config=$rundir/kasa.env
umask 077
cat > "$config" <<EOF
# kasa demo configuration, written by tools/run.sh (make run). Loopback only.
KASA_LISTEN=127.0.0.1:$kasa_port
KASA_WEBHOOK_LISTEN=127.0.0.1:$hook_port
KASA_JOURNAL_DIR=$rundir/journal
KASA_MONITOR=tcp://127.0.0.1:$monitor_port
KASA_METRICS_LISTEN=127.0.0.1:$metrics_port
KASA_STATIC_DIR=$(pwd)/web/static
# plain http on loopback: a browser would keep no Secure cookie
KASA_COOKIE_SECURE=off
COBO_API_URL=http://127.0.0.1:$cobo_port/v2
COBO_API_KEY=$api_key
COBO_API_SECRET=$COBO_API_SECRET
COBO_WEBHOOK_PUBKEY=$webhook_pub
COBO_WALLET_ID=demo-wallet
KASA_CHAINS=TRON_USDT,TRON
MT5_URL=http://127.0.0.1:$mt5_port
MT5_LOGIN=$manager_login
MT5_PASSWORD=$manager_password
TELEGRAM_API_URL=http://127.0.0.1:$tg_port
TELEGRAM_BOT_TOKEN=$tg_token
TELEGRAM_CHAT_ID=$tg_chat
# rate:fee:minimum — 250 USDT arrives as 249.50
KASA_TOKEN_TRON_USDT=1:0.5:1
# TRX at a live price (the price-source simulator's TRXUSDT), no older than 60 s
KASA_TOKEN_TRON=live/TRXUSDT:0:1
KASA_RATE_URL=http://127.0.0.1:$rates_port
KASA_AUTO_CREDIT_LIMIT=100000
EOF
umask 022

pids=()
stopping=0
stop_all() {
    [ "$stopping" = 1 ] && return
    stopping=1
    echo
    echo "stopping..."
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    echo "stopped. Journal kept in $rundir/journal"
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

wait_port() {   # port, name, log
    for _ in $(seq 1 200); do
        port_busy "$1" && return 0
        sleep 0.05
    done
    echo "run.sh: $2 did not start; its log ($3):" >&2
    tail -n 20 "$3" >&2
    exit 1
}

"$kasa" sim cobo --listen "127.0.0.1:$cobo_port" --webhook-url "http://127.0.0.1:$hook_port/cobo/webhook" \
    --key-seed "$COBO_SIM_KEY_SEED" --client-key "$api_key" --seed "$(date +%s)$$" >>"$rundir/sim-cobo.log" 2>&1 &
pids+=($!)
accounts=()
for i in 1 2 3 4 5; do accounts+=(--account "10000$i:demo-investor-$i:0"); done
"$kasa" sim mt5 --listen "127.0.0.1:$mt5_port" --manager "$manager_login:$manager_password" "${accounts[@]}" \
    >>"$rundir/sim-mt5.log" 2>&1 &
pids+=($!)
"$kasa" sim telegram --listen "127.0.0.1:$tg_port" --token "$tg_token" --log "$rundir/telegram.log" \
    >>"$rundir/sim-telegram.log" 2>&1 &
pids+=($!)
"$kasa" sim rates --listen "127.0.0.1:$rates_port" --price TRXUSDT=0.25 --price ETHUSDT=3000 \
    >>"$rundir/sim-rates.log" 2>&1 &
pids+=($!)
wait_port "$cobo_port" "the Cobo simulator" "$rundir/sim-cobo.log"
wait_port "$mt5_port" "the MT5 simulator" "$rundir/sim-mt5.log"
wait_port "$tg_port" "the Telegram simulator" "$rundir/sim-telegram.log"
wait_port "$rates_port" "the price-source simulator" "$rundir/sim-rates.log"

"$kasa" serve --config "$config" >>"$rundir/kasa.log" 2>&1 &
kasa_pid=$!
pids+=($kasa_pid)
wait_port "$kasa_port" "kasa" "$rundir/kasa.log"
wait_port "$hook_port" "kasa's webhook listener" "$rundir/kasa.log"

if ! "$kasa" wallet link "$demo_address" "$demo_login" --config "$config" >"$rundir/link.out" 2>&1; then
    echo "run.sh: kasa wallet link failed:" >&2
    cat "$rundir/link.out" >&2
    exit 1
fi

k=$kasa
case "$k" in "$(pwd)"/*) k=${k#"$(pwd)"/} ;; esac
cat <<EOF

kasa is running (pid $kasa_pid) with its simulators, all on 127.0.0.1:
  kasa             http://127.0.0.1:$kasa_port
  kasa webhooks    http://127.0.0.1:$hook_port/cobo/webhook (POST, signed by Cobo)
  investor panel   http://127.0.0.1:$kasa_port/         (log in as $demo_login / $demo_password)
  Cobo simulator   http://127.0.0.1:$cobo_port
  MT5 simulator    http://127.0.0.1:$mt5_port           (accounts 100001..100005, passwords demo-investor-N)
  Telegram sim.    http://127.0.0.1:$tg_port
  price source     http://127.0.0.1:$rates_port           (Binance's ticker shape; TRX credited at its TRXUSDT)
  monitor feed     tcp://127.0.0.1:$monitor_port
Demo address $demo_address is linked to MT5 account $demo_login.

Send a demo deposit of 250 USDT (TRON) — credited as 249.50 after the 0.50 fee:
  $k sim deposit --cobo http://127.0.0.1:$cobo_port --address $demo_address --amount 250

Then see where it went:
  curl -s http://127.0.0.1:$mt5_port/sim/accounts      # MT5 balance of $demo_login
  curl -s http://127.0.0.1:$mt5_port/sim/deals?login=$demo_login
  curl -s http://127.0.0.1:$tg_port/sim/messages       # the broker's Telegram chat (also $rundir/telegram.log)
  $k journal dump $rundir/journal
  $k monitor --config $config    # live transitions (start it before the deposit)
  $k replay $rundir/journal

A TRX deposit is credited at the live TRXUSDT price (0.25 in the simulator; change it, or fail it):
  $k sim deposit --cobo http://127.0.0.1:$cobo_port --address $demo_address --amount 100 --token TRON
  curl -s -d '{"symbol":"TRXUSDT","price":"0.2612"}' http://127.0.0.1:$rates_port/sim/price
  curl -s -d '{"mode":"down"}' http://127.0.0.1:$rates_port/sim/faults   # after 60 s: HELD "no fresh rate"

Config: $config   Logs: $rundir/*.log
Press Ctrl-C to stop everything.
EOF

# Runs until Ctrl-C, or until kasa exits on its own.
set +e
wait "$kasa_pid"
rc=$?
if [ "$stopping" = 0 ]; then
    echo "kasa exited with status $rc; its log: $rundir/kasa.log" >&2
    tail -n 20 "$rundir/kasa.log" >&2
fi
exit "$rc"
