# Sourced (from the repository root) by the screenshot scripts in this
# folder, after they set PORT: a private X display (Xvfb, lavapipe for
# wgpu), XDG dirs in a temporary directory, `huddle serve` on
# 127.0.0.1:$PORT with the "shots" app, and the cleanup of everything the
# script starts (it adds each pid to PIDS). OUT (default docs/screenshots)
# is where the pictures go.
BIN=${HUDDLE_BIN:-${CARGO_TARGET_DIR:-target}/debug/huddle}
OUT=${OUT:-docs/screenshots}
SERVER=ws://127.0.0.1:$PORT
CREDS=(--app-id shots --app-key shots-key)
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

Xvfb -displayfd 3 -screen 0 1280x720x24 -nolisten tcp 3>"$TMP/display" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$TMP/display")"
export XDG_RUNTIME_DIR=$TMP/run XDG_CONFIG_HOME=$TMP/config
mkdir -p "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME/huddle"
chmod 700 "$XDG_RUNTIME_DIR"

"$BIN" serve --listen 127.0.0.1:"$PORT" "${CREDS[@]}" >"$TMP/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q "listening on" "$TMP/serve.log" && break; sleep 0.1; done
