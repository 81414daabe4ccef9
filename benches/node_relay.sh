#!/usr/bin/env bash
# Issue 15 §2, node relay: one room, its publisher on node a (the owner),
# SUBS subscribing bots either all on node a ("direct") or all on node b,
# started with --relay-subscribers ("relay": node b pulls the stream from a
# over one relay link and fans it out itself). For each run: glass-to-glass
# p50/p99 the subscribers measured (bot --summary, capture-time extension),
# and each node's CPU time (utime+stime from /proc) per packet it forwarded
# (huddle_forwarded_packets_total from /metrics) during the measured window,
# and that CPU time in total (cpu_ms: the owner's also pays the publisher's
# ingress, so its figure per forwarded packet is high when it forwards little).
#
#   benches/node_relay.sh [SECONDS]        (default 20 s per run)
#
# Environment: HUDDLE (default target/debug/huddle: a debug build, so CPU
# figures are debug figures), SUBS (default 4), PORT_A / PORT_B / REDIS_PORT
# (default 17941 / 17942 / 17943), OUT (default target/bench-results/node-relay).
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=${HUDDLE:-target/debug/huddle}
SUBS=${SUBS:-4}
PORT_A=${PORT_A:-17941}
PORT_B=${PORT_B:-17942}
REDIS_PORT=${REDIS_PORT:-17943}
OUT=${OUT:-target/bench-results/node-relay}
SECS=${1:-20}
APP=(--app-id bench --app-key bench-key-0123456789abcdef)
mkdir -p "$OUT"
[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --bin huddle" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "no redis-server (Debian package redis-server)" >&2; exit 1; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}" ${REDIS:-}; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$OUT" >"$OUT/redis.log" 2>&1 &
REDIS=$!
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.02; done

"$HUDDLE" serve --listen "127.0.0.1:$PORT_A" "${APP[@]}" --redis "redis://127.0.0.1:$REDIS_PORT" \
    --node-id bench-a 2>>"$OUT/node-a.log" &
A=$!
PIDS+=("$A")
"$HUDDLE" serve --listen "127.0.0.1:$PORT_B" "${APP[@]}" --redis "redis://127.0.0.1:$REDIS_PORT" \
    --node-id bench-b --relay-subscribers 2>>"$OUT/node-b.log" &
B=$!
PIDS+=("$B")
for port in "$PORT_A" "$PORT_B"; do
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.02; done
done
sleep 2 # both registered (heartbeat)

# CPU ticks (utime + stime) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
forwarded() {
    curl -s "http://127.0.0.1:$1/metrics" | awk '/^huddle_forwarded_packets_total/ {print $2}'
}

"$HUDDLE" bot --server "ws://127.0.0.1:$PORT_A" --room bench-relay --user pub --publish \
    --duration $((2 * SECS + 30)) "${APP[@]}" >"$OUT/publisher.log" 2>&1 &
PIDS+=("$!")
sleep 2

HZ=$(getconf CLK_TCK)
printf '%-7s %-8s %8s %8s %10s %10s %9s %9s %13s %13s\n' run subs_on g2g_p50 g2g_p99 fwd_pkts_a fwd_pkts_b cpu_ms_a cpu_ms_b cpu_us/pkt_a cpu_us/pkt_b
for run in direct relay; do
    port=$([[ $run == direct ]] && echo "$PORT_A" || echo "$PORT_B")
    ta0=$(ticks "$A"); tb0=$(ticks "$B"); fa0=$(forwarded "$PORT_A"); fb0=$(forwarded "$PORT_B")
    "$HUDDLE" bot --server "ws://127.0.0.1:$port" --room bench-relay --user "sub-$run" --subscribe \
        --count "$SUBS" --duration "$SECS" --summary "$OUT/$run.json" "${APP[@]}" \
        >"$OUT/$run.log" 2>&1
    ta1=$(ticks "$A"); tb1=$(ticks "$B"); fa1=$(forwarded "$PORT_A"); fb1=$(forwarded "$PORT_B")
    sleep 3 # the relay's linger
    fa=$((${fa1%.*} - ${fa0%.*})); fb=$((${fb1%.*} - ${fb0%.*}))
    cpu_a=$(awk -v t=$((ta1 - ta0)) -v hz="$HZ" -v p="$fa" 'BEGIN { if (p > 0) printf "%.1f", t * 1e6 / hz / p; else print "-" }')
    cpu_b=$(awk -v t=$((tb1 - tb0)) -v hz="$HZ" -v p="$fb" 'BEGIN { if (p > 0) printf "%.1f", t * 1e6 / hz / p; else print "-" }')
    p50=$(python3 -c "import json,sys; l=json.load(open(sys.argv[1])).get('latency') or {}; print(l.get('p50_ms','-'))" "$OUT/$run.json")
    p99=$(python3 -c "import json,sys; l=json.load(open(sys.argv[1])).get('latency') or {}; print(l.get('p99_ms','-'))" "$OUT/$run.json")
    printf '%-7s %-8s %8s %8s %10s %10s %9s %9s %13s %13s\n' "$run" "$([[ $run == direct ]] && echo a || echo b)" \
        "$p50" "$p99" "$fa" "$fb" $(((ta1 - ta0) * 1000 / HZ)) $(((tb1 - tb0) * 1000 / HZ)) "$cpu_a" "$cpu_b"
done
