#!/usr/bin/env bash
# before/after RTX on the downlink: subscriber at 5 % loss, 100 ms RTT, builds alternated
# (paths of this session: /work/rtx-bin holds the stripped debug binaries of main and of branch rtx)
cd /work/wt-rtx
N=${N:-4}
for i in $(seq ${FROM:-1} $N); do
  for b in ${BUILDS:-before after}; do
    HUDDLE=/work/rtx-bin/huddle-$b DELAY_LINE=/work/rtx-bin/delay_line OUT=/work/rtx-runs/out \
      timeout 150 bash benches/impair.sh --ns rtx --role subscriber --loss 5 --rtt 100 --fps 30 --noise \
      --duration 30 --tag $b-$i >> /work/rtx-runs/$b.jsonl 2>>/work/rtx-runs/err.log || echo "{\"tag\":\"$b-$i\",\"script_failed\":true}" >> /work/rtx-runs/$b.jsonl
  done
done
echo done > /work/rtx-runs/DONE
