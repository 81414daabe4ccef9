#!/usr/bin/env bash
# Issue 15 §2: two `huddle serve --redis` nodes; the node holding the room is
# killed (`kill -9`); how long until a subscriber decodes video again, on the
# other node, measured from the kill.
#
#   benches/failover.sh [ROUNDS]          (default 5 rounds)
#
# A redis-server (no persistence) and two nodes, a and b, on 127.0.0.1, each
# with --cluster-ttl-secs TTL (default 3). A publishing bot joins through
# node a, a subscribing bot through node b (`--json`); the room lives where
# the first join landed and the other bot is redirected there. Each round:
# read the room's owner from Redis, kill -9 that node (t_kill), wait for the
# subscriber's next `first-frame` line (both SDKs noticed, tried the dead
# node, went on to the live one, which claimed the room once the dead node's
# registration expired; the publisher published again, the subscriber
# subscribed again and decoded a frame): the round's figure is
# first-frame.atMs - t_kill. Then the killed node is started again on its
# port, and the next round kills whichever node holds the room then.
#
# Environment: HUDDLE (binary, default target/debug/huddle), TTL (seconds,
# default 3), PORT_A / PORT_B / REDIS_PORT (default 17931 / 17932 / 17933),
# OUT (default target/bench-results/failover).
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=${HUDDLE:-target/debug/huddle}
TTL=${TTL:-3}
PORT_A=${PORT_A:-17931}
PORT_B=${PORT_B:-17932}
REDIS_PORT=${REDIS_PORT:-17933}
OUT=${OUT:-target/bench-results/failover}
ROUNDS=${1:-5}
APP=(--app-id bench --app-key bench-key-0123456789abcdef)
mkdir -p "$OUT"
[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --bin huddle" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "no redis-server (Debian package redis-server)" >&2; exit 1; }

PIDS=()
declare -A NODE_PID
cleanup() {
    for pid in "${PIDS[@]}" "${NODE_PID[@]}" ${REDIS:-}; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$OUT" >"$OUT/redis.log" 2>&1 &
REDIS=$!
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.02; done

# Starts node $1 (a or b) on its port and waits until it accepts connections.
node() {
    local id=$1 port
    port=$([[ $id == a ]] && echo "$PORT_A" || echo "$PORT_B")
    "$HUDDLE" serve --listen "127.0.0.1:$port" "${APP[@]}" --redis "redis://127.0.0.1:$REDIS_PORT" \
        --node-id "bench-$id" --cluster-ttl-secs "$TTL" 2>>"$OUT/node-$id.log" &
    NODE_PID[$id]=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.002; done
}

# Waits (up to 60 s) for a `first-frame` line of the subscriber after line
# number $1 of its output; prints its atMs.
first_frame_after() {
    local from=$1 deadline=$(( $(date +%s) + 60 ))
    while (( $(date +%s) < deadline )); do
        local at
        at=$(tail -n "+$((from + 1))" "$OUT/sub.jsonl" | jq -r 'select(.event=="first-frame") | .atMs' 2>/dev/null | head -1)
        if [[ -n $at ]]; then echo "$at"; return 0; fi
        sleep 0.05
    done
    return 1
}

node a
node b
sleep $(( TTL / 3 + 1 )) # a heartbeat: each node lists the other in `joined`
"$HUDDLE" bot --server "ws://127.0.0.1:$PORT_A" --room failover --user pub --publish "${APP[@]}" \
    --json >"$OUT/pub.jsonl" 2>"$OUT/pub.log" &
PIDS+=($!)
sleep 1 # the room is made by the publisher's join, on node a
"$HUDDLE" bot --server "ws://127.0.0.1:$PORT_B" --room failover --user sub --subscribe "${APP[@]}" \
    --json >"$OUT/sub.jsonl" 2>"$OUT/sub.log" &
PIDS+=($!)
first_frame_after 0 >/dev/null || { echo "the subscriber never decoded a frame" >&2; exit 1; }

results=()
for round in $(seq 1 "$ROUNDS"); do
    owner=$(redis-cli -p "$REDIS_PORT" get huddle:room:failover)
    id=${owner#bench-}
    [[ $id == a || $id == b ]] || { echo "round $round: room owner is '$owner'" >&2; exit 1; }
    lines=$(wc -l <"$OUT/sub.jsonl")
    kill -9 "${NODE_PID[$id]}"; wait "${NODE_PID[$id]}" 2>/dev/null || true
    t_kill=$(now_ms)
    if at=$(first_frame_after "$lines"); then
        ms=$(( at - t_kill ))
        now_owner=$(redis-cli -p "$REDIS_PORT" get huddle:room:failover)
        echo "round $round: killed $owner; video decoded again $ms ms later, room on $now_owner"
        results+=("$ms")
    else
        echo "round $round: no frame within 60 s" >&2
        results+=("-1")
    fi
    node "$id" # back for the next round, empty
    sleep 2 # let media settle and the heartbeats list both nodes again
done
printf '%s\n' "${results[@]}" | sort -n | awk -v ttl="$TTL" '{a[NR]=$1} END {printf "ttl %d s  rounds %d  min %d ms  median %d ms  max %d ms\n", ttl, NR, a[1], a[int((NR+1)/2)], a[NR]}' \
    | tee "$OUT/summary.txt"
