#!/usr/bin/env bash
# Issue 10 §1 benchmark: a publisher's uplink is capped with `tc tbf` while it
# publishes, then the cap is lifted. Does the publisher adapt?
#
#   benches/publisher_cap.sh [--rate KBIT] [--profile P] [--noise]
#                            [--before S] [--capped S] [--after S] [--tag NAME]
#
# Topology (made by this run, removed on exit; root needed):
#
#   ns A: huddle serve 10.98.0.1 + subscriber bot ── veth ── ns B: publisher bot 10.98.0.2
#
# Timeline: --before s unimpaired (default 15), then `tc tbf` at --rate kbit/s
# (default 500; 15 KB burst, 200 ms of queue, as benches/impair.sh) on B's
# veth, i.e. the publisher's uplink, for --capped s (default 30), then the
# qdisc is removed and the run goes on for --after s (default 30).
#
# Both bots print per-second JSON lines, stamped here with seconds since the
# cap went on (negative before it). The publisher's lines carry `send_rate`
# (GCC estimate, encoder targets, rung) and `sent_kbps` (encoded audio+video);
# the subscriber's carry fps, kbit/s received, picture size and latency. The
# analysis at the end prints one JSON result:
#   sent_under_cap_after_s   first second after the cap from which every
#                            publisher line sent less than the cap
#   fps_min_capped / fps_mean_capped  received fps from 5 s after the cap
#   longest_freeze_capped_s  longest run of 0-fps seconds from 5 s after the cap
#   full_profile_after_lift_s  seconds from the lift until the subscriber
#                            receives the full size at >= 90 % of the full fps
#   g2g_p99_capped_ms        largest per-second p99 glass-to-glass while capped
#   padding_kbps_capped_max / padding_seconds_capped  probe padding (RTX
#                            resends of recent packets, not in sent_kbps)
#   sent_plus_padding_kbps_capped_max_after_5s  encoded + padding, worst second
#
# Environment: HUDDLE (binary, default target/release/huddle), OUT (results,
# default target/publisher-cap), PORT (default 17991).
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=${HUDDLE:-target/release/huddle}
OUT=${OUT:-target/publisher-cap}
PORT=${PORT:-17991}
RATE=500 PROFILE=720p_1 NOISE="" BEFORE=15 CAPPED=30 AFTER=30 TAG=""
while (($#)); do
  case $1 in
    --rate) RATE=$2; shift ;;
    --profile) PROFILE=$2; shift ;;
    --noise) NOISE=--noise ;;
    --before) BEFORE=$2; shift ;;
    --capped) CAPPED=$2; shift ;;
    --after) AFTER=$2; shift ;;
    --tag) TAG=$2; shift ;;
    *) echo "unknown flag $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --release --bin huddle" >&2; exit 1; }
for tool in ip tc python3; do
  command -v $tool >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
TAG=${TAG:-cap${RATE}-$PROFILE${NOISE:+-noise}}
mkdir -p "$OUT/$TAG"
LOG=$OUT/$TAG

RUN=$$
NS_A=pubcap-a-$RUN NS_B=pubcap-b-$RUN DEV_A=pca$RUN DEV_B=pcb$RUN
IP_A=10.98.0.1 IP_B=10.98.0.2
APP_ID=pubcap APP_KEY=pubcap-key-0123456789abcdef
CRED=(--app-id "$APP_ID" --app-key "$APP_KEY")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add "$DEV_A" type veth peer name "$DEV_B"
ip link set "$DEV_A" netns "$NS_A"
ip link set "$DEV_B" netns "$NS_B"
ip -n "$NS_A" addr add $IP_A/24 dev "$DEV_A"
ip -n "$NS_B" addr add $IP_B/24 dev "$DEV_B"
for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
ip -n "$NS_A" link set "$DEV_A" up
ip -n "$NS_B" link set "$DEV_B" up
# tbf meters what it sees: no 64 KB offload "frames".
ip netns exec "$NS_B" ethtool -K "$DEV_B" tso off gso off >/dev/null 2>&1 || true

# Stamps each line with seconds since the cap (the file $LOG/cap_at holds it).
stamp() {
  python3 -u -c '
import sys, time, os
path = sys.argv[1]
for line in sys.stdin:
    try:
        cap = float(open(path).read())
    except (OSError, ValueError):
        cap = None
    now = time.time()
    t = now - cap if cap is not None else None
    sys.stdout.write("%s\t%.3f\t%s" % ("" if t is None else "%.2f" % t, now, line))
    sys.stdout.flush()
' "$LOG/cap_at"
}
rm -f "$LOG/cap_at"
TOTAL=$((BEFORE + CAPPED + AFTER))

ip netns exec "$NS_A" "$HUDDLE" serve --listen $IP_A:$PORT --rtc-ip $IP_A "${CRED[@]}" \
  >"$LOG/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
  ip netns exec "$NS_A" bash -c "exec 3<>/dev/tcp/$IP_A/$PORT" 2>/dev/null && break
  sleep 0.1
