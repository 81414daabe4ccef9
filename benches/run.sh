#!/usr/bin/env bash
# huddle benchmarks: drives `huddle serve` and `huddle bot` processes on
# 127.0.0.1 and writes one JSON file per benchmark plus a markdown table.
#
#   benches/run.sh [latency|join|fanout|meeting|isolation|codecs|all]...
#
# Environment:
#   HUDDLE     huddle binary (default target/release/huddle; build it with
#              `cargo build --release --bin huddle`)
#   OUT        result directory (default target/bench-results)
#   PORT       server port (default 17880)
#   FANOUT_NS  subscriber counts for `fanout` (default "1 10 50 100 200")
#   MEETING_NS meeting sizes for `meeting` (default "5 10 20")
#   WINDOW     measurement window of fanout/meeting steps, s (default 20)
#   SUBS_PER_PROC  subscribers per client process in `fanout` (default 50)
#   ISOLATION_HEALTHY / ISOLATION_STALLED  subscribers that keep reading / that
#              are frozen (SIGSTOP) in `isolation` (default 100 / 10)
#
# Every process is started with a bounded --duration and killed by PID at the
# end of its step; nothing binds anything but 127.0.0.1.
set -euo pipefail

cd "$(dirname "$0")/.."
HUDDLE=${HUDDLE:-target/release/huddle}
OUT=${OUT:-target/bench-results}
PORT=${PORT:-17880}
WINDOW=${WINDOW:-20}
SUBS_PER_PROC=${SUBS_PER_PROC:-50}
APP_ID=bench
APP_KEY=bench-key-0123456789abcdef
URL="ws://127.0.0.1:$PORT"
CRED=(--app-id "$APP_ID" --app-key "$APP_KEY")
TICKS=$(getconf CLK_TCK)
mkdir -p "$OUT"
LOG="$OUT/logs"
mkdir -p "$LOG"

[[ -x $HUDDLE ]] || { echo "no $HUDDLE: cargo build --release --bin huddle" >&2; exit 1; }

machine_json() {
  jq -n --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --arg dirty "$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    --arg nproc "$(nproc)" --arg date "$(date -u +%FT%TZ)" --arg bin "$HUDDLE" \
    '{commit:$commit, uncommitted_files:($dirty|tonumber), cpu:$cpu, nproc:($nproc|tonumber), date:$date, binary:$bin}'
}

SERVER_PID=""
PIDS=()
cleanup() {
  for p in "${PIDS[@]}" $SERVER_PID; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}" $SERVER_PID; do wait "$p" 2>/dev/null || true; done
  PIDS=(); SERVER_PID=""
}
trap cleanup EXIT

# Every bot connects from 127.0.0.1: lift the per-address connection cap
# (200 by default) above the largest step.
SERVER_CONFIG="$OUT/bench-server.toml"
printf '[limits]\nmax_connections_per_ip = 10000\n' >"$SERVER_CONFIG"

