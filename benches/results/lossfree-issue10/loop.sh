#!/usr/bin/env bash
# ab.sh "A B ..." N [extra impair flags]: alternating impair runs of the given builds
# ($BIN_DIR/huddle-<build>), N rounds, 5 % loss, 100 ms RTT, 30 fps; env DELAY_LINE,
# BIN_DIR, RUNS (results), S (session name). Appends one JSON line per run to $RUNS/$S.jsonl.
BUILDS=$1 N=$2 S=${S:-ab}; shift 2
cd "$(dirname "$0")/../../.."
RUNS=${RUNS:-target/lossfree-runs}; mkdir -p "$RUNS"
export RUST_LOG=${RUST_LOG:-info,huddle::client::jitter=debug,huddle::link::nack_generator=debug,huddle::server::sfu::hub::direct=debug}
for i in $(seq $N); do
  for b in $BUILDS; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    res=$(HUDDLE=$BIN_DIR/huddle-$b DELAY_LINE=$DELAY_LINE \
      OUT=$RUNS/impair-$S benches/impair.sh --ns lossfree --role subscriber --loss 5 --rtt 100 \
      --fps 30 --noise --duration 30 --tag $b-$i "$@" 2>$RUNS/$S-$b-$i.err)
    echo "{\"build\":\"$b\",\"run\":$i,\"load1\":$load,\"result\":${res:-null}}" >> $RUNS/$S.jsonl
    echo "$b-$i load=$load $(echo "$res" | jq -c '{fps_mean,frames_decoded,frames_dropped,keyframe_requests,freezes,freeze_total_ms,longest_freeze_ms,pub:.publisher_frames_encoded}')"
  done
done
