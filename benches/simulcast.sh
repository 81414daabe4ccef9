#!/usr/bin/env bash
# Simulcast under a capped downlink (issue 10 §2): one publisher sending three
# layers, subscriber A unimpaired, subscriber B behind a `tc tbf` cap; both
# subscribe with `--resolution auto`. After --lift seconds B's cap is removed.
#
#   benches/simulcast.sh [--rate KBIT] [--duration S] [--lift S]
#                        [--profile P] [--layers P,P] [--fps N] [--noise] [--tag NAME]
#
# Defaults: --rate 300 --duration 60 --lift 30 --profile 360p_1
# --layers 180p_1,90p_1 --fps 15. Add --noise: the plain test pattern
# compresses to ~100 kbit/s even at 720p, under any cap worth testing.
#
# Topology (made by this run, removed on exit; namespaces named simulcast-*):
#
#   ns A: server 10.98.0.1, publisher, subscriber A ── veth ── ns B: subscriber B 10.98.0.2
#
# The cap is `tc tbf` on A's side of the veth (B's downlink), 200 ms of queue.
# Environment: HUDDLE (default target/debug/huddle), OUT (default
# target/simulcast-results), SERVER_LOG_LEVEL (default info; the server logs
# each `auto` layer change at info, each receiver report at debug). Prints one JSON result line: per subscriber the
# decoded sizes second by second, fps, freezes, and for B how long after the
# lift it was back on the top layer.
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=${HUDDLE:-target/debug/huddle}
OUT=${OUT:-target/simulcast-results}
RATE=300 DURATION=60 LIFT=30 PROFILE=360p_1 LAYERS=180p_1,90p_1 FPS=15 NOISE="" TAG=""
while (($#)); do
  case $1 in
    --rate) RATE=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --lift) LIFT=$2; shift ;;
    --profile) PROFILE=$2; shift ;;
    --layers) LAYERS=$2; shift ;;
    --fps) FPS=$2; shift ;;
    --noise) NOISE=--noise ;;
    --tag) TAG=$2; shift ;;
    *) echo "unknown flag $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --bin huddle" >&2; exit 1; }
for tool in ip tc jq; do
  command -v $tool >/dev/null || { echo "missing $tool (.ci/setup.sh installs it)" >&2; exit 1; }
done
TAG=${TAG:-simulcast-rate$RATE-lift$LIFT}
mkdir -p "$OUT/$TAG"
LOG="$OUT/$TAG"

RUN=$$
NS_A=simulcast-a-$RUN NS_B=simulcast-b-$RUN
IP_A=10.98.0.1 IP_B=10.98.0.2 PORT=17991
CRED=(--app-id simulcast --app-key simulcast-key-0123456789abcdef)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for ns in "$NS_A" "$NS_B"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
spawn_in() {
  local ns=$1 log=$2; shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  PIDS+=($!)
}

for ns in "$NS_A" "$NS_B"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip link add va netns "$NS_A" type veth peer name vb netns "$NS_B"
ip -n "$NS_A" addr add "$IP_A/24" dev va
ip -n "$NS_B" addr add "$IP_B/24" dev vb
ip -n "$NS_A" link set va up
ip -n "$NS_B" link set vb up
tc -n "$NS_A" qdisc add dev va root tbf rate "${RATE}kbit" burst 15k latency 200ms

spawn_in "$NS_A" "$LOG/server.log" "$HUDDLE" serve --log-level "${SERVER_LOG_LEVEL:-info}" \
  --listen "$IP_A:$PORT" --rtc-ip "$IP_A" "${CRED[@]}"
for _ in $(seq 100); do
  ip netns exec "$NS_A" bash -c "exec 3<>/dev/tcp/$IP_A/$PORT" 2>/dev/null && break
  sleep 0.1
done
BOT=(bot --server "ws://$IP_A:$PORT" "${CRED[@]}" --room simulcast --json)
spawn_in "$NS_A" "$LOG/publisher.jsonl" "$HUDDLE" "${BOT[@]}" --user pub --publish \
  --profile "$PROFILE" --layers "$LAYERS" --fps "$FPS" $NOISE --duration $((DURATION + 6))
sleep 2
spawn_in "$NS_A" "$OUT/$TAG.a.jsonl" "$HUDDLE" "${BOT[@]}" --user sub-a --subscribe \
  --resolution auto --duration "$DURATION" --summary "$OUT/$TAG.a.summary.json"
spawn_in "$NS_B" "$OUT/$TAG.b.jsonl" "$HUDDLE" "${BOT[@]}" --user sub-b --subscribe \
  --resolution auto --duration "$DURATION" --summary "$OUT/$TAG.b.summary.json"
B_PID=${PIDS[-1]}
A_PID=${PIDS[-2]}
sleep "$LIFT"
tc -n "$NS_A" qdisc del dev va root
LIFTED_AT=$(date +%s.%N)
wait "$B_PID" "$A_PID" || true

# Per subscriber: the per-second lines of the stream (size, fps), freezes.
summary() {
  grep '^{' "$1" | jq -s -c --argjson lift "$LIFT" '
    map(select(.stream_id != null and .width != null)) as $l
    | ($l | map(.width) | max) as $top
    | {seconds: ($l|length),
       widths: ($l | map(.width)),
       fps: ($l | map(.fps)),
       fps_mean_capped: ($l[2:$lift] | if length > 0 then (map(.fps)|add/length) else null end),
       fps_min_capped: ($l[2:$lift] | map(.fps) | min),
       widths_capped: ($l[2:$lift] | map(.width) | unique),
       top_width: $top,
       back_on_top_s_after_lift: ($l[$lift:] | to_entries | map(select(.value.width == $top)) | first | .key)}'
}
jq -n -c --arg tag "$TAG" --arg rate "$RATE" --arg profile "$PROFILE" --arg layers "$LAYERS" \
  --argjson a "$(summary "$OUT/$TAG.a.jsonl")" --argjson b "$(summary "$OUT/$TAG.b.jsonl")" \
  --slurpfile sa "$OUT/$TAG.a.summary.json" --slurpfile sb "$OUT/$TAG.b.summary.json" '
  {tag:$tag, rate_kbit:$rate, profile:$profile, layers:$layers,
   a: ($a + {longest_freeze_ms:$sa[0].longest_freeze_ms, freezes:$sa[0].freeze_count}),
   b: ($b + {longest_freeze_ms:$sb[0].longest_freeze_ms, freezes:$sb[0].freeze_count})}' \
  | tee "$OUT/$TAG.result.json"
