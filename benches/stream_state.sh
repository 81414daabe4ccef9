#!/usr/bin/env bash
# Stream state detection (issue 11 §3): how long after a publisher's video
# stops a subscriber hears `stream-interrupted`, and how long after it resumes
# `stream-recovered`. The publishing bot is frozen with SIGSTOP (its packets
# stop; nothing is unpublished or muted, as with a stalled camera or a dead
# network) and thawed with SIGCONT; a subscribing bot with
# `--stream-state-interval INTERVAL --json` prints both events. The script
# polls the subscriber's output every 10 ms, so a figure is late by up to that.
#
#   benches/stream_state.sh [ROUNDS] [INTERVAL_SECS]
#
# Environment: HUDDLE (default target/release/huddle), PORT (17890),
# OUT (target/bench-stream-state). Logs: $OUT/{serve,pub,sub}.log.
set -euo pipefail
cd "$(dirname "$0")/.."
HUDDLE=${HUDDLE:-target/release/huddle}
ROUNDS=${1:-5}
INTERVAL=${2:-1}
PORT=${PORT:-17890}
OUT=${OUT:-target/bench-stream-state}
mkdir -p "$OUT"
: >"$OUT/serve.log"; : >"$OUT/pub.log"; : >"$OUT/sub.log"
CRED=(--app-id bench --app-key bench-key)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

now() { date +%s.%N; }
# Waits until $1 appears more than $2 times in sub.log; prints the time then.
wait_count() {
  local what=$1 before=$2 deadline=$(( $(date +%s) + 30 ))
  while (( $(grep -c "\"event\":\"$what\"" "$OUT/sub.log" || true) <= before )); do
    (( $(date +%s) < deadline )) || { echo "no $what within 30 s" >&2; exit 1; }
    sleep 0.01
  done
  now
}

"$HUDDLE" serve --listen "127.0.0.1:$PORT" "${CRED[@]}" >"$OUT/serve.log" 2>&1 &
PIDS+=($!)
until grep -q "listening on" "$OUT/serve.log"; do sleep 0.05; done
DURATION=$(( ROUNDS * (INTERVAL * 2 + 8) + 30 ))
"$HUDDLE" bot --server "ws://127.0.0.1:$PORT" --room r1 --user pub --publish \
  --duration "$DURATION" "${CRED[@]}" >"$OUT/pub.log" 2>&1 &
PUB=$!
PIDS+=("$PUB")
"$HUDDLE" bot --server "ws://127.0.0.1:$PORT" --room r1 --user sub --subscribe --json \
  --stream-state-interval "$INTERVAL" --duration "$DURATION" "${CRED[@]}" >"$OUT/sub.log" 2>&1 &
PIDS+=($!)
# Frames are flowing once the subscriber reports decoded frames.
until grep -q '"frames_decoded":[1-9]' "$OUT/sub.log"; do sleep 0.05; done
sleep 2

echo "| round | interval s | stop → stream-interrupted s | resume → stream-recovered s |"
echo "|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  interrupted=$(grep -c '"event":"stream-interrupted"' "$OUT/sub.log" || true)
  recovered=$(grep -c '"event":"stream-recovered"' "$OUT/sub.log" || true)
  kill -STOP "$PUB"
  stopped=$(now)
  seen=$(wait_count stream-interrupted "$interrupted")
  sleep 1
  kill -CONT "$PUB"
  resumed=$(now)
  back=$(wait_count stream-recovered "$recovered")
  printf '| %d | %s | %.2f | %.2f |\n' "$round" "$INTERVAL" \
    "$(echo "$seen - $stopped" | bc)" "$(echo "$back - $resumed" | bc)"
  sleep 2
done
