#!/usr/bin/env bash
# Issue 11 §1: a 5 s network blackout of one client. How long after the
# blackout ends is its media back (target < 2 s), and did anyone see that user
# leave?
#
#   sudo benches/blackout.sh [ROUNDS]        (default 3 rounds; needs root,
#                                             iproute2, nftables, jq)
#
# Two network namespaces this script creates (and deletes on exit), joined by
# a veth pair: `hb-srv-$$` (10.77.0.1) runs `huddle serve`, a publishing bot
# and an observer bot that subscribes; `hb-cli-$$` (10.77.0.2) runs the
# client under test, a subscribing bot. A blackout is an nftables table in
# the client's namespace that drops every packet in and out (signalling TCP
# and media UDP alike) for BLACKOUT_S seconds (default 5); nothing outside
# the two namespaces is touched.
#
# Per round: t_end = when the drop table is deleted; "media back" is the
# client's next `video-resumed` line (its decoded video resumed after a gap):
# atMs - t_end. "left" counts `peer-leave` lines about the client that the
# observer printed.
#
# Environment: HUDDLE (binary, default target/release/huddle), BLACKOUT_S,
# OUT (default target/bench-results/blackout).
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=$(realpath "${HUDDLE:-target/release/huddle}")
BLACKOUT_S=${BLACKOUT_S:-5}
OUT=${OUT:-target/bench-results/blackout}
ROUNDS=${1:-3}
PORT=17892
SRV=hb-srv-$$
CLI=hb-cli-$$
SRV_IP=10.77.0.1
CLI_IP=10.77.0.2
URL="ws://$SRV_IP:$PORT"
APP=(--app-id bench --app-key bench-key-0123456789abcdef)
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --release --bin huddle" >&2; exit 1; }
for tool in ip nft jq; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install iproute2 nftables jq)" >&2; exit 1; }
done

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

ip netns add "$SRV"
ip netns add "$CLI"
ip link add "veth-s$$" netns "$SRV" type veth peer name "veth-c$$" netns "$CLI"
ip -n "$SRV" addr add "$SRV_IP/24" dev "veth-s$$"
ip -n "$CLI" addr add "$CLI_IP/24" dev "veth-c$$"
for ns in "$SRV" "$CLI"; do
    ip -n "$ns" link set lo up
done
ip -n "$SRV" link set "veth-s$$" up
ip -n "$CLI" link set "veth-c$$" up

ip netns exec "$SRV" "$HUDDLE" serve --listen "$SRV_IP:$PORT" --rtc-ip "$SRV_IP" "${APP[@]}" \
    2>"$OUT/serve.log" &
PIDS+=($!)
until ip netns exec "$SRV" bash -c "exec 3<>/dev/tcp/$SRV_IP/$PORT" 2>/dev/null; do sleep 0.05; done
ip netns exec "$SRV" "$HUDDLE" bot --server "$URL" --room blackout --user pub --publish \
    "${APP[@]}" --json >"$OUT/pub.jsonl" 2>"$OUT/pub.log" &
PIDS+=($!)
ip netns exec "$SRV" "$HUDDLE" bot --server "$URL" --room blackout --user observer --subscribe \
    "${APP[@]}" --json >"$OUT/observer.jsonl" 2>"$OUT/observer.log" &
PIDS+=($!)
ip netns exec "$CLI" "$HUDDLE" bot --server "$URL" --room blackout --user client --subscribe \
    "${APP[@]}" --json >"$OUT/client.jsonl" 2>"$OUT/client.log" &
PIDS+=($!)

# Waits (up to 30 s) for a line of the client matching the jq filter $2
# after line $1; prints its atMs.
client_event_after() {
    local from=$1 filter=$2 deadline=$(( $(date +%s) + 30 ))
    while (( $(date +%s) < deadline )); do
        local at
        at=$(tail -n "+$((from + 1))" "$OUT/client.jsonl" | jq -r "select($filter) | .atMs" 2>/dev/null | head -1)
        if [[ -n $at ]]; then echo "$at"; return 0; fi
        sleep 0.05
    done
    return 1
}
client_event_after 0 '.event=="first-frame"' >/dev/null \
    || { echo "the client never decoded a frame" >&2; exit 1; }
sleep 2

results=()
for round in $(seq 1 "$ROUNDS"); do
    lines=$(wc -l <"$OUT/client.jsonl")
    ip netns exec "$CLI" nft -f - <<EOF
table inet blackout {
    chain in { type filter hook input priority 0; policy drop; }
    chain out { type filter hook output priority 0; policy drop; }
}
EOF
    sleep "$BLACKOUT_S"
    ip netns exec "$CLI" nft delete table inet blackout
    t_end=$(now_ms)
    if at=$(client_event_after "$lines" '.event=="video-resumed"'); then
        ms=$(( at - t_end ))
        echo "round $round: video back $ms ms after a ${BLACKOUT_S} s blackout ended"
        results+=("$ms")
    else
        echo "round $round: no video within 30 s of the blackout's end" >&2
        results+=("-1")
    fi
    sleep 3 # settle before the next blackout
done
left=$(jq -c 'select(.event=="peer-leave" and .userId=="client")' "$OUT/observer.jsonl" "$OUT/pub.jsonl" | wc -l)
states=$(jq -r 'select(.event=="connection-state-changed") | .curState' "$OUT/client.jsonl" | paste -sd' ')
printf '%s\n' "${results[@]}" | sort -n | awk -v left="$left" '{a[NR]=$1} END {printf "rounds %d  min %d ms  median %d ms  max %d ms  peer-leave of the client seen: %d\n", NR, a[1], a[int((NR+1)/2)], a[NR], left}' \
    | tee "$OUT/summary.txt"
echo "client connection states: ${states:-none}" | tee -a "$OUT/summary.txt"
