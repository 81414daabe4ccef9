#!/usr/bin/env bash
# Console click -> kiosk cut (issue 14 §4), old vs new lib test binaries side
# by side: runs the console tests of each alternately (old, new, old, ...),
# PAIRS times, and prints every "the kiosk cut ..." line with the 1-min load
# average at the start of the run. Build each binary with
# `cargo test --lib --no-run` (its path is printed) and copy it aside.
#
#   benches/kiosk_cut_ab.sh OLD_TEST_BIN NEW_TEST_BIN [PAIRS]
set -euo pipefail
OLD=${1:?old lib test binary}; NEW=${2:?new lib test binary}; PAIRS=${3:-3}
for i in $(seq "$PAIRS"); do
  for side in old new; do
    bin=$OLD; [[ $side == new ]] && bin=$NEW
    load=$(cut -d' ' -f1 /proc/loadavg)
    # A cut over 1 s fails its test: the line is printed before, and kept.
    "$bin" console::tests --test-threads=1 --nocapture 2>&1 |
      grep -E "the kiosk cut" |
      sed "s/^/| $i | $side | load $load | /" || true
  done
done
