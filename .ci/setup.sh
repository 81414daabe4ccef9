#!/usr/bin/env bash
# Installs what building huddle needs on Debian 12, when it is missing.
# Sourced by .ci/run and .ci/start; safe to run again.
set -euo pipefail

# iproute2, nftables and ethtool are for the impairment harness
# (benches/impair.sh, tests/impaired_network_namespaces.rs).
# The second line is for the GUI tests (tests/README.md): the app under Xvfb
# needs Vulkan (lavapipe) and the X libraries winit loads at run time
# (libX11, libXcursor, libXi, libX11-xcb, libxkbcommon-x11); ImageMagick takes
# the screenshots. `prometheus` brings `promtool`, which checks /metrics;
# `ffmpeg` makes the MP3/FLAC/Ogg/AAC files the audio-mixing test decodes.
# `chromium` runs the web client in a real browser (headless, over CDP) and
# `openssl` makes the README's self-signed certificate (tests/tls.rs).
# coturn (turnserver) and nginx are started by the TURN and TLS-proxy tests
# (tests/turn_and_public_address.rs, tests/signalling_through_a_tls_proxy.rs)
# with their own configs. nftables and iproute2: benches/blackout.sh
# (network namespaces, a veth pair and a drop table).
# GStreamer (webrtcbin, libnice, x264, Opus, openh264) and python3-gi run the
# independent WHIP/WHEP client of tests/whip_whep.rs
# (tests/scripts/gst_whip_whep.py, with Debian's /usr/bin/python3).
# redis-server: the several-nodes tests start one on a loopback port
# (tests/common/redis.rs, tests/several_nodes.rs).
APT_PACKAGES=(cmake nasm libclang1-14 libasound2-dev pkg-config build-essential curl ca-certificates
    xvfb mesa-vulkan-drivers libvulkan1 imagemagick libxkbcommon-x11-0 libxcursor1 libxi6 jq
    musl-tools prometheus ffmpeg chromium openssl coturn nginx iproute2 nftables ethtool
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-nice python3-gi gir1.2-gstreamer-1.0
    gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 xdotool
    redis-server)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "installing the Rust toolchain (rustup)"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi

# eframe 0.37 needs Rust 1.95.
need="1.95"
have="$(rustc --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
    if command -v rustup >/dev/null 2>&1; then
        rustup toolchain install stable --profile minimal
        rustup default stable
    else
        echo "rustc $have is older than $need and rustup is not available" >&2
        exit 1
    fi
fi

# openh264 silently builds without assembly (4x slower) when nasm was missing at
# its first build; rebuild it if an old build predates nasm.
if [ -d target ] && [ -n "${missing[*]:-}" ] && printf '%s\n' "${missing[@]:-}" | grep -qx nasm; then
    cargo clean -p openh264-sys2 >/dev/null 2>&1 || true
fi
