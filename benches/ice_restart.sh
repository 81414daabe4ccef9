#!/usr/bin/env bash
# Issue 11 §1: a link whose ICE disconnects is restarted in place (ICE
# restart over `restart-ice`), without tearing the session down. One client's
# UDP is dropped long enough for ICE to go disconnected while its WebSocket
# (TCP) stays up, or its address is moved; how long after the network is
# back do its media flow again, both ways, and did anyone see it leave?
#
#   sudo benches/ice_restart.sh [ROUNDS] [MODE]   (default 3 rounds, MODE
#                                                  `drop`; needs root,
#                                                  iproute2, nftables, jq)
#
# MODE `drop`: an nftables table in the client's namespace drops its UDP in
# and out for DROP_S seconds (default 8: ICE says "disconnected" after 5 s
# without a packet; the SDK waits 0.5 s, then restarts every 2 s until the
# link connects). MODE `move`: the client's address changes from 10.77.0.2
# to 10.77.0.3 (and back in the next round) at the start of a DROP_S
# seconds UDP drop, as a laptop that roams: its WebSocket's TCP connection
# dies with the old address, so the SDK resumes the session (RECONNECTING)
# and then restarts ICE on the links the server kept.
#
# Two network namespaces (created here, deleted on exit), joined by a veth
# pair: `hi-srv-$$` (10.77.0.1) runs `huddle serve`, a publishing bot and an
# observer bot that subscribes to everything; `hi-cli-$$` runs the client
# under test, a bot that publishes and subscribes.
#
# Per round: t_end = when the network is back; "sub back" is the client's
# next `video-resumed` line (its subscription link), "pub back" the
# observer's next `video-resumed` of the client's stream (its publish link),
# each atMs - t_end. The summary counts the client's "ICE restart
# succeeded" log lines, the server's restart lines, `peer-leave` lines about
# the client and the client's stream ids seen by the observer (1 = kept).
#
# Environment: HUDDLE (binary, default target/release/huddle), DROP_S,
# OUT (default target/bench-results/ice_restart). Exit status 1 if a round
# got no media back, someone saw the client leave, or no restart happened.
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=$(realpath "${HUDDLE:-target/release/huddle}")
DROP_S=${DROP_S:-8}
OUT=${OUT:-target/bench-results/ice_restart}
ROUNDS=${1:-3}
MODE=${2:-drop}
PORT=17893
SRV=hi-srv-$$
CLI=hi-cli-$$
VETH_S=vis$$
VETH_C=vic$$
SRV_IP=10.77.0.1
CLI_IP=10.77.0.2
ALT_IP=10.77.0.3
URL="ws://$SRV_IP:$PORT"
APP=(--app-id bench --app-key bench-key-0123456789abcdef)
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --release --bin huddle" >&2; exit 1; }
[[ $MODE == drop || $MODE == move ]] || { echo "MODE is drop or move" >&2; exit 1; }
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
ip link add "$VETH_S" netns "$SRV" type veth peer name "$VETH_C" netns "$CLI"
ip -n "$SRV" addr add "$SRV_IP/24" dev "$VETH_S"
ip -n "$CLI" addr add "$CLI_IP/24" dev "$VETH_C"
for ns in "$SRV" "$CLI"; do
    ip -n "$ns" link set lo up
done
ip -n "$SRV" link set "$VETH_S" up
# Removing the first address of the veth must keep the second (MODE move).
ip netns exec "$CLI" sysctl -qw "net.ipv4.conf.$VETH_C.promote_secondaries=1"
ip -n "$CLI" link set "$VETH_C" up

ip netns exec "$SRV" "$HUDDLE" serve --listen "$SRV_IP:$PORT" --rtc-ip "$SRV_IP" "${APP[@]}" \
    2>"$OUT/serve.log" &
PIDS+=($!)
until ip netns exec "$SRV" bash -c "exec 3<>/dev/tcp/$SRV_IP/$PORT" 2>/dev/null; do sleep 0.05; done
ip netns exec "$SRV" "$HUDDLE" bot --server "$URL" --room restart --user pub --publish \
    "${APP[@]}" --json >"$OUT/pub.jsonl" 2>"$OUT/pub.log" &
PIDS+=($!)
ip netns exec "$SRV" "$HUDDLE" bot --server "$URL" --room restart --user observer --subscribe \
    "${APP[@]}" --json >"$OUT/observer.jsonl" 2>"$OUT/observer.log" &
PIDS+=($!)
ip netns exec "$CLI" "$HUDDLE" bot --server "$URL" --room restart --user client --publish --subscribe \
    "${APP[@]}" --json >"$OUT/client.jsonl" 2>"$OUT/client.log" &
PIDS+=($!)

