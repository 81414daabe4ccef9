#!/usr/bin/env bash
# Old vs new on this machine, side by side: runs benchmarks of `run.sh` with
# two huddle binaries alternately (old, new, old, new, ...), PAIRS times, so
# both see the same machine noise, and prints one table per benchmark.
#
#   benches/ab.sh OLD_BIN NEW_BIN [PAIRS] [fanout|latency ...]
#
# Environment: OUT (default target/bench-ab) and everything run.sh reads
# (FANOUT_NS defaults to 200 here: the issue 9 check).
# Raw results: $OUT/{old,new}-<i>/<bench>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?old binary}; NEW=${2:?new binary}; PAIRS=${3:-3}
shift $(($# < 3 ? $# : 3))
BENCHES=("$@")
[[ ${#BENCHES[@]} -eq 0 ]] && BENCHES=(fanout latency)
OUT=${OUT:-target/bench-ab}
export FANOUT_NS=${FANOUT_NS:-200}
for i in $(seq "$PAIRS"); do
  for side in old new; do
    bin=$OLD; [[ $side == new ]] && bin=$NEW
    echo "== pair $i: $side ($bin)" >&2
    HUDDLE=$bin OUT="$OUT/$side-$i" benches/run.sh "${BENCHES[@]}" >/dev/null
  done
done
for b in "${BENCHES[@]}"; do
  case $b in
    fanout)
      echo "| run | binary | N | pkt/s per server core | fwd pkt/s | loss at subscribers | server RSS MB | UDP rcvbuf errors |"
      echo "|---|---|---|---|---|---|---|---|"
      for i in $(seq "$PAIRS"); do for side in old new; do
        jq -r --arg r "$i" --arg s "$side" '.steps[] | "| \($r) | \($s) | \(.subscribers) | \(.packets_per_s_per_server_core|floor) | \(.forwarded_per_s|floor) | \(.subscriber_side.lost) of \(.subscriber_side.expected) | \(.server_rss_kb/1024|floor) | \(.udp_rcvbuf_errors) |"' \
          "$OUT/$side-$i/fanout.json"
      done; done
      for side in old new; do
        jq -s --arg s "$side" '[.[].steps[].packets_per_s_per_server_core] | "\($s): mean \(add / length | floor) pkt/s per server core over \(length) runs"' \
          "$OUT"/$side-*/fanout.json
      done ;;
    latency)
      echo "| run | binary | profile | subscribers | frames | p50 ms | p99 ms | max ms |"
      echo "|---|---|---|---|---|---|---|---|"
      for i in $(seq "$PAIRS"); do for side in old new; do
        jq -r --arg r "$i" --arg s "$side" '.runs[] | "| \($r) | \($s) | \(.profile) | \(.subscribers) | \(.frames) | \(.p50_ms) | \(.p99_ms) | \(.max_ms) |"' \
          "$OUT/$side-$i/latency.json"
      done; done ;;
  esac
done
