#!/usr/bin/python3
"""An independent WHIP publisher and WHEP player: GStreamer's webrtcbin,
driven from Python, speaking plain HTTP (urllib) to the server. Used by
tests/whip_whep.rs; written from docs/protocol.md (WHIP/WHEP section) and
RFC 9725, not from huddle's code.

    gst_whip_whep.py publish URL BEARER SECONDS
        videotestsrc -> x264enc (constrained baseline, packetization-mode 1)
        and audiotestsrc (440 Hz) -> opusenc, offered to URL; publishes for
        SECONDS, then DELETEs the resource.
    gst_whip_whep.py play URL BEARER SECONDS
        offers recvonly H.264 + Opus to URL, decodes what comes for up to
        SECONDS (or until 60 video frames and 1 s of audio), then DELETEs.

Each prints one JSON line per event on stdout: {"event": "created",
"location": ...}, {"event": "stats", ...}, {"event": "deleted", "status": N}
or {"event": "error", "status": N, "body": ...}. No STUN server, no trickle:
the offer goes out once ICE gathering is complete, with host candidates
on 127.0.0.1 only.
"""

import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

# x264's constrained baseline SPS says profile-level-id 42c0xx; the server
# (like browsers) matches 42e0xx, which decodes the same stream. capssetter
# only changes what the SDP says.
PUBLISH = """
webrtcbin name=w bundle-policy=max-bundle
videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1
 ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bframes=0
 ! video/x-h264,profile=constrained-baseline ! h264parse
 ! rtph264pay config-interval=-1 pt=96 aggregate-mode=zero-latency
 ! capssetter caps="application/x-rtp,profile-level-id=(string)42e01f,packetization-mode=(string)1"
 ! application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 ! w.
audiotestsrc is-live=true wave=sine freq=440 volume=0.5 ! audioconvert ! audioresample
 ! audio/x-raw,rate=48000,channels=2 ! opusenc ! rtpopuspay pt=111
 ! application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! w.
"""

VIDEO_CAPS = (
    "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
    "packetization-mode=(string)1,profile-level-id=(string)42e01f"
)
AUDIO_CAPS = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"


def say(**event):
    print(json.dumps(event), flush=True)


