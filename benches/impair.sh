#!/usr/bin/env bash
# Impairment harness: one huddle server and one unimpaired bot in namespace A,
# one bot in namespace B behind a given bandwidth cap, random loss and RTT, and
# the B bot's (or, for a publisher under test, the A subscriber's) figures.
#
#   benches/impair.sh --role subscriber|publisher [--rate KBIT] [--loss PCT]
#                     [--rtt MS] [--duration S] [--profile P] [--fps N] [--noise]
#                     [--tag NAME] [--ns PREFIX]
#
#   --role subscriber  B subscribes; A publishes. --rate caps B's downlink.
#   --role publisher   B publishes; A subscribes. --rate caps B's uplink.
#   --loss PCT         random loss of UDP (media, ICE, DTLS) in each direction
#                      (nftables `numgen random` on the input hooks of B, and of
#                      A for what comes from B); signalling is TCP and only
#                      sees the delay and the cap.
#   --rtt MS           round trip added between A and B (half each way).
#   --ns PREFIX        network namespaces are PREFIX-a-PID, -m-, -b- (default
#                      impair), so concurrent runs of different people differ.
#
# Environment: HUDDLE (huddle binary, default target/debug/huddle: the dev
# profile optimises the codecs), DELAY_LINE (default
# target/debug/examples/delay_line: `cargo build --example delay_line`),
# OUT (result directory, default target/impair-results).
#
# Topology (all made by this run, removed on exit):
#
#   ns A: server 10.99.0.1, bot ── veth ── ns M: delay_line (AF_PACKET bridge)
#                                          ── veth ── ns B: bot 10.99.0.2
#
# The kernel has no netem, so the delay is the userspace bridge
# examples/delay_line.rs; bandwidth is `tc tbf` on the sending veth (B's for an
# uplink cap, A's for a downlink cap); loss is nftables (input hooks). Offloads are off
# on every veth so the bridge sees plain, checksummed frames.
#
# Prints per-second JSON lines of the measured bot to $OUT/<tag>.lines.jsonl,
# its summary to $OUT/<tag>.summary.json, and one JSON result line on stdout.
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=${HUDDLE:-target/debug/huddle}
DELAY_LINE=${DELAY_LINE:-target/debug/examples/delay_line}
OUT=${OUT:-target/impair-results}
ROLE=subscriber RATE="" LOSS=0 RTT=0 DURATION=30 PROFILE=360p_2 FPS=30 NOISE="" TAG="" NS_PREFIX=impair
while (($#)); do
  case $1 in
    --role) ROLE=$2; shift ;;
    --rate) RATE=$2; shift ;;
    --loss) LOSS=$2; shift ;;
    --rtt) RTT=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --profile) PROFILE=$2; shift ;;
    --fps) FPS=$2; shift ;;
    --noise) NOISE=--noise ;;
    --tag) TAG=$2; shift ;;
    --ns) NS_PREFIX=$2; shift ;;
    *) echo "unknown flag $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[[ $ROLE == subscriber || $ROLE == publisher ]] || { echo "--role subscriber|publisher" >&2; exit 2; }
