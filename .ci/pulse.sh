#!/usr/bin/env bash
# Installs (if missing) and starts a PulseAudio user daemon with a null sink
# as the default sink, for the `devices` tests (tests/README.md).
#
# Source it so the exports reach your shell or the test run:
#     source .ci/pulse.sh
# Idempotent: a running daemon is reused and the null sink is loaded once.
# Exports XDG_RUNTIME_DIR (where the daemon puts its socket, pulse/native) and
# PULSE_SERVER (unix:<socket>), which cpal's pure-Rust PulseAudio host reads.
# Never fails the caller: without PulseAudio the device tests skip themselves,
# or, on CI (`CI` set), fail saying what is missing (tests/README.md).

huddle_pulse_setup() {
    local sink=huddle_null
    if ! command -v pulseaudio >/dev/null 2>&1 || ! command -v pactl >/dev/null 2>&1; then
        echo "pulse.sh: installing pulseaudio"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq || return 1
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq pulseaudio pulseaudio-utils >/dev/null || return 1
    fi

    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}"
    mkdir -p "$XDG_RUNTIME_DIR"
    chmod 700 "$XDG_RUNTIME_DIR"
    export PULSE_SERVER="unix:$XDG_RUNTIME_DIR/pulse/native"

    if ! pactl info >/dev/null 2>&1; then
        # --system=false: a per-user daemon even as root; no idle exit, so it
        # outlives the shell that started it (CI steps run one after another).
        pulseaudio -D --system=false --exit-idle-time=-1 --disallow-exit \
            --log-target=stderr >/dev/null 2>&1 || true
        local i
        for i in $(seq 1 50); do
            pactl info >/dev/null 2>&1 && break
            sleep 0.1
        done
    fi
    if ! pactl info >/dev/null 2>&1; then
        echo "pulse.sh: PulseAudio did not start; device tests will skip (fail on CI)" >&2
        return 1
    fi

    if ! pactl list short sinks | awk '{print $2}' | grep -qx "$sink"; then
        pactl load-module module-null-sink sink_name="$sink" \
            sink_properties=device.description=HuddleNull >/dev/null || return 1
    fi
    pactl set-default-sink "$sink"
    pactl set-default-source "$sink.monitor"
    echo "pulse.sh: PulseAudio up at $PULSE_SERVER, default sink $sink"
}

huddle_pulse_setup || true
unset -f huddle_pulse_setup