start_server() {
  "$HUDDLE" serve --listen "127.0.0.1:$PORT" --config "$SERVER_CONFIG" "${CRED[@]}" \
    >"$LOG/server-$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}

metrics() { curl -sf "http://127.0.0.1:$PORT/metrics.json"; }
# 0 when the process is gone (a bot that ended early shows up as 0, not a crash).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
udp_rcvbuf_errors() { awk '/^Udp:/ {n++; if (n == 2) print $6}' /proc/net/snmp; }

# wait_pcs N TIMEOUT: until the server holds N peer connections.
wait_pcs() {
  local want=$1 deadline=$((SECONDS + $2))
  while ((SECONDS < deadline)); do
    local have
    have=$(metrics | jq .peerConnections)
    ((have >= want)) && return 0
    sleep 0.5
  done
  echo "only $(metrics | jq .peerConnections) of $want peer connections" >&2
  return 1
}

# Always run in the background (`bot ... &`): exec keeps $! the huddle process,
# so its /proc entry is the bot's. Foreground use: `bot ... & wait $!`.
bot() { exec "$HUDDLE" bot --server "$URL" "${CRED[@]}" "$@"; }

# ---------------------------------------------------------------- latency
bench_latency() {
  local rows=() dur=40
  for cfg in "480p_1 1" "480p_1 5" "720p_1 1" "720p_1 5"; do
    set -- $cfg
    local profile=$1 subs=$2 tag="latency-$1-$2"
    start_server "$tag"
    bot --room lat --user pub --publish --profile "$profile" --fps 30 --duration $((dur + 10)) \
      >"$LOG/$tag-pub.log" 2>&1 &
    PIDS+=($!)
    sleep 1
    bot --room lat --user sub --subscribe --count "$subs" --duration "$dur" \
      --summary "$OUT/$tag.summary.json" >"$LOG/$tag-sub.log" 2>&1 &
    wait $!
    cleanup
    rows+=("$(jq -c --arg p "$profile" --argjson s "$subs" \
      '{profile:$p, fps:30, subscribers:$s, frames:.latency.samples, p50_ms:.latency.p50_ms,
        p90_ms:.latency.p90_ms, p99_ms:.latency.p99_ms, max_ms:.latency.max_ms,
        frames_decoded:.frames_decoded, loss_fraction:.loss_fraction}' "$OUT/$tag.summary.json")")
  done
  printf '%s\n' "${rows[@]}" | jq -s --argjson m "$(machine_json)" \
    '{benchmark:"glass-to-glass latency", machine:$m, command:"benches/run.sh latency", runs:.}' \
    >"$OUT/latency.json"
  {
    echo "| profile | fps | subscribers | frames | p50 ms | p90 ms | p99 ms | max ms |"
    echo "|---|---|---|---|---|---|---|---|"
    jq -r '.runs[] | "| \(.profile) | \(.fps) | \(.subscribers) | \(.frames) | \(.p50_ms) | \(.p90_ms) | \(.p99_ms) | \(.max_ms) |"' "$OUT/latency.json"
  } >"$OUT/latency.md"
  cat "$OUT/latency.md"
}

# ---------------------------------------------------------------- join
bench_join() {
  local tag=join
  start_server "$tag"
  bot --room join --user pub --publish --duration 60 >"$LOG/$tag-pub.log" 2>&1 &
  PIDS+=($!)
  sleep 2
  # Spaced: 20 joins 1.2 s apart (the SFU sends at most one PLI per second).
  bot --room join --user spaced --subscribe --count 20 --join-interval 1.2 --duration 3 \
    --summary "$OUT/join-spaced.summary.json" >"$LOG/$tag-spaced.log" 2>&1 &
  wait $!
  sleep 2
  # Burst: 10 processes joining at the same moment.
  local burst=()
  for i in $(seq 10); do
    bot --room join --user "burst$i" --subscribe --duration 6 \
      --summary "$OUT/join-burst-$i.summary.json" >"$LOG/$tag-burst-$i.log" 2>&1 &
    burst+=($!)
  done
  for p in "${burst[@]}"; do wait "$p" || true; done
  cleanup
  jq -s '[.[].join_to_first_frame_ms[]]' "$OUT"/join-burst-*.summary.json >"$OUT/join-burst.samples.json"
  jq -n --argjson m "$(machine_json)" --slurpfile spaced "$OUT/join-spaced.summary.json" \
    --slurpfile burst "$OUT/join-burst.samples.json" '
    def pct(q): sort | .[((q * length) | ceil) - 1];
    def summary: {joins: length, p50_ms: pct(0.5), p99_ms: pct(0.99), max_ms: max};
    {benchmark:"join to first decoded frame", machine:$m, command:"benches/run.sh join",
     spaced_1200ms: ($spaced[0].join_to_first_frame_ms | summary),
     burst_10_processes: ($burst[0] | summary),
     spaced_samples_ms: $spaced[0].join_to_first_frame_ms, burst_samples_ms: $burst[0]}' \
    >"$OUT/join.json"
  {
    echo "| case | joins | p50 ms | p99 ms | max ms |"
    echo "|---|---|---|---|---|"
    jq -r '"| 20 joins, 1.2 s apart | \(.spaced_1200ms.joins) | \(.spaced_1200ms.p50_ms|floor) | \(.spaced_1200ms.p99_ms|floor) | \(.spaced_1200ms.max_ms|floor) |",
           "| burst: 10 processes at once | \(.burst_10_processes.joins) | \(.burst_10_processes.p50_ms|floor) | \(.burst_10_processes.p99_ms|floor) | \(.burst_10_processes.max_ms|floor) |"' "$OUT/join.json"
  } >"$OUT/join.md"
  cat "$OUT/join.md"
}

# ------------------------------------------------- fan-out measurement step
# measure_step TAG N_SUBS_EXPECTED_PCS CLIENT_PIDS...: samples server
# counters over WINDOW seconds and prints one JSON object.
measure_window() {
  local tag=$1; shift
  local m0 c0 u0 t0 m1 c1 u1 t1 clients_c0=0 clients_c1=0 p
  local p0=0 p1=0
  [[ -n ${PUB_PID:-} ]] && p0=$(cpu_ticks "$PUB_PID")
  m0=$(metrics); c0=$(cpu_ticks "$SERVER_PID"); u0=$(udp_rcvbuf_errors); t0=$(date +%s.%N)
  for p in "$@"; do clients_c0=$((clients_c0 + $(cpu_ticks "$p"))); done
  sleep "$WINDOW"
  m1=$(metrics); c1=$(cpu_ticks "$SERVER_PID"); u1=$(udp_rcvbuf_errors); t1=$(date +%s.%N)
  [[ -n ${PUB_PID:-} ]] && p1=$(cpu_ticks "$PUB_PID")
  local client_rss=0
  for p in "$@"; do
    clients_c1=$((clients_c1 + $(cpu_ticks "$p")))
    client_rss=$((client_rss + $(rss_kb "$p")))
  done
  jq -n --argjson m0 "$m0" --argjson m1 "$m1" --arg c0 "$c0" --arg c1 "$c1" \
    --arg t0 "$t0" --arg t1 "$t1" --arg ticks "$TICKS" --arg rss "$(rss_kb "$SERVER_PID")" \
    --arg u0 "$u0" --arg u1 "$u1" --arg cc0 "$clients_c0" --arg cc1 "$clients_c1" \
    --arg crss "$client_rss" --arg nclients "$#" --arg p0 "$p0" --arg p1 "$p1" \
    --arg load "$(cut -d' ' -f1 /proc/loadavg)" '
    (($t1|tonumber) - ($t0|tonumber)) as $dt
    | ($m1.forwardedPackets - $m0.forwardedPackets) as $fwd
    | ((($c1|tonumber) - ($c0|tonumber)) / ($ticks|tonumber)) as $cpu
    | {window_s: $dt, forwarded: $fwd, forwarded_per_s: ($fwd / $dt),
       server_cpu_s: $cpu, server_cpu_cores: ($cpu / $dt),
       server_cpu_s_per_100k_packets: (if $fwd > 0 then $cpu * 100000 / $fwd else null end),
       packets_per_s_per_server_core: (if $cpu > 0 then $fwd / $cpu else null end),
       server_rss_kb: ($rss|tonumber), peer_connections: $m1.peerConnections,
       udp_rcvbuf_errors: (($u1|tonumber) - ($u0|tonumber)),
       client_processes: ($nclients|tonumber),
       client_cpu_cores: (((($cc1|tonumber) - ($cc0|tonumber)) / ($ticks|tonumber)) / $dt),
       client_rss_kb: ($crss|tonumber),
       publisher_cpu_cores: (((($p1|tonumber) - ($p0|tonumber)) / ($ticks|tonumber)) / $dt),
       load_avg_1m: ($load|tonumber)}'
}

# ---------------------------------------------------------------- fanout
bench_fanout() {
  local rows=()
  for n in ${FANOUT_NS:-1 10 50 100 200}; do
    local tag="fanout-$n"
    start_server "$tag"
    local rss_empty; rss_empty=$(rss_kb "$SERVER_PID")
    # One publisher: 720p_1 (1280x720 @ 15 fps, 1.5 Mbit/s) + Opus.
    bot --room fan --user pub --publish --noise --profile 720p_1 --duration 200 \
      >"$LOG/$tag-pub.log" 2>&1 &
    local pub=$!; PIDS+=($pub)
    wait_pcs 1 20
    sleep 2
    local rss_pub; rss_pub=$(rss_kb "$SERVER_PID")
    local clients=() left=$n i=0
    rm -f "$OUT/$tag".sub-*.summary.json
    while ((left > 0)); do
      local c=$((left < SUBS_PER_PROC ? left : SUBS_PER_PROC))
      i=$((i + 1))
      bot --room fan --user "s$i" --subscribe --no-decode --count "$c" \
        --duration $((WINDOW + 15)) --summary "$OUT/$tag.sub-$i.summary.json" \
        >"$LOG/$tag-sub-$i.log" 2>&1 &
      clients+=($!); PIDS+=($!)
      left=$((left - c))
    done
    local t_join=$SECONDS
    wait_pcs $((n + 1)) 120 || true
    local join_s=$((SECONDS - t_join))
    sleep 3
    local step; step=$(PUB_PID=$pub measure_window "$tag" "${clients[@]}")
    for p in "${clients[@]}"; do wait "$p" || true; done
    cleanup
    local subs; subs=$(jq -s '{subscriptions: (map(.subscriptions)|add), video_packets: (map(.video_packets)|add),
      audio_packets: (map(.audio_packets)|add), expected: (map(.expected_packets)|add),
      lost: (map(.lost_packets)|add), max_video_jitter_ms: (map(.max_video_jitter_ms)|max)}
      | .loss_fraction = (if .expected > 0 then .lost / .expected else null end)' "$OUT/$tag".sub-*.summary.json)
    rows+=("$(jq -n --argjson n "$n" --argjson s "$step" --argjson subs "$subs" \
      --arg re "$rss_empty" --arg rp "$rss_pub" --arg js "$join_s" '
      $s + {subscribers: $n, subscribers_connected_after_s: ($js|tonumber), server_rss_empty_kb: ($re|tonumber),
       server_rss_with_publisher_kb: ($rp|tonumber),
       server_rss_per_subscriber_kb: (($s.server_rss_kb - ($rp|tonumber)) / $n),
       subscriber_side: $subs}')")
  done
  printf '%s\n' "${rows[@]}" | jq -s --argjson m "$(machine_json)" \
    '{benchmark:"SFU fan-out, 1 publisher (720p_1 + Opus) -> N receive-only subscribers",
      machine:$m, command:"benches/run.sh fanout", steps:.}' >"$OUT/fanout.json"
  fanout_table fanout
}

fanout_table() {
  {
    echo "| N | fwd pkt/s | server CPU cores | CPU s / 100k pkt | pkt/s per server core | loss at subscribers | server RSS MB | RSS/sub KB | client CPU cores (procs) | publisher CPU cores | UDP rcvbuf errors | load avg |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    jq -r '.steps[] | "| \(.subscribers) | \(.forwarded_per_s|floor) | \(.server_cpu_cores*100|floor/100) | \(if .server_cpu_s_per_100k_packets then (.server_cpu_s_per_100k_packets*100|floor/100) else "-" end) | \(if .packets_per_s_per_server_core then (.packets_per_s_per_server_core|floor) else "-" end) | \(if .subscriber_side.loss_fraction then (.subscriber_side.loss_fraction*10000|floor/100|tostring) + " %" else "-" end) | \(.server_rss_kb/1024|floor) | \(.server_rss_per_subscriber_kb|floor) | \(.client_cpu_cores*100|floor/100) (\(.client_processes)) | \(.publisher_cpu_cores*100|floor/100) | \(.udp_rcvbuf_errors) | \(.load_avg_1m) |"' "$OUT/$1.json"
  } >"$OUT/$1.md"
  cat "$OUT/$1.md"
}

# ---------------------------------------------------------------- meeting
bench_meeting() {
  local rows=()
  for n in ${MEETING_NS:-5 10 20}; do
    local tag="meeting-$n"
    start_server "$tag"
    local rss_empty; rss_empty=$(rss_kb "$SERVER_PID")
    rm -f "$OUT/$tag".p-*.summary.json
    # N participants, 5 per process, each publishing the plain 360p_1 pattern
    # (640x360 @ 15 fps) + Opus and receiving all the others without decoding.
    # (With --noise, 20 encoders alone saturate this 2-core machine.)
    local clients=() left=$n i=0
    while ((left > 0)); do
      local c=$((left < 5 ? left : 5))
      i=$((i + 1))
      bot --room meet --user "m$i" --publish --subscribe --no-decode --count "$c" --profile 360p_1 \
        --duration $((WINDOW + 25)) --summary "$OUT/$tag.p-$i.summary.json" >"$LOG/$tag-$i.log" 2>&1 &
      clients+=($!); PIDS+=($!)
      left=$((left - c))
    done
    local t_join=$SECONDS
    wait_pcs $((n * n)) 60 || true
    local join_s=$((SECONDS - t_join))
    sleep 3
    local step; step=$(measure_window "$tag" "${clients[@]}")
    for p in "${clients[@]}"; do wait "$p" || true; done
    cleanup
    local subs; subs=$(jq -s '{subscriptions: (map(.subscriptions)|add), video_packets: (map(.video_packets)|add),
      audio_packets: (map(.audio_packets)|add), expected: (map(.expected_packets)|add),
      lost: (map(.lost_packets)|add), max_video_jitter_ms: (map(.max_video_jitter_ms)|max)}
      | .loss_fraction = (if .expected > 0 then .lost / .expected else null end)' "$OUT/$tag".p-*.summary.json)
    rows+=("$(jq -n --argjson n "$n" --argjson s "$step" --argjson subs "$subs" \
      --arg re "$rss_empty" --arg js "$join_s" '
      $s + {participants: $n, subscribers: ($n * ($n - 1)), connected_after_s: ($js|tonumber),
       server_rss_empty_kb: ($re|tonumber),
       server_rss_per_subscriber_kb: (($s.server_rss_kb - ($re|tonumber)) / ($n * ($n - 1))),
       subscriber_side: $subs}')")
  done
  printf '%s\n' "${rows[@]}" | jq -s --argjson m "$(machine_json)" \
    '{benchmark:"SFU N x N meeting (360p_1 pattern + Opus, receive-only)", machine:$m,
      command:"benches/run.sh meeting", steps:.}' >"$OUT/meeting.json"
  fanout_table meeting
}

# ---------------------------------------------------------------- isolation
# A slow subscriber must cost nobody else anything: 1 publisher (as in fanout)
# -> ISOLATION_HEALTHY subscribers that keep reading, plus one client process
# of ISOLATION_STALLED subscribers. One window with everyone reading, then one
# with the stalled process frozen by SIGSTOP (its sockets stop draining; its
# peer connections stay open). Healthy loss is over their whole life, so it
# covers both windows.
bench_isolation() {
  local tag=isolation healthy=${ISOLATION_HEALTHY:-100} stalled_n=${ISOLATION_STALLED:-10}
  start_server "$tag"
  bot --room iso --user pub --publish --noise --profile 720p_1 --duration 200 \
    >"$LOG/$tag-pub.log" 2>&1 &
  local pub=$!; PIDS+=($pub)
  wait_pcs 1 20
  sleep 2
  rm -f "$OUT/$tag".*.summary.json
  local dur=$((2 * WINDOW + 25))
  bot --room iso --user stalled --subscribe --no-decode --count "$stalled_n" --duration "$dur" \
    --summary "$OUT/$tag.stalled.summary.json" >"$LOG/$tag-stalled.log" 2>&1 &
  local stalled=$!; PIDS+=($stalled)
  local clients=() left=$healthy i=0
  while ((left > 0)); do
    local c=$((left < SUBS_PER_PROC ? left : SUBS_PER_PROC))
    i=$((i + 1))
    bot --room iso --user "h$i" --subscribe --no-decode --count "$c" --duration "$dur" \
      --summary "$OUT/$tag.healthy-$i.summary.json" >"$LOG/$tag-healthy-$i.log" 2>&1 &
    clients+=($!); PIDS+=($!)
    left=$((left - c))
  done
  wait_pcs $((healthy + stalled_n + 1)) 120 || true
  sleep 3
  local before during
  before=$(PUB_PID=$pub measure_window "$tag-before" "${clients[@]}")
  kill -STOP "$stalled"
  during=$(PUB_PID=$pub measure_window "$tag-during" "${clients[@]}")
  kill -CONT "$stalled"
  for p in "${clients[@]}" "$stalled"; do wait "$p" || true; done
  cleanup
  local subs
  subs=$(jq -s '{subscriptions: (map(.subscriptions)|add), expected: (map(.expected_packets)|add),
      lost: (map(.lost_packets)|add)} | .loss_fraction = (if .expected > 0 then .lost / .expected else null end)' \
      "$OUT/$tag".healthy-*.summary.json)
  local stalled_side
  stalled_side=$(jq '{subscriptions, expected: .expected_packets, lost: .lost_packets}' \
      "$OUT/$tag.stalled.summary.json" 2>/dev/null || echo null)
  jq -n --argjson m "$(machine_json)" --argjson b "$before" --argjson d "$during" \
    --argjson h "$subs" --argjson st "$stalled_side" --argjson hn "$healthy" --argjson sn "$stalled_n" '
    {benchmark:"slow-subscriber isolation: healthy subscribers while others are frozen",
     machine:$m, command:"benches/run.sh isolation", healthy_subscribers:$hn, stalled_subscribers:$sn,
     all_reading:$b, stalled_frozen:$d, healthy_side:$h, stalled_side:$st}' >"$OUT/isolation.json"
  {
    echo "| window | fwd pkt/s | server CPU cores | CPU s / 100k pkt | pkt/s per server core | UDP rcvbuf errors |"
    echo "|---|---|---|---|---|---|"
    jq -r '["all reading", .all_reading], ["\(.stalled_subscribers) frozen", .stalled_frozen]
      | "| \(.[0]) | \(.[1].forwarded_per_s|floor) | \(.[1].server_cpu_cores*100|floor/100) | \(.[1].server_cpu_s_per_100k_packets*100|floor/100) | \(.[1].packets_per_s_per_server_core|floor) | \(.[1].udp_rcvbuf_errors) |"' "$OUT/isolation.json"
    echo
    jq -r '"healthy: \(.healthy_side.subscriptions) subscriptions, \(.healthy_side.lost) of \(.healthy_side.expected) packets lost; frozen: " +
      (if .stalled_side then "\(.stalled_side.lost) of \(.stalled_side.expected) lost" else "no summary" end)' "$OUT/isolation.json"
  } >"$OUT/isolation.md"
  cat "$OUT/isolation.md"
}

bench_codecs() {
  BENCH_OUT="$OUT" cargo bench --bench codecs | tee "$OUT/codecs.md"
}

[[ $# -gt 0 ]] || set -- all
for b in "$@"; do
  case $b in
    latency) bench_latency ;;
    join) bench_join ;;
    fanout) bench_fanout ;;
    meeting) bench_meeting ;;
    isolation) bench_isolation ;;
    codecs) bench_codecs ;;
    all) bench_codecs; bench_latency; bench_join; bench_fanout; bench_meeting; bench_isolation ;;
    *) echo "unknown benchmark $b" >&2; exit 2 ;;
  esac
done
