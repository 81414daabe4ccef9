#!/bin/bash
# usage: benches/debugger_ab.sh [N] [ROUNDS] [SECONDS]
#
# Issue 14 §4: what the stream debugger adds to the app's cost with N remote
# 640x360 streams (default 9). One server and one set of N publishing bots for
# the whole run; the kiosk app is started ROUNDS times (default 3) in each
# mode, alternating closed / open (`--debug`: the panel open, the sampler and
# the frame logs of every stream running), ABABAB, so both modes see the same
# load drift. Each run: join, 10 s to settle, then SECONDS (default 30) of
# measurement: the app's CPU seconds (utime+stime from /proc) and the frames
# it rendered (the app logs its fps every 5 s: the frames are the sum of
# fps × 5 over the log lines written in the window). It prints every run and
# the CPU milliseconds per rendered frame, so a machine that renders fewer
# frames under load is compared fairly. Needs an X display (DISPLAY, default
# :99) and a debug build (HUDDLE, default target/debug/huddle). PORT (default
# 7960 + N) is the server's, for runs side by side on one machine.
#
# The total per frame charges the app's fixed-rate work (decoding 9 × 15 fps,
# the network, the frame logs) to the frames drawn, so a run the load starves
# of frames looks costlier however cheap its drawing. So each run is also
# split by thread: `render` is the UI thread plus lavapipe's rasterizer
# threads (llvmpipe-*), per frame drawn; `rest` is every other thread, per
# second; `at_closed` is what the run would cost at its round's closed run's
# frame rate (rest + closed frames × render), as a % of that closed run.
#
# With HUDDLE_OLD=path (another build, e.g. main's), each round also runs
# that build open (`old-open`), between `closed` and `open`: before and after
# a change, side by side in one alternated run. Server and bots are HUDDLE's.
set -u
N=${1:-9}; ROUNDS=${2:-3}; SECS=${3:-30}
PORT=${PORT:-$((7960 + N))}; BIN=${HUDDLE:-target/debug/huddle}
export DISPLAY=${DISPLAY:-:99}
TMP=$(mktemp -d /tmp/debugger-ab.XXXX)
$BIN serve --listen 127.0.0.1:$PORT --app-id m --app-key k >"$TMP/serve.log" 2>&1 & SP=$!
sleep 1
$BIN bot --server ws://127.0.0.1:$PORT --room m --user pub --count "$N" --publish --profile 360p_1 \
  --app-id m --app-key k >"$TMP/bot.log" 2>&1 & BP=$!
trap 'kill $SP $BP 2>/dev/null; rm -rf "$TMP"' EXIT
users() { curl -s http://127.0.0.1:$PORT/metrics.json | python3 -c 'import sys,json; print(json.load(sys.stdin)["users"])' 2>/dev/null; }
wait_users() { for _ in $(seq 1 240); do [ "$(users)" = "$1" ] && return 0; sleep 0.5; done; return 1; }
wait_users "$N" || { echo "bots never joined"; exit 1; }
HZ=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Ticks of the UI thread (named after the binary) and of llvmpipe's threads.
render() {
  local t n=0 name; name=$(cat "/proc/$1/comm")
  for t in /proc/$1/task/*; do
    case "$(cat "$t/comm")" in "$name"|llvmpipe-*) n=$((n + $(awk '{print $14+$15}' "$t/stat")));; esac
  done; echo $n
}
echo "run mode     cpu_s  frames  cpu_ms/frame  cpu%   load   render_ms/frame rest_cpu% at_closed"
for round in $(seq 1 "$ROUNDS"); do
  BASE=""
  MODES=(closed open); [ -n "${HUDDLE_OLD:-}" ] && MODES=(closed old-open open)
  for mode in "${MODES[@]}"; do
    EXTRA=(); [ $mode != closed ] && EXTRA=(--debug)
    APP=$BIN; [ $mode = old-open ] && APP=$HUDDLE_OLD
    LOG="$TMP/app-$round-$mode.log"
    RUST_LOG=huddle=info,warn XDG_CONFIG_HOME=$(mktemp -d -p "$TMP") $APP --kiosk \
      --server ws://127.0.0.1:$PORT --room m --user wall --app-id m --app-key k \
      --window-size 1280x720 "${EXTRA[@]}" >"$LOG" 2>&1 & AP=$!
    wait_users $((N + 1)) || echo "  (the app did not join)"
    sleep 10
    c0=$(cpu $AP); r0=$(render $AP); l0=$(grep -c "ui:" "$LOG"); T0=$(date +%s.%N); load=$(cut -d' ' -f1 /proc/loadavg)
    sleep "$SECS"
    c1=$(cpu $AP); r1=$(render $AP); T1=$(date +%s.%N)
    frames=$(tail -n +$((l0 + 1)) "$LOG" | grep "ui:" | sed 's/.*ui: \([0-9.]*\) fps.*/\1/' \
      | awk '{s += $1 * 5} END {printf "%.0f", s}')
    row=$(python3 -c "
c=($c1-$c0)/$HZ; f=max($frames,1); dt=$T1-$T0; r=($r1-$r0)/$HZ; rest=(c-r)/dt
base='$BASE'.split()
fb, cb = (float(base[0]), float(base[1])) if base else (f/dt, c/dt)
at = (rest + fb*r/f) / cb * 100
print(f'{$round:>3} {\"$mode\":<8} {c:6.2f} {$frames:>7} {c/f*1e3:12.1f} {c/dt*100:5.0f}%  {\"$load\":<6} {r/f*1e3:12.1f} {rest*100:9.0f}% {at:8.0f}%|{f/dt} {c/dt}')")
    echo "${row%%|*}"
    [ -z "$BASE" ] && [ $mode = closed ] && BASE=$(echo "${row#*|}")
    kill $AP; wait $AP 2>/dev/null
    wait_users "$N" || true
  done
done
