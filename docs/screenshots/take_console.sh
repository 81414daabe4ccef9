#!/usr/bin/env bash
# Takes the README's broadcast-console screenshots under Xvfb (as take.sh):
#
#   cargo build --bin huddle && bash docs/screenshots/take_console.sh
#
# `huddle serve` on 127.0.0.1:7992, three publishing bots (synthetic pattern)
# in room "show", then `huddle --console` as the host (an app key: it signs a
# director signature itself). xdotool clicks a source to put it on air, then
# the 2×2 layout and three sources. Writes console.png (1280×720, one source
# on air), console-quad.png (2×2), console-small.png (800×600) and
# kiosk-program.png (a kiosk in the same room showing the 2×2 program).
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=7992
source docs/screenshots/common.sh
cat >"$XDG_CONFIG_HOME/huddle/settings.json" <<JSON
{"server": "$SERVER", "app_id": "shots", "room": "show", "user_id": "host",
 "user_name": "Host", "join_mic_off": true}
JSON

"$BIN" bot --server "$SERVER" --room show --user camera --count 3 --publish --tone 0 \
  "${CREDS[@]}" >"$TMP/bots.log" 2>&1 &
PIDS+=($!)

shot() { # name seconds
  sleep "$2"
  import -window root "$OUT/$1.png"
  echo "wrote $OUT/$1.png"
}

click() { # x y
  xdotool mousemove "$1" "$2" click 1
  sleep 1
}

console() { # size
  "$BIN" --console --window-size "$1" --server "$SERVER" --room show --user host \
    --name Host "${CREDS[@]}" >"$TMP/console.log" 2>&1 &
  APP=$!
  PIDS+=($APP)
}

# Sources sit in the strip along the bottom, 128 px wide with 8 px between.
SOURCE_Y=${SOURCE_Y:-618}
source_x() { echo $((72 + ($1 - 1) * 136)); }

console 1280x720
sleep 12
click "$(source_x 1)" "$SOURCE_Y"
shot console 3
click "${QUAD_X:-355}" "${QUAD_Y:-16}"
for n in 1 2 3; do click "$(source_x "$n")" "$SOURCE_Y"; done
shot console-quad 3
kill "$APP"

"$BIN" --kiosk --server "$SERVER" --room show --user screen "${CREDS[@]}" \
  >"$TMP/kiosk.log" 2>&1 &
KIOSK=$!
PIDS+=($KIOSK)
shot kiosk-program 12
kill "$KIOSK"

console 800x600
shot console-small 18
convert "$OUT/console-small.png" -crop 800x600+0+0 +repage "$OUT/console-small.png"
kill "$APP"