done
URL=ws://$IP_A:$PORT
ip netns exec "$NS_B" "$HUDDLE" bot --server "$URL" --room cap --user pub --publish \
  --profile "$PROFILE" $NOISE --json --duration $((TOTAL + 4)) "${CRED[@]}" \
  2>"$LOG/publisher.log" | stamp >"$LOG/publisher.jsonl" &
PIDS+=($!)
sleep 1
ip netns exec "$NS_A" "$HUDDLE" bot --server "$URL" --room cap --user sub --subscribe \
  --json --duration $((TOTAL + 2)) "${CRED[@]}" \
  2>"$LOG/subscriber.log" | stamp >"$LOG/subscriber.jsonl" &
PIDS+=($!)

sleep "$BEFORE"
ip netns exec "$NS_B" tc qdisc add dev "$DEV_B" root tbf rate "${RATE}kbit" burst 15k latency 200ms
python3 -c 'import time; print(time.time())' >"$LOG/cap_at"
echo "cap ${RATE} kbit/s on at $(date +%T)" >&2
sleep "$CAPPED"
ip netns exec "$NS_B" tc qdisc del dev "$DEV_B" root
python3 -c 'import time; print(time.time())' >"$LOG/lift_at"
echo "cap lifted at $(date +%T)" >&2
sleep "$((AFTER + 3))"
wait "${PIDS[1]}" "${PIDS[2]}" 2>/dev/null || true

python3 - "$LOG" "$RATE" "$CAPPED" "$TAG" <<'EOF' | tee "$OUT/$TAG.result.json"
import json, sys
log, rate, capped, tag = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
cap_at = float(open(f"{log}/cap_at").read())
lift = float(open(f"{log}/lift_at").read()) - cap_at

def lines(name):
    out = []
    for raw in open(f"{log}/{name}.jsonl"):
        t, wall, body = raw.rstrip("\n").split("\t", 2)
        try:
            j = json.loads(body)
        except ValueError:
            continue
        out.append((float(wall) - cap_at, j))
    return out

pub = [(t, j) for t, j in lines("publisher") if "send_rate" in j and j.get("sent_kbps") is not None]
sub = [(t, j) for t, j in lines("subscriber") if "fps" in j]
capped_pub = [(t, j) for t, j in pub if 0 < t <= lift]
over = [t for t, j in capped_pub if j["sent_kbps"] >= rate]
under_after = (max(over) if over else 0.0)
adapted = [(t, j) for t, j in sub if 5 <= t <= lift]
fps = [j["fps"] for _, j in adapted]
freeze = longest = 0
for f in fps:
    freeze = freeze + 1 if f == 0 else 0
    longest = max(longest, freeze)
before = [j for t, j in sub if -10 <= t < 0 and j["fps"] > 0]
full = max(((j["width"], j["height"]) for j in before), default=(0, 0))
full_fps = max((j["fps"] for j in before), default=0)
back = next((t - lift for t, j in sub if t > lift and (j["width"], j["height"]) == full
             and j["fps"] >= 0.9 * full_fps), None)
p99 = [j["latency"]["p99_ms"] for t, j in adapted if j.get("latency")]
est = [j["send_rate"]["estimate_bps"] / 1e3 for t, j in capped_pub if j["send_rate"].get("estimate_bps")]
# Probe padding (RTX resends of recent packets, not counted in sent_kbps):
# kbit/s per line from the growth of the link's padding bytes.
padding = {}
for (t0, a), (t1, b) in zip(pub, pub[1:]):
    grown = b["send_rate"].get("padding_bytes", 0) - a["send_rate"].get("padding_bytes", 0)
    if t1 > t0 and grown >= 0:
        padding[t1] = grown * 8 / 1e3 / (t1 - t0)
with_padding = [j["sent_kbps"] + padding.get(t, 0.0) for t, j in capped_pub if t >= 5]
print(json.dumps({
    "tag": tag, "cap_kbps": rate, "capped_s": capped,
    "sent_kbps_before": [round(j["sent_kbps"]) for t, j in pub if -5 <= t < 0],
    "sent_under_cap_after_s": round(under_after, 1),
    "sent_kbps_capped_max_after_5s": round(max((j["sent_kbps"] for t, j in capped_pub if t >= 5), default=0)),
    "padding_kbps_capped_max": round(max((v for t, v in padding.items() if 0 < t <= lift), default=0)),
    "padding_seconds_capped": sum(1 for t, v in padding.items() if 0 < t <= lift and v > 0),
    "sent_plus_padding_kbps_capped_max_after_5s": round(max(with_padding, default=0)),
    "estimate_kbps_capped_range": [round(min(est, default=0)), round(max(est, default=0))],
    "fps_min_capped": min(fps, default=None),
    "fps_mean_capped": round(sum(fps) / len(fps), 1) if fps else None,
    "longest_freeze_capped_s": longest,
    "sizes_capped": sorted({f'{j["width"]}x{j["height"]}' for _, j in adapted}),
    "g2g_p99_capped_ms": round(max(p99), 1) if p99 else None,
    "full_size": f"{full[0]}x{full[1]}", "full_fps": full_fps,
    "full_profile_after_lift_s": None if back is None else round(back, 1),
}))
EOF
