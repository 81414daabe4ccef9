#!/usr/bin/env bash
# Takes the README's stream-debugger screenshots under Xvfb (as take.sh does):
#
#   cargo build --bin huddle && bash docs/screenshots/debugger.sh
#
# `huddle serve` on 127.0.0.1:7993, three publishing bots, and the app with
# `--debug --record-debug FILE` at 1280x720: debugger-plots.png, then the
# Signalling tab with a frame opened (debugger-signalling.png) and the Links
# tab (debugger-links.png), the Timeline tab with a frame clicked
# (debugger-timeline.png), clicked with xdotool (Debian `xdotool`). Then the
# same room in an 800x500 window (debugger-small.png) and the recorded file
# opened with `huddle inspect FILE` at 800x500 (debugger-inspect-small.png),
# its Timeline tab with a frame clicked (debugger-timeline-small.png).
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=7993
source docs/screenshots/common.sh
cat >"$XDG_CONFIG_HOME/huddle/settings.json" <<JSON
{"server": "$SERVER", "app_id": "shots", "room": "team", "user_id": "ada",
 "user_name": "Ada Lovelace", "join_mic_off": true}
JSON

"$BIN" bot --server "$SERVER" --room team --user cam --count 3 --publish --tone 440 \
  "${CREDS[@]}" >"$TMP/bot.log" 2>&1 &
PIDS+=($!)

app() { # size extra args...
  local size=$1; shift
  "$BIN" --window-size "$size" "$@" >"$TMP/app.log" 2>&1 &
  APP=$!
  PIDS+=($APP)
}
window() { xdotool search --sync --pid "$APP" | tail -1; }
shot() { # name seconds
  sleep "$2"
  import -window "$(window)" "$OUT/$1.png"
  echo "wrote $OUT/$1.png"
}
click() { # x y (in the window)
  xdotool mousemove --window "$(window)" "$1" "$2" click 1
}
point_click() { # x y: move there, press, hold, release (a burst click is lost
  # by the busy app on a painted canvas)
  xdotool mousemove --window "$(window)" "$1" "$2"
  sleep 1
  xdotool mousedown 1
  sleep 0.3
  xdotool mouseup 1
}

app 1280x720 --server "$SERVER" --room team --user ada --name "Ada Lovelace" "${CREDS[@]}" \
  --debug --record-debug "$TMP/session.json"
shot debugger-plots 25
# Tab positions in a 1280x720 window: the panel takes the right half.
# The app is slow under Xvfb on a busy machine: a few seconds per click.
click "${SIGNALLING_TAB:-920}" 12
sleep 6
click 800 90 # a row of the log
xdotool mousemove 0 0
shot debugger-signalling 8
click "${LINKS_TAB:-1000}" 12
shot debugger-links 8
click "${TIMELINE_TAB:-843}" 12
sleep 6
point_click "${TIMELINE_MARK_X:-1150}" "${TIMELINE_MARK_Y:-250}" # a frame near the right edge
click "${TIMELINE_PAUSE:-1065}" 67 # Pause, so the clicked frame stays in view
xdotool mousemove 0 0
shot debugger-timeline 8
sleep 5 # one more --record-debug write
cp "$TMP/session.json" "$TMP/inspect.json"
kill "$APP"

app 800x500 --server "$SERVER" --room team --user ada --name "Ada Lovelace" "${CREDS[@]}" --debug
shot debugger-small 20
kill "$APP"

APP_ARGS=(inspect "$TMP/inspect.json" --window-size 800x500)
"$BIN" "${APP_ARGS[@]}" >"$TMP/inspect.log" 2>&1 &
APP=$!
PIDS+=($APP)
shot debugger-inspect-small 6
click "${INSPECT_TIMELINE_TAB:-175}" 12
sleep 4
point_click "${INSPECT_MARK_X:-400}" "${INSPECT_MARK_Y:-300}" # a frame in the middle
xdotool mousemove 0 0
shot debugger-timeline-small 6
kill "$APP"
