#!/bin/bash
# usage: benches/app_cpu.sh N [debug]  — CPU and UI fps of the kiosk app with N remote 640x360 streams;
# with `debug`, the stream debugger is open too (`--debug`: its plots of the first received stream)
N=${1:?usage: app_cpu.sh N [debug]}; PORT=$((7900+N)); BIN=${HUDDLE:-target/debug/huddle}
EXTRA=(); [ "${2:-}" = debug ] && { EXTRA=(--debug); PORT=$((PORT+50)); }
# Needs an X display (e.g. `Xvfb :99 -screen 0 1280x720x24 &`); DISPLAY defaults to :99.
export DISPLAY=${DISPLAY:-:99} XDG_CONFIG_HOME=$(mktemp -d)
$BIN serve --listen 127.0.0.1:$PORT --app-id m --app-key k >${TMPDIR:-/tmp}/app-cpu-serve-$N.log 2>&1 & SP=$!
sleep 1
$BIN bot --server ws://127.0.0.1:$PORT --room m --user pub --count $N --publish --profile 360p_1 --app-id m --app-key k >${TMPDIR:-/tmp}/app-cpu-bot-$N.log 2>&1 & BP=$!
sleep 2
RUST_LOG=huddle=info,warn $BIN --kiosk --server ws://127.0.0.1:$PORT --room m --user wall --app-id m --app-key k --window-size 1280x720 --debug-overlay "${EXTRA[@]}" >${TMPDIR:-/tmp}/app-cpu-app-$N.log 2>&1 & AP=$!
for i in $(seq 1 120); do
  U=$(curl -s http://127.0.0.1:$PORT/metrics.json | python3 -c 'import sys,json; print(json.load(sys.stdin)["users"])' 2>/dev/null)
  [ "$U" = "$((N+1))" ] && break; sleep 0.5; done
sleep 10
echo "  users=$U load=$(cut -d' ' -f1-3 /proc/loadavg)"
t() { awk '{print $14+$15}' /proc/$1/stat; }
a0=$(t $AP); s0=$(t $SP); b0=$(t $BP); T0=$(date +%s.%N)
sleep 20
a1=$(t $AP); s1=$(t $SP); b1=$(t $BP); T1=$(date +%s.%N)
HZ=$(getconf CLK_TCK)
/usr/bin/import -window root ${TMPDIR:-/tmp}/app-cpu-shot-$N.png
python3 -c "
dt=$T1-$T0
print(f'N=$N ${2:-} app {($a1-$a0)/$HZ/dt*100:.0f}% cpu, server {($s1-$s0)/$HZ/dt*100:.0f}%, bots {($b1-$b0)/$HZ/dt*100:.0f}% (of one core, over {dt:.0f} s)')"
grep "ui:" ${TMPDIR:-/tmp}/app-cpu-app-$N.log | tail -4 | sed 's/.*ui:/  ui:/'
kill $AP $BP $SP; wait 2>/dev/null
