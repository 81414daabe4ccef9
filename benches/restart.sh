#!/usr/bin/env bash
# Issue 11 §1: after a server `kill -9` and restart on the same port, how long
# until a subscriber decodes video again, measured from the moment the new
# server accepts connections (target < 3 s).
#
#   benches/restart.sh [ROUNDS]          (default 5 rounds)
#
# One `huddle serve`, one publishing bot and one subscribing bot (`--json`),
# all on 127.0.0.1. Each round: kill -9 the server, keep it down DOWN_MS
# (default 1000), start it again, poll its port until a TCP connect succeeds
# (t_up), and wait for the subscriber's next `first-frame` line (the SDK has
# joined again, the publisher published again, the subscription is restored
# and a frame decoded): the round's figure is first-frame.atMs - t_up.
#
# Environment: HUDDLE (binary, default target/release/huddle), PORT (default
# 17891), DOWN_MS, OUT (default target/bench-results/restart).
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=${HUDDLE:-target/release/huddle}
PORT=${PORT:-17891}
DOWN_MS=${DOWN_MS:-1000}
OUT=${OUT:-target/bench-results/restart}
ROUNDS=${1:-5}
URL="ws://127.0.0.1:$PORT"
APP=(--app-id bench --app-key bench-key-0123456789abcdef)
mkdir -p "$OUT"
[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --release --bin huddle" >&2; exit 1; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}" ${SERVE:-}; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# Starts the server; sets SERVE and T_UP (ms when a connect first succeeded).
serve() {
    "$HUDDLE" serve --listen "127.0.0.1:$PORT" "${APP[@]}" 2>>"$OUT/serve.log" &
    SERVE=$!
    until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.002; done
    T_UP=$(now_ms)
}

# Waits (up to 30 s) for a `first-frame` line of the subscriber after line
# number $1 of its output; prints its atMs.
first_frame_after() {
    local from=$1 deadline=$(( $(date +%s) + 30 ))
    while (( $(date +%s) < deadline )); do
        local at
        at=$(tail -n "+$((from + 1))" "$OUT/sub.jsonl" | jq -r 'select(.event=="first-frame") | .atMs' 2>/dev/null | head -1)
        if [[ -n $at ]]; then echo "$at"; return 0; fi
        sleep 0.05
    done
    return 1
}

serve
"$HUDDLE" bot --server "$URL" --room restart --user pub --publish "${APP[@]}" \
    --json >"$OUT/pub.jsonl" 2>"$OUT/pub.log" &
PIDS+=($!)
"$HUDDLE" bot --server "$URL" --room restart --user sub --subscribe "${APP[@]}" \
    --json >"$OUT/sub.jsonl" 2>"$OUT/sub.log" &
PIDS+=($!)
first_frame_after 0 >/dev/null || { echo "the subscriber never decoded a frame" >&2; exit 1; }

results=()
for round in $(seq 1 "$ROUNDS"); do
    lines=$(wc -l <"$OUT/sub.jsonl")
    kill -9 "$SERVE"; wait "$SERVE" 2>/dev/null || true
    sleep "$(awk "BEGIN{print $DOWN_MS/1000}")"
    serve
    if at=$(first_frame_after "$lines"); then
        ms=$(( at - T_UP ))
        echo "round $round: video decoded again $ms ms after the server accepted connections"
        results+=("$ms")
    else
        echo "round $round: no frame within 30 s" >&2
        results+=("-1")
    fi
    sleep 2 # let media settle before the next kill
done
printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {printf "rounds %d  min %d ms  median %d ms  max %d ms\n", NR, a[1], a[int((NR+1)/2)], a[NR]}' \
    | tee "$OUT/summary.txt"
echo "subscriber states:" ; jq -c 'select(.event=="connection-state-changed") | [.curState, .atMs]' "$OUT/sub.jsonl" | tail -n 4
