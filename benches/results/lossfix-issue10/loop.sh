#!/usr/bin/env bash
# before/after DTLS connect counts at 5 % loss, 100 ms RTT, alternating builds
cd /work/wt-lossfix
N=${N:-20}
for i in $(seq ${FROM:-1} $N); do
  for b in ${BUILDS:-before after}; do
    HUDDLE=/work/lossfix-bin/huddle-$b DELAY_LINE=/work/lossfix-bin/delay_line OUT=/work/lossfix-runs/out \
    RUST_LOG=info,huddle::server::sfu::hub::event_loop=debug \
      timeout 120 bash benches/impair.sh --ns lossfix --role subscriber --loss 5 --rtt 100 --fps 30 --noise \
      --duration 10 --tag $b-$i >> /work/lossfix-runs/$b.jsonl 2>>/work/lossfix-runs/err.log || echo "{\"tag\":\"$b-$i\",\"script_failed\":true}" >> /work/lossfix-runs/$b.jsonl
  done
done
echo done > /work/lossfix-runs/DONE
