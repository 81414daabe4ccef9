#!/usr/bin/env bash
# Takes the README's screenshots of the desktop app under Xvfb (the same
# approach as tests/gui: a private X display, lavapipe for wgpu, `import`).
#
#   cargo build --bin huddle && bash docs/screenshots/take.sh
#
# Starts `huddle serve` on 127.0.0.1:7991, publishing bots (`huddle bot`,
# the synthetic test pattern and tone) and the app as "Ada Lovelace", and
# writes lobby.png, grid-4.png, participants.png (3x3 grid) and speaker.png
# into docs/screenshots/. The layout and the participants panel are chosen
# through the app's remembered settings (settings.json), as a user's are.
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=7991
source docs/screenshots/common.sh

settings() { # layout participants_open
  cat >"$XDG_CONFIG_HOME/huddle/settings.json" <<JSON
{"server": "$SERVER", "app_id": "shots", "room": "team", "user_id": "ada",
 "user_name": "Ada Lovelace", "layout": "$1", "participants_open": $2,
 "join_mic_off": true}
JSON
}

app() { # extra args...
  "$BIN" --window-size 1280x720 "$@" >"$TMP/app.log" 2>&1 &
  APP=$!
  PIDS+=($APP)
}

shot() { # name seconds
  sleep "$2"
  import -window root "$OUT/$1.png"
  echo "wrote $OUT/$1.png"
}

bots() { # user count tone (0 Hz: silent)
  "$BIN" bot --server "$SERVER" --room team --user "$1" --count "$2" --publish \
    --tone "$3" "${CREDS[@]}" >"$TMP/bot-$1.log" 2>&1 &
  PIDS+=($!)
}

# The lobby, filled in as a returning user finds it.
settings grid false
app --lobby
shot lobby 6
kill "$APP"

# Three others: a 2x2 grid. One speaks (a 440 Hz tone), the rest are silent;
# Ada joins with her microphone off (her synthetic tone would speak too).
bots speaker 1 440
bots guest 2 0
settings grid false
app --server "$SERVER" --room team --user ada --name "Ada Lovelace" "${CREDS[@]}"
shot grid-4 12
kill "$APP"

# Eight others: 3x3, the participants panel open.
bots crew 5 0
settings grid true
app --server "$SERVER" --room team --user ada --name "Ada Lovelace" "${CREDS[@]}"
shot participants 14
kill "$APP"

# The active-speaker layout.
settings speaker false
app --server "$SERVER" --room team --user ada --name "Ada Lovelace" "${CREDS[@]}"
shot speaker 14
kill "$APP"