[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --bin huddle" >&2; exit 1; }
[[ -x $DELAY_LINE ]] || { echo "no $DELAY_LINE: cargo build --example delay_line" >&2; exit 1; }
for tool in ip tc nft ethtool jq; do
  command -v $tool >/dev/null || { echo "missing $tool (.ci/setup.sh installs it)" >&2; exit 1; }
done
TAG=${TAG:-$ROLE-rate${RATE:-none}-loss$LOSS-rtt$RTT}
mkdir -p "$OUT"
LOG="$OUT/$TAG"
mkdir -p "$LOG"

RUN=$$
NS_A=$NS_PREFIX-a-$RUN NS_M=$NS_PREFIX-m-$RUN NS_B=$NS_PREFIX-b-$RUN
IP_A=10.99.0.1 IP_B=10.99.0.2 PORT=17990
APP_ID=impair APP_KEY=impair-key-0123456789abcdef
CRED=(--app-id "$APP_ID" --app-key "$APP_KEY")
URL="ws://$IP_A:$PORT"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  # Anything else still running in our namespaces would keep them alive.
  for ns in "$NS_A" "$NS_M" "$NS_B"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# spawn_in NS LOG CMD...: CMD in the background in NS, its PID (ip netns exec
# execs CMD) remembered for cleanup.
spawn_in() {
  local ns=$1 log=$2; shift 2
  ip netns exec "$ns" "$@" >"$log" 2>&1 &
  PIDS+=($!)
}

# ------------------------------------------------------------------ network
for ns in "$NS_A" "$NS_M" "$NS_B"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip link add va netns "$NS_A" type veth peer name ma netns "$NS_M"
ip link add vb netns "$NS_B" type veth peer name mb netns "$NS_M"
in_ns "$NS_M" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
for pair in "$NS_A va" "$NS_B vb" "$NS_M ma" "$NS_M mb"; do
  set -- $pair
  in_ns "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1" || true
  # The bridge forwards frames as the socket reads them: no segmentation
  # offload (64 KB "frames") and no deferred checksums.
  in_ns "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  ip -n "$1" link set dev "$2" up
done
ip -n "$NS_M" link set dev ma promisc on
ip -n "$NS_M" link set dev mb promisc on
ip -n "$NS_A" addr add "$IP_A/24" dev va
ip -n "$NS_B" addr add "$IP_B/24" dev vb

HALF=$(awk -v r="$RTT" 'BEGIN { printf "%.3f", r / 2 }')
spawn_in "$NS_M" "$LOG/delay_line.log" "$DELAY_LINE" ma mb "$HALF" "$HALF"

if [[ -n $RATE ]]; then
  # Uplink cap: B's sending side; downlink cap: A's sending side towards B.
  # 200 ms of queue, as a home router's buffer (tbf drops beyond it).
  if [[ $ROLE == publisher ]]; then cap_ns=$NS_B cap_dev=vb; else cap_ns=$NS_A cap_dev=va; fi
  tc -n "$cap_ns" qdisc add dev "$cap_dev" root tbf rate "${RATE}kbit" burst 15k latency 200ms
fi
if awk -v l="$LOSS" 'BEGIN { exit !(l > 0) }'; then
  # Dropped where the packet arrives (input hooks), as a lossy path does: a
  # drop in the sender's output hook makes its send() fail with EPERM instead.
  PER_MILLE=$(awk -v l="$LOSS" 'BEGIN { printf "%d", l * 10 }')
  in_ns "$NS_B" nft -f - <<EOF
table inet impair {
  chain in { type filter hook input priority 0; meta l4proto udp numgen random mod 1000 < $PER_MILLE drop; }
}
EOF
  in_ns "$NS_A" nft -f - <<EOF
table inet impair {
  chain in { type filter hook input priority 0; ip saddr $IP_B meta l4proto udp numgen random mod 1000 < $PER_MILLE drop; }
}
EOF
fi

# ------------------------------------------------------------------ huddle
spawn_in "$NS_A" "$LOG/server.log" "$HUDDLE" serve --listen "$IP_A:$PORT" --rtc-ip "$IP_A" "${CRED[@]}"
for _ in $(seq 100); do
  in_ns "$NS_A" curl -sf "http://$IP_A:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
# The path works before the bots start (ARP and TCP through the bridge).
in_ns "$NS_B" curl -sf --retry 3 --max-time 5 "http://$IP_A:$PORT/healthz" >/dev/null \
  || { echo "no path from B to A through the delay line" >&2; exit 1; }

BOT=(bot --server "$URL" "${CRED[@]}" --room impair)
PUBLISH=(--publish --profile "$PROFILE" --fps "$FPS" $NOISE)
if [[ $ROLE == subscriber ]]; then pub_ns=$NS_A sub_ns=$NS_B; else pub_ns=$NS_B sub_ns=$NS_A; fi
spawn_in "$pub_ns" "$LOG/publisher.jsonl" "$HUDDLE" "${BOT[@]}" --user pub "${PUBLISH[@]}" --json \
  --duration $((DURATION + 8))
sleep 1
tx_bytes() { ip -n "$1" -j -s link show "$2" | jq '.[0].stats64.tx.bytes'; }
TX_B0=$(tx_bytes "$NS_B" vb) TX_A0=$(tx_bytes "$NS_A" va)
in_ns "$sub_ns" "$HUDDLE" "${BOT[@]}" --user sub --subscribe --json --duration "$DURATION" \
  --summary "$OUT/$TAG.summary.json" >"$OUT/$TAG.lines.jsonl" 2>"$LOG/subscriber.log"
TX_B1=$(tx_bytes "$NS_B" vb) TX_A1=$(tx_bytes "$NS_A" va)
# The server's counters (NACKs received, packets resent, ...) for the record.
in_ns "$NS_A" curl -sf "http://$IP_A:$PORT/metrics" >"$LOG/server.metrics" 2>/dev/null || true
QDISC=$( [[ -n $RATE ]] && tc -n "$cap_ns" -s -j qdisc show dev "$cap_dev" | jq -c '.[0] | {sent_bytes:.bytes, drops, overlimits}' || echo null)

# What the publisher encoded (a loaded machine starves its encoder: then the
# subscriber's frame rate says nothing about the network).
PUB_ENCODED=$(grep -h '"send_rate"' "$LOG/publisher.jsonl" 2>/dev/null | tail -n 1 \
  | jq '.send_rate.frames_encoded' 2>/dev/null || true)
PUB_ENCODED=${PUB_ENCODED:-null}

# ------------------------------------------------------------------ result
# Seconds after the first decoded frame; fps and freezes over that window.
# seconds_to_30_frames: report lines (1 s apart, from the subscriber's start)
# until 30 frames were decoded (the slow start under loss).
jq -s -c --arg tag "$TAG" --arg role "$ROLE" --arg rate "${RATE:-none}" --argjson loss "$LOSS" \
  --argjson rtt "$RTT" --arg profile "$PROFILE" --argjson fps "$FPS" --argjson dur "$DURATION" \
  --argjson b_tx $(((TX_B1 - TX_B0) * 8 / 1000 / DURATION)) \
  --argjson a_tx $(((TX_A1 - TX_A0) * 8 / 1000 / DURATION)) --argjson qdisc "$QDISC" \
  --slurpfile s "$OUT/$TAG.summary.json" --argjson pub_encoded "$PUB_ENCODED" '
  map(select(.stream_id != null)) as $lines
  | ($lines | to_entries | map(select(.value.frames_decoded >= 30)) | first) as $first30
  | map(select(.event == "network-quality") | .downlinkNetworkQuality) as $nq
  | ($lines | map(select(.frames_decoded > 0))) as $live
  | {tag:$tag, role:$role, rate_kbit:$rate, loss_pct:$loss, rtt_ms:$rtt, profile:$profile, fps_sent:$fps,
     seconds:$dur, seconds_with_video:($live|length),
     seconds_to_30_frames:(if $first30 == null then null else $first30.key + 1 end),
     publisher_frames_encoded:$pub_encoded,
     fps_mean:(if ($live|length) > 0 then ($live|map(.fps)|add/length) else 0 end),
     fps_min:($live|map(.fps)|min),
     seconds_under_half_fps:($live|map(select(.fps < $fps/2))|length),
     frames_decoded:$s[0].frames_decoded, frames_dropped:$s[0].frames_dropped,
     keyframe_requests:$s[0].keyframe_requests, freezes:$s[0].freeze_count,
     audio_frames:($lines|last|.audio_frames_decoded), audio_recovered_fec:$s[0].audio_frames_recovered,
     audio_concealed:$s[0].audio_frames_concealed,
     freeze_total_ms:$s[0].freeze_total_ms, longest_freeze_ms:$s[0].longest_freeze_ms,
     received_kbps_mean:(if ($live|length) > 0 then ($live|map(.kbps)|add/length) else 0 end),
     loss_fraction:$s[0].loss_fraction, latency:$s[0].latency,
     b_sent_kbps:$b_tx, a_sent_kbps:$a_tx, cap_qdisc:$qdisc,
     downlink_quality:{min:($nq|min), max:($nq|max), last:($nq|last)}}' "$OUT/$TAG.lines.jsonl" \
  | tee "$OUT/$TAG.result.json"
