#!/usr/bin/env bash
# run_cluster.sh — `make run-cluster`: three kasa nodes in cluster mode (KASA_CLUSTER=on) behind Debian's
# nginx, on one MongoDB (the tests' MongoDB wire server, tests/mongo/server.mjs, in memory) with the Cobo,
# MT5 and Telegram simulators, all on 127.0.0.1.
#
#   tools/run_cluster.sh [KASA_BINARY]        (make run-cluster passes build/release/kasa)
#
# Everything lives under ./run-cluster/ (override with KASA_RUN_DIR): one config, journal and log per node
# (node-1..node-3), nginx's config and logs, the simulators' logs. Cobo's webhooks go to nginx, which hands
# each to one node in turn; any node may receive any of a deposit's webhooks, and the claims in MongoDB
# decide which node credits it (README "Cluster"). The panels go through nginx too, each request to the
# next node in turn: sessions work on any node (shared through MongoDB) and every node shows the cluster's
# deposits (read from MongoDB, merged with its own: actors/views.h), so no browser needs to stay on one
# node. Ctrl-C stops everything.
set -euo pipefail

kasa=${1:-build/release/kasa}
[ -x "$kasa" ] || { echo "run_cluster.sh: no kasa binary at $kasa (run 'make' first)" >&2; exit 1; }
kasa=$(cd "$(dirname "$kasa")" && pwd)/$(basename "$kasa")
nginx=${NGINX:-/usr/sbin/nginx}
[ -x "$nginx" ] || { echo "run_cluster.sh: no nginx at $nginx (apt-get install nginx-light, or set NGINX)" >&2; exit 1; }
[ -d tests/mongo/node_modules/@push.rocks/smartmongo ] || {
    echo "run_cluster.sh: the MongoDB test server's packages are missing (make run-cluster installs them)" >&2; exit 1; }
rundir=${KASA_RUN_DIR:-$(pwd)/run-cluster}
mkdir -p "$rundir"
rundir=$(cd "$rundir" && pwd)

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken=" "
pick() {   # a free port from $1 on, not picked already
    local p=$1
    while port_busy "$p" || case "$taken" in *" $p "*) true ;; *) false ;; esac; do p=$((p + 1)); done
    taken="$taken$p "
    echo "$p"
}
front_port=$(pick "${KASA_PORT:-8080}")
front_hook_port=$(pick "${WEBHOOK_PORT:-8081}")
cobo_port=$(pick 9011)
mt5_port=$(pick 9012)
tg_port=$(pick 9013)
mongo_port=$(pick 27117)
node_ports=()
for n in 1 2 3; do
    p=$(pick $((8100 + 10 * n)))
    taken="$taken$p "
    h=$(pick $((p + 1)))
    m=$(pick $((5600 + n)))
    node_ports+=("$p:$h:$m")
done

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
    echo "stopped. Journals kept in $rundir/node-*/journal (MongoDB was in memory: it starts empty next time)"
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

wait_port() {   # port, name, log
    for _ in $(seq 1 300); do
        port_busy "$1" && return 0
        sleep 0.05
    done
    echo "run_cluster.sh: $2 did not start; its log ($3):" >&2
    tail -n 20 "$3" >&2
    exit 1
}

node tests/mongo/server.mjs --port "$mongo_port" >>"$rundir/mongo.log" 2>&1 &
pids+=($!)
"$kasa" sim cobo --listen "127.0.0.1:$cobo_port" --webhook-url "http://127.0.0.1:$front_hook_port/cobo/webhook" \
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
wait_port "$mongo_port" "the MongoDB test server" "$rundir/mongo.log"
wait_port "$cobo_port" "the Cobo simulator" "$rundir/sim-cobo.log"
wait_port "$mt5_port" "the MT5 simulator" "$rundir/sim-mt5.log"
wait_port "$tg_port" "the Telegram simulator" "$rundir/sim-telegram.log"

upstream_web=""
upstream_hook=""
for n in 1 2 3; do
    IFS=: read -r port hook monitor <<<"${node_ports[$((n - 1))]}"
    dir=$rundir/node-$n
    mkdir -p "$dir"
    umask 077
    cat > "$dir/kasa.env" <<EOF