class Endpoint:
    def __init__(self, mode, url, bearer, seconds):
        self.mode = mode
        self.url = url
        self.bearer = bearer
        self.seconds = seconds
        self.location = None
        self.loop = GLib.MainLoop()
        self.video_frames = 0
        self.audio_samples = 0
        self.audio_peak = 0.0
        self.lock = threading.Lock()
        self.failed = False
        if mode == "publish":
            self.pipe = Gst.parse_launch(PUBLISH)
            self.webrtc = self.pipe.get_by_name("w")
        else:
            self.pipe = Gst.Pipeline.new("play")
            self.webrtc = Gst.ElementFactory.make("webrtcbin", "w")
            self.webrtc.set_property("bundle-policy", "max-bundle")
            self.pipe.add(self.webrtc)
            for caps in (VIDEO_CAPS, AUDIO_CAPS):
                self.webrtc.emit(
                    "add-transceiver",
                    GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                    Gst.Caps.from_string(caps),
                )
            self.webrtc.connect("pad-added", self.on_pad)
        # Loopback only: libnice pins each socket to its interface
        # (IP_UNICAST_IF), so a candidate on eth0 cannot reach the server's
        # 127.0.0.1; and nothing here should leave the machine.
        # (Held: PyGObject drops one reference too many on this property.)
        self.ice = self.webrtc.get_property("ice-agent")
        self.ice.emit("add-local-ip-address", "127.0.0.1")
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::ice-connection-state", self.on_ice_state)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)

    # --- negotiation -----------------------------------------------------

    def on_negotiation_needed(self, _webrtc):
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        self.webrtc.emit("create-offer", None, promise)

    def on_offer(self, promise, _data):
        reply = promise.get_reply()
        offer = reply.get_value("offer")
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def on_gathering(self, webrtc, _pspec):
        state = webrtc.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and self.location is None:
            GLib.idle_add(self.post_offer)

    def post_offer(self):
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        print("--- offer ---\n" + sdp, file=sys.stderr, flush=True)
        request = urllib.request.Request(
            self.url,
            data=sdp.encode(),
            method="POST",
            headers={
                "Content-Type": "application/sdp",
                "Authorization": "Bearer " + self.bearer,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
                location = response.headers.get("Location")
                content_type = response.headers.get("Content-Type")
                answer = response.read().decode()
        except urllib.error.HTTPError as e:
            say(event="error", status=e.code, body=e.read().decode(errors="replace"))
            self.failed = True
            self.loop.quit()
            return False
        print("--- answer ---\n" + answer, file=sys.stderr, flush=True)
        self.location = urllib.parse.urljoin(self.url, location)
        say(event="created", status=status, location=location, content_type=content_type)
        _, message = GstSdp.SDPMessage.new_from_text(answer)
        description = GstWebRTC.WebRTCSessionDescription.new(
            GstWebRTC.WebRTCSDPType.ANSWER, message
        )
        self.webrtc.emit("set-remote-description", description, Gst.Promise.new())
        GLib.timeout_add(int(self.seconds * 1000), self.finish)
        if self.mode == "play":
            GLib.timeout_add(200, self.check_done)
        return False

    def on_ice_state(self, webrtc, _pspec):
        say(event="ice", state=webrtc.get_property("ice-connection-state").value_nick)

    # --- playing ---------------------------------------------------------

    def on_pad(self, _webrtc, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self.on_decoded_pad)
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def on_decoded_pad(self, _decodebin, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        if name.startswith("video/"):
            chain = ["videoconvert", "fakesink"]
            counter = self.count_video
        elif name.startswith("audio/"):
            chain = ["audioconvert", "capsfilter", "fakesink"]
            counter = self.count_audio
        else:
            return
        elements = [Gst.ElementFactory.make(n) for n in chain]
        if chain[1] == "capsfilter":
            elements[1].set_property(
                "caps", Gst.Caps.from_string("audio/x-raw,format=S16LE")
            )
        sink = elements[-1]
        sink.set_property("sync", False)
        sink.set_property("signal-handoffs", True)
        sink.connect("handoff", counter)
        for e in elements:
            self.pipe.add(e)
            e.sync_state_with_parent()
        for a, b in zip(elements, elements[1:]):
            a.link(b)
        pad.link(elements[0].get_static_pad("sink"))

    def count_video(self, _sink, _buffer, _pad):
        with self.lock:
            self.video_frames += 1

    def count_audio(self, _sink, buffer, _pad):
        ok, info = buffer.map(Gst.MapFlags.READ)
        if not ok:
            return
        data = info.data
        samples = len(data) // 2
        peak = 0
        for i in range(0, len(data) - 1, 16):
            v = abs(int.from_bytes(data[i : i + 2], "little", signed=True))
            peak = max(peak, v)
        buffer.unmap(info)
        with self.lock:
            self.audio_samples += samples
            self.audio_peak = max(self.audio_peak, peak / 32768.0)

    def check_done(self):
        with self.lock:
            done = self.video_frames >= 60 and self.audio_samples >= 2 * 48000
        if done:
            self.finish()
            return False
        return True

    # --- the end ---------------------------------------------------------

    def finish(self):
        if self.mode == "play":
            with self.lock:
                say(
                    event="stats",
                    video_frames=self.video_frames,
                    audio_samples=self.audio_samples,
                    audio_peak=self.audio_peak,
                )
        request = urllib.request.Request(
            self.location,
            method="DELETE",
            headers={"Authorization": "Bearer " + self.bearer},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                say(event="deleted", status=response.status)
        except urllib.error.HTTPError as e:
            say(event="error", status=e.code, body=e.read().decode(errors="replace"))
            self.failed = True
        self.loop.quit()
        return False

    def on_error(self, _bus, message):
        error, debug = message.parse_error()
        say(event="gst-error", message=str(error), debug=str(debug))
        self.failed = True
        self.loop.quit()

    def run(self):
        self.pipe.set_state(Gst.State.PLAYING)
        # A hard stop, whatever happens.
        GLib.timeout_add(int((self.seconds + 30) * 1000), self.loop.quit)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return 1 if self.failed else 0


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("publish", "play"):
        print(__doc__, file=sys.stderr)
        return 2
    Gst.init(None)
    mode, url, bearer, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    return Endpoint(mode, url, bearer, seconds).run()


if __name__ == "__main__":
    sys.exit(main())
