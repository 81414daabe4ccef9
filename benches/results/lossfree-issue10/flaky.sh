#!/usr/bin/env bash
# flaky.sh BIN LABEL N: run the subscribe test N times, log each.
BIN=$1 LABEL=$2 N=${3:-20}
cd "$(dirname "$0")/../../.."
mkdir -p "${RUNS:-target/lossfree-runs}"
for i in $(seq $N); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  out=$($BIN client::subscribe::tests::frames_with_a_lost_packet_decode_once_it_is_resent --nocapture 2>&1)
  rc=$?
  line=$(echo "$out" | grep -E '^decoded' | head -1)
  echo "$LABEL run $i rc=$rc load=$load :: $line" | tee -a ${RUNS:-target/lossfree-runs}/flaky-$LABEL.log
  echo "$out" > ${RUNS:-target/lossfree-runs}/flaky-$LABEL-$i.out
done