# kasa cluster demo, node $n of 3, written by tools/run_cluster.sh (make run-cluster). Loopback only.
KASA_LISTEN=127.0.0.1:$port
KASA_WEBHOOK_LISTEN=127.0.0.1:$hook
KASA_JOURNAL_DIR=$dir/journal
KASA_MONITOR=tcp://127.0.0.1:$monitor
KASA_METRICS_LISTEN=off
KASA_STATIC_DIR=$(pwd)/web/static
KASA_COOKIE_SECURE=off
KASA_TRUSTED_PROXIES=127.0.0.1/32
KASA_CLUSTER=on
KASA_MONGO_URI=mongodb://127.0.0.1:$mongo_port/?serverSelectionTimeoutMS=2000&connectTimeoutMS=2000
KASA_NODE_ID=node-$n
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
KASA_TOKEN_TRON_USDT=1:0.5:1
KASA_AUTO_CREDIT_LIMIT=100000
EOF
    umask 022
    "$kasa" serve --config "$dir/kasa.env" >>"$dir/kasa.log" 2>&1 &
    pids+=($!)
    wait_port "$port" "kasa node-$n" "$dir/kasa.log"
    wait_port "$hook" "kasa node-$n's webhook listener" "$dir/kasa.log"
    # address links are not shared between nodes yet: the demo address is linked on each
    "$kasa" wallet link "$demo_address" "$demo_login" --config "$dir/kasa.env" >"$dir/link.out" 2>&1 || {
        echo "run_cluster.sh: kasa wallet link on node-$n failed:" >&2; cat "$dir/link.out" >&2; exit 1; }
    upstream_web="$upstream_web        server 127.0.0.1:$port;"$'\n'
    upstream_hook="$upstream_hook        server 127.0.0.1:$hook;"$'\n'
done

ngdir=$rundir/nginx
mkdir -p "$ngdir/tmp"
cat > "$ngdir/nginx.conf" <<EOF
# nginx in front of the three kasa nodes, written by tools/run_cluster.sh. Loopback only.
worker_processes 1;
pid $ngdir/nginx.pid;
error_log $ngdir/error.log warn;
events { worker_connections 256; }
http {
    access_log $ngdir/access.log;
    client_body_temp_path $ngdir/tmp/body;
    proxy_temp_path $ngdir/tmp/proxy;
    fastcgi_temp_path $ngdir/tmp/fastcgi;
    uwsgi_temp_path $ngdir/tmp/uwsgi;
    scgi_temp_path $ngdir/tmp/scgi;
    upstream kasa_hooks {      # any node takes any webhook: one after another
$upstream_hook    }
    upstream kasa_web {        # any node serves any panel request: one after another
$upstream_web    }
    server {
        listen 127.0.0.1:$front_hook_port;
        location / { proxy_pass http://kasa_hooks; proxy_set_header X-Forwarded-For \$remote_addr; }
    }
    server {
        listen 127.0.0.1:$front_port;
        location / {
            proxy_pass http://kasa_web;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_buffering off;
        }
    }
}
EOF
"$nginx" -p "$ngdir" -c "$ngdir/nginx.conf" -g 'daemon off;' >>"$ngdir/nginx.out" 2>&1 &
nginx_pid=$!
pids+=($nginx_pid)
wait_port "$front_hook_port" "nginx" "$ngdir/error.log"

k=$kasa
case "$k" in "$(pwd)"/*) k=${k#"$(pwd)"/} ;; esac
cat <<EOF

Three kasa nodes (cluster mode) run behind nginx, on one MongoDB, with the simulators, all on 127.0.0.1:
  panels (nginx)     http://127.0.0.1:$front_port/       (log in as $demo_login / $demo_password)
  webhooks (nginx)   http://127.0.0.1:$front_hook_port/cobo/webhook  -> node-1..3 in turn
  nodes              $(for n in 1 2 3; do IFS=: read -r p h m <<<"${node_ports[$((n - 1))]}"; printf 'node-%s :%s (webhooks :%s)  ' "$n" "$p" "$h"; done)
  MongoDB            mongodb://127.0.0.1:$mongo_port (in memory)
  Cobo / MT5 / Telegram simulators  :$cobo_port / :$mt5_port / :$tg_port

Send a few deposits of 250 USDT (each credited once, as 249.50, by whichever node claims it):
  for i in 1 2 3 4 5; do $k sim deposit --cobo http://127.0.0.1:$cobo_port --address $demo_address --amount 250; done

Then watch:
  $k cluster status --config $rundir/node-1/kasa.env      # nodes, claims, leases about to end
  curl -s http://127.0.0.1:$mt5_port/sim/deals?login=$demo_login
  grep -h 'event=claims' $rundir/node-*/kasa.log         # who claimed, who saw another node's claim
  kill -STOP <a node's pid>; sleep 40; kill -CONT <pid>  # its claims are taken over; it never sends on them
Node pids: $(printf '%s ' "${pids[@]:4:3}")   Logs: $rundir/node-*/kasa.log, $rundir/*.log, $ngdir/*.log
Press Ctrl-C to stop everything.
EOF

set +e
wait "$nginx_pid"