# Waits (up to 40 s) for a line of bot $1 matching the jq filter $3 after
# line $2; prints its atMs.
event_after() {
    local bot=$1 from=$2 filter=$3 deadline=$(( $(date +%s) + 40 ))
    while (( $(date +%s) < deadline )); do
        local at
        at=$(tail -n "+$((from + 1))" "$OUT/$bot.jsonl" | jq -r "select($filter) | .atMs" 2>/dev/null | head -1)
        if [[ -n $at ]]; then echo "$at"; return 0; fi
        sleep 0.05
    done
    return 1
}
event_after client 0 '.event=="first-frame"' >/dev/null \
    || { echo "the client never decoded a frame" >&2; exit 1; }
event_after observer 0 '.event=="first-frame" and .userId=="client"' >/dev/null \
    || { echo "the observer never decoded the client" >&2; exit 1; }
CLIENT_STREAM=$(jq -r 'select(.event=="first-frame" and .userId=="client") | .streamId' "$OUT/observer.jsonl" | head -1)
sleep 2

failed=0
results=()
ip_now=$CLI_IP
for round in $(seq 1 "$ROUNDS"); do
    client_lines=$(wc -l <"$OUT/client.jsonl")
    observer_lines=$(wc -l <"$OUT/observer.jsonl")
    ip netns exec "$CLI" nft -f - <<NFT
table inet udpdrop {
    chain in { type filter hook input priority 0; meta l4proto udp drop; }
    chain out { type filter hook output priority 0; meta l4proto udp drop; }
}
NFT
    if [[ $MODE == move ]]; then
        # The new address comes, the old one goes: what the client's ICE
        # gathered no longer exists, and its WebSocket's TCP connection is
        # cut too (the SDK resumes the session on a new one).
        if [[ $ip_now == "$CLI_IP" ]]; then next=$ALT_IP; else next=$CLI_IP; fi
        ip -n "$CLI" addr add "$next/24" dev "$VETH_C"
        ip -n "$CLI" addr del "$ip_now/24" dev "$VETH_C"
    fi
    sleep "$DROP_S"
    ip netns exec "$CLI" nft delete table inet udpdrop
    t_end=$(now_ms)
    if [[ $MODE == move ]]; then
        ip_now=$next
    fi
    sub=-1 pub=-1
    if at=$(event_after client "$client_lines" '.event=="video-resumed"'); then sub=$(( at - t_end )); fi
    if at=$(event_after observer "$observer_lines" ".event==\"video-resumed\" and .streamId==$CLIENT_STREAM"); then pub=$(( at - t_end )); fi
    echo "round $round ($MODE, UDP dropped ${DROP_S} s): subscription video back $sub ms, publication video back $pub ms after the network came back"
    (( sub >= 0 && pub >= 0 )) || failed=1
    results+=("$sub $pub")
    sleep 3 # settle before the next round
done
left=$(jq -c 'select(.event=="peer-leave" and .userId=="client")' "$OUT/observer.jsonl" "$OUT/pub.jsonl" | wc -l)
ids=$(jq -r 'select(.event=="first-frame" and .userId=="client") | .streamId' "$OUT/observer.jsonl" | sort -u | wc -l)
client_restarts=$(grep -c "ICE restart succeeded" "$OUT/client.log" || true)
server_restarts=$(grep -c -E "ICE restarted|ICE restart offered" "$OUT/serve.log" || true)
states=$(jq -r 'select(.event=="connection-state-changed") | .curState' "$OUT/client.jsonl" | paste -sd' ')
# min median max of column $1 of the results
stats() { printf '%s\n' "${results[@]}" | awk -v c="$1" '{print $c}' | sort -n | awk '{a[NR]=$1} END {printf "min %d median %d max %d ms", a[1], a[int((NR+1)/2)], a[NR]}'; }
{
    echo "rounds $ROUNDS ($MODE, UDP dropped ${DROP_S} s)  subscription video back: $(stats 1)  publication video back: $(stats 2)"
    echo "ICE restarts that connected (client log): $client_restarts  restart requests served (server log): $server_restarts  peer-leave of the client seen: $left  client stream ids seen by the observer: $ids"
} | tee "$OUT/summary.txt"
echo "client connection states: ${states:-none}" | tee -a "$OUT/summary.txt"
reconnects=$(jq -r 'select(.event=="connection-state-changed" and .curState=="RECONNECTING") | .atMs' "$OUT/client.jsonl" | wc -l)
# One JSON line for tests (tests/ice_restart_in_namespaces.rs).
jq -cn --arg mode "$MODE" --argjson drop "$DROP_S" \
    --argjson sub "$(printf '%s\n' "${results[@]}" | awk '{print $1}' | jq -s -c .)" \
    --argjson pub "$(printf '%s\n' "${results[@]}" | awk '{print $2}' | jq -s -c .)" \
    --argjson cr "$client_restarts" --argjson sr "$server_restarts" --argjson left "$left" \
    --argjson ids "$ids" --argjson reconnects "$reconnects" \
    '{mode: $mode, dropS: $drop, subscriptionBackMs: $sub, publicationBackMs: $pub,
      clientRestartsConnected: $cr, serverRestartRequests: $sr, peerLeaveOfClient: $left,
      clientStreamIds: $ids, reconnects: $reconnects}'
(( failed == 0 && left == 0 && ids == 1 && client_restarts > 0 )) || exit 1
