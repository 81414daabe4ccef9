//! Issue 13 §3: WHIP (RFC 9725) and WHEP. An independent client, GStreamer's
//! webrtcbin driven from Python (`tests/scripts/gst_whip_whep.py`), publishes
//! H.264 + Opus into a room over WHIP and a native client decodes its video
//! and hears its tone; it plays a native bot's stream over WHEP and decodes
//! it. Every bad input gets its HTTP status and numbered error while the
//! room's media carries on.
#![cfg(feature = "client")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use common::*;
use huddle::client::{RemoteStream, RoomEvent, SubscribeOptions};
use huddle::media::dominant_frequency;
use huddle::protocol::{LeaveReason, StreamId};
use huddle::server::ServerConfig;

const TOKEN: &str = "whip-test-token";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/scripts/gst_whip_whep.py"
);
/// How long the GStreamer publisher runs before it DELETEs its resource:
/// room for a slow CI machine to subscribe and decode before it goes.
const PUBLISH_SECONDS: u32 = 25;
/// Debian's interpreter: python3-gi is installed for it, not for others on PATH.
const PYTHON: &str = "/usr/bin/python3";

// ---------------------------------------------------------------- HTTP

/// A reply as it came over the socket.
#[derive(Debug)]
struct HttpReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The seed code of an error body.
    fn code(&self) -> u32 {
        let body: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {self:?}"));
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "errors carry a message: {self:?}"
        );
        body["code"].as_u64().expect("a numeric code") as u32
    }
}

/// One HTTP/1.1 request over a fresh TCP connection to the test server.
async fn http(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    http_bytes(server, method, path, headers, body.as_bytes()).await
}

fn trickle_headers(auth: &str) -> [(&str, &str); 2] {
    [
        ("Content-Type", "application/trickle-ice-sdpfrag"),
        ("Authorization", auth),
    ]
}

/// [`http`] with any body.
async fn http_bytes(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    http_at(
        server.url.trim_start_matches("ws://"),
        method,
        path,
        headers,
        body,
    )
    .await
}

/// One request to the server at `addr` (`host:port`).
async fn http_at(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    tcp.write_all(&request).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut raw))
        .await
        .expect("reply within 15 s")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a reply head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpReply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A join signature for `user` in `room`, valid for an hour: (ctime, signature).
fn signature(room: &str, user: &str) -> (u64, String) {
    let ctime = huddle::auth::now_unix() + 3600;
    (
        ctime,
        huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime),
    )
}

async fn start() -> TestServer {
    let mut config = ServerConfig::new(test_apps());
    config.signature_token = Some(TOKEN.into());
    start_server_with(config).await
}

// ------------------------------------------------------------- GStreamer

/// Whether GStreamer's webrtcbin, x264, Opus, libnice and python3-gi are
/// there; the reason they are not otherwise.
fn gstreamer_missing() -> Option<String> {
    let check = std::process::Command::new(PYTHON)
        .args([
            "-c",
            "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0'); \
             gi.require_version('GstSdp', '1.0'); from gi.repository import Gst, GstWebRTC, GstSdp; \
             Gst.init(None); \
             missing = [e for e in ('webrtcbin', 'nicesrc', 'x264enc', 'opusenc', 'opusdec', \
             'rtph264pay', 'rtph264depay', 'openh264dec', 'capssetter', 'videotestsrc') \
             if Gst.ElementFactory.find(e) is None]; \
             print(' '.join(missing))",
        ])
        .output();
    match check {
        Err(e) => Some(format!("{PYTHON}: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "python3-gi / GStreamer introspection: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(out) => {
            let missing = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (!missing.is_empty()).then(|| format!("GStreamer elements missing: {missing}"))
        }
    }
}

/// The running script and the JSON lines it prints.
struct Script {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Script {
    fn start(mode: &str, url: &str, bearer: &str, seconds: u32) -> Self {
        let mut child = tokio::process::Command::new(PYTHON)
            .args([SCRIPT, mode, url, bearer, &seconds.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the GStreamer script");
        let stdout = child.stdout.take().expect("stdout");
        // Unbounded: a few dozen lines in a test.
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                eprintln!("[gst] {line}");
                if let Ok(value) = serde_json::from_str(&line) {
                    tx.send(value).ok(); // the test has ended
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the event named `name`; panics on an error event first.
    async fn event(&mut self, name: &str, timeout: Duration) -> serde_json::Value {
        if let Some(seen) = self.seen.iter().find(|v| v["event"] == name) {
            return seen.clone();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no {name:?} from the script within {timeout:?}"))
                .unwrap_or_else(|| panic!("the script ended before {name:?}: {:?}", self.seen));
            self.seen.push(line.clone());
            assert!(
                line["event"] != "error" && line["event"] != "gst-error",
                "the script failed: {line}"
            );
            if line["event"] == name {
                return line;
            }
        }
    }

    async fn exit_ok(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the script ends")
            .expect("wait");
        assert!(status.success(), "the script failed: {status}");
    }
}

/// Collects decoded video and audio of `remote` until 30 frames and 1.5 s
/// of audio came; returns the audio's dominant frequency.
async fn decode(remote: &RemoteStream, what: &str) -> f32 {
    let mut pcm: Vec<i16> = Vec::new();
    let mut sample_rate = 48_000;
    wait_for(Duration::from_secs(20), what, || {
        while let Ok(frame) = remote.audio().try_recv() {
            sample_rate = frame.sample_rate;
            pcm.extend_from_slice(&frame.samples);
        }
        let stats = remote.stats();
        (stats.frames_decoded >= 30 && pcm.len() >= sample_rate as usize * 3 / 2).then_some(())
    })
    .await;
    let start = sample_rate as usize / 2;
    let window = &pcm[start..start + sample_rate as usize];
    dominant_frequency(window, 1, sample_rate).expect("a tone")
}

// ----------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_publishes_over_whip_and_a_native_client_decodes_it() {
    if let Some(reason) = gstreamer_missing() {
        skip(
            "gstreamer_publishes_over_whip_and_a_native_client_decodes_it",
            &reason,
        );
        return;
    }

    let server = start().await;
    let (bob, _) = join(&server, "room-whip", "bob").await;
    let addr = server.url.trim_start_matches("ws://");
    // A join signature as `/signature` issues it, the join fields in the query.
    let (ctime, sig) = signature("room-whip", "gst");
    let url = format!("http://{addr}/whip/room-whip?userid=gst&ctime={ctime}&username=GStreamer");
    let mut script = Script::start("publish", &url, &sig, PUBLISH_SECONDS);

    let created = script.event("created", Duration::from_secs(20)).await;
    assert_eq!(created["status"], 201);
    assert_eq!(created["content_type"], "application/sdp");
    let location = created["location"].as_str().expect("Location").to_owned();
    assert!(location.starts_with("/whip/room-whip/"), "{location}");

    let joined = peer_joined(&bob).await;
    assert_eq!(joined.user_id.as_str(), "gst");
    assert_eq!(joined.user_name, "GStreamer");
    let added = stream_added(&bob).await;
    assert_eq!(added.user_id.as_str(), "gst");
    assert!(added.audio && added.video.is_some(), "{added:?}");

    let remote = bob
        .subscribe(added.stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    let freq = decode(&remote, "30 frames and 1.5 s of audio from GStreamer").await;
    assert!((freq - 440.0).abs() <= 5.0, "heard {freq} Hz, sent 440 Hz");
    assert_eq!(
        remote.stats().last_size,
        Some((320, 240)),
        "decoded at GStreamer's size"
    );

    // The script DELETEs its resource after PUBLISH_SECONDS: the room sees the
    // stream go and the member leave (reason 0).
    let deleted = script
        .event(
            "deleted",
            Duration::from_secs(u64::from(PUBLISH_SECONDS) + 20),
        )
        .await;
    assert_eq!(deleted["status"], 200);
    let removed = stream_removed(&bob).await;
    assert_eq!(removed, added.stream_id);
    let left = peer_left(&bob).await;
    assert_eq!(left.0.as_str(), "gst");
    assert_eq!(left.1, LeaveReason::UserExit);
    script.exit_ok().await;
    bob.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gstreamer_plays_a_native_stream_over_whep() {
    if let Some(reason) = gstreamer_missing() {
        skip("gstreamer_plays_a_native_stream_over_whep", &reason);
        return;
    }
    let server = start().await;
    let (alice, _) = join(&server, "room-whep", "alice").await;
    let stream_id = alice.publish(synthetic(523.0)).await.expect("publish");
    let addr = server.url.trim_start_matches("ws://");
    // The server's signature token as the bearer: no signature needed.
    // GStreamer 1.22's DTLS has AES-CM SRTP only: ask for it.
    let url = format!("http://{addr}/whep/room-whep/{stream_id}?userid=viewer&srtp=aes-cm");
    let mut script = Script::start("play", &url, TOKEN, 20);

    let created = script.event("created", Duration::from_secs(20)).await;
    assert_eq!(created["status"], 201);
    assert_eq!(created["content_type"], "application/sdp");
    let joined = peer_joined(&alice).await;
    assert_eq!(joined.user_id.as_str(), "viewer");
    assert_eq!(joined.role, huddle::protocol::Role::Player);

    let stats = script.event("stats", Duration::from_secs(40)).await;
    let frames = stats["video_frames"].as_u64().expect("frames");
    let samples = stats["audio_samples"].as_u64().expect("samples");
    let peak = stats["audio_peak"].as_f64().expect("peak");
    assert!(frames >= 30, "GStreamer decoded {frames} video frames");
    assert!(
        samples >= 48_000,
        "GStreamer decoded {samples} audio samples"
    );
    assert!(peak > 0.01, "GStreamer heard silence (peak {peak})");

    let deleted = script.event("deleted", Duration::from_secs(10)).await;
    assert_eq!(deleted["status"], 200);
    let left = peer_left(&alice).await;
    assert_eq!(left.0.as_str(), "viewer");
    assert_eq!(left.1, LeaveReason::UserExit);
    script.exit_ok().await;
    alice.leave().await.expect("leave");
}

/// A publish offer with only VP8 video (a browser without H.264).
fn vp8_only(offer: &str) -> String {
    let mut out = String::new();
    let mut in_video = false;
    for line in offer.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
            if in_video {
                let head: Vec<&str> = line.split(' ').take(3).collect();
                out.push_str(&format!("{} 96\r\n", head.join(" ")));
                out.push_str("a=rtpmap:96 VP8/90000\r\n");
                continue;
            }
        }
        if in_video
            && (line.starts_with("a=rtpmap")
                || line.starts_with("a=fmtp")
                || line.starts_with("a=rtcp-fb"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_whip_and_whep_requests_get_numbered_errors_and_the_room_carries_on() {
    let server = start().await;
    let (alice, _) = join(&server, "room-bad", "alice").await;
    let (bob, _) = join(&server, "room-bad", "bob").await;
    let stream_id = alice.publish(synthetic(523.0)).await.expect("publish");
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(15), "bob decodes alice", || {
        (remote.stats().frames_decoded >= 10).then_some(())
    })
    .await;
    while bob.events().try_recv().is_ok() {}

    let (link, offer) = publish_offer(true, true).await;
    let sdp = [("Content-Type", "application/sdp")];
    let auth = bearer(TOKEN);
    let with_auth = [
        ("Content-Type", "application/sdp"),
        ("Authorization", auth.as_str()),
    ];
    let whip = "/whip/room-bad?userid=carol";

    // No Authorization, another scheme, a wrong token or signature.
    for headers in [
        &sdp[..],
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", "Basic dXNlcjpwdw=="),
        ][..],
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", "Bearer not-the-token"),
        ][..],
    ] {
        let reply = http(&server, "POST", whip, headers, &offer).await;
        assert_eq!(reply.status, 401, "{reply:?}");
        assert_eq!(reply.code(), 90100031, "{reply:?}");
        assert_eq!(reply.header("WWW-Authenticate"), Some("Bearer"));
    }
    // A signature for another user, an expired one, one without ctime.
    let (ctime, sig) = signature("room-bad", "dave");
    let sig_auth = bearer(&sig);
    let sig_headers = [
        ("Content-Type", "application/sdp"),
        ("Authorization", sig_auth.as_str()),
    ];
    let reply = http(
        &server,
        "POST",
        &format!("/whip/room-bad?userid=carol&ctime={ctime}"),
        &sig_headers,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (401, 90100031), "{reply:?}");
    let old = huddle::auth::now_unix() - 10;
    let expired = bearer(&huddle::auth::sign(
        APP_KEY, APP_ID, "room-bad", "dave", old,
    ));
    let reply = http(
        &server,
        "POST",
        &format!("/whip/room-bad?userid=dave&ctime={old}"),
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", expired.as_str()),
        ],
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (401, 90100030), "{reply:?}");
    let reply = http(
        &server,
        "POST",
        "/whip/room-bad?userid=dave",
        &sig_headers,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (401, 90100031), "{reply:?}");
    // An unknown app, a bad room id.
    let reply = http(
        &server,
        "POST",
        "/whip/room-bad?userid=carol&appid=nope",
        &with_auth,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (401, 90100031), "{reply:?}");
    let reply = http(
        &server,
        "POST",
        "/whip/room.bad?userid=carol",
        &with_auth,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, 90000005), "{reply:?}");
    // A player may not publish (the seed's role check).
    let reply = http(
        &server,
        "POST",
        "/whip/room-bad?userid=carol&role=2",
        &with_auth,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (403, 90100022), "{reply:?}");
    // Not SDP, not an SDP, no H.264.
    let reply = http(
        &server,
        "POST",
        whip,
        &[
            ("Content-Type", "text/plain"),
            ("Authorization", auth.as_str()),
        ],
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (415, 90000005), "{reply:?}");
    let reply = http(
        &server,
        "POST",
        whip,
        &with_auth,
        "v=0\r\nthis is not sdp\r\n",
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, 90100214), "{reply:?}");
    let reply = http(&server, "POST", whip, &with_auth, &vp8_only(&offer)).await;
    assert_eq!((reply.status, reply.code()), (400, 90100214), "{reply:?}");
    assert!(
        reply.body.contains("H264"),
        "names what is required: {reply:?}"
    );

    // WHEP: unknown room, unknown stream, not a stream id, a publish offer
    // (sendonly: it cannot receive), playing one's own stream.
    let reply = http(
        &server,
        "POST",
        &format!("/whep/nowhere/{stream_id}"),
        &with_auth,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (404, 90100227), "{reply:?}");
    let reply = http(&server, "POST", "/whep/room-bad/999999", &with_auth, &offer).await;
    assert_eq!((reply.status, reply.code()), (404, 90100213), "{reply:?}");
    let reply = http(&server, "POST", "/whep/room-bad/abc", &with_auth, &offer).await;
    assert_eq!((reply.status, reply.code()), (404, 90100213), "{reply:?}");
    let reply = http(
        &server,
        "POST",
        &format!("/whep/room-bad/{stream_id}"),
        &with_auth,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, 90000005), "{reply:?}");
    assert!(reply.body.contains("recvonly"), "{reply:?}");
    let reply = http(
        &server,
        "POST",
        &format!("/whep/room-bad/{stream_id}?userid=alice"),
        &with_auth,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (409, 90100001), "{reply:?}");

    // Query values out of range, a body too large or not UTF-8.
    let long_name = "n".repeat(300);
    for (query, status, code) in [
        (format!("userid=carol&username={long_name}"), 400, 90000005),
        ("userid=carol&role=1".to_owned(), 400, 90000005),
        ("userid=carol&ctime=soon".to_owned(), 400, 90000005),
    ] {
        let reply = http(
            &server,
            "POST",
            &format!("/whip/room-bad?{query}"),
            &with_auth,
            &offer,
        )
        .await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{query}: {reply:?}"
        );
    }
    let huge = format!("{offer}{}", "a=x\r\n".repeat(20_000));
    let reply = http(&server, "POST", whip, &with_auth, &huge).await;
    assert_eq!((reply.status, reply.code()), (413, 90000005), "{reply:?}");
    // Past the HTTP layer's own limit (2 MiB): still a numbered error.
    let huger = "a".repeat(3 << 20);
    let reply = http(&server, "POST", whip, &with_auth, &huger).await;
    assert_eq!((reply.status, reply.code()), (413, 90000005), "{reply:?}");
    let reply = http_bytes(&server, "POST", whip, &with_auth, b"v=0\r\n\xff\xfe\r\n").await;
    assert_eq!((reply.status, reply.code()), (400, 90000005), "{reply:?}");
    // A WHEP offer without H.264 (VP8 only, receiving).
    let reply = http(
        &server,
        "POST",
        &format!("/whep/room-bad/{stream_id}"),
        &with_auth,
        &recvonly(&vp8_only(&offer)),
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, 90000005), "{reply:?}");
    assert!(reply.body.contains("H264"), "{reply:?}");
    // PATCH and DELETE on resources that never were.
    let reply = http(
        &server,
        "PATCH",
        "/whip/room-bad/feed",
        &trickle_headers(&auth),
        "",
    )
    .await;
    assert_eq!((reply.status, reply.code()), (404, 90000005), "{reply:?}");
    let reply = http(
        &server,
        "DELETE",
        &format!("/whep/room-bad/{stream_id}/feed"),
        &[("Authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!((reply.status, reply.code()), (404, 90000005), "{reply:?}");

    // None of that reached the room: no joins, no streams; bob still decodes.
    let before = remote.stats().frames_decoded;
    wait_for(Duration::from_secs(10), "bob still decoding", || {
        (remote.stats().frames_decoded >= before + 15).then_some(())
    })
    .await;
    while let Ok(event) = bob.events().try_recv() {
        assert!(
            !matches!(
                event,
                RoomEvent::PeerJoin(_) | RoomEvent::StreamAdded(_) | RoomEvent::PeerLeave { .. }
            ),
            "a refused request changed the room: {event:?}"
        );
    }

    // A good WHIP publish, then its resource's bad inputs.
    let reply = http(&server, "POST", whip, &with_auth, &offer).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert_eq!(reply.header("Content-Type"), Some("application/sdp"));
    assert!(reply.body.starts_with("v=0"), "an SDP answer: {reply:?}");
    assert!(
        reply.body.contains("a=candidate"),
        "with candidates: {reply:?}"
    );
    let location = reply.header("Location").expect("Location").to_owned();
    let added = stream_added(&bob).await;
    assert_eq!(added.user_id.as_str(), "carol");

    let frag = "a=ice-ufrag:{ufrag}\r\na=ice-pwd:x\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n";
    let ufrag = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .expect("offer ufrag")
        .trim()
        .to_owned();
    let frag = frag.replace("{ufrag}", &ufrag);
    let trickle = [
        ("Content-Type", "application/trickle-ice-sdpfrag"),
        ("Authorization", auth.as_str()),
    ];
    // Trickle works (204); a wrong type (415), a restart (405), another
    // bearer (401), an unknown resource or room (404) do not.
    let reply = http(&server, "PATCH", &location, &trickle, &frag).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    let reply = http(&server, "PATCH", &location, &with_auth, &frag).await;
    assert_eq!((reply.status, reply.code()), (415, 90000005), "{reply:?}");
    let reply = http(
        &server,
        "PATCH",
        &location,
        &trickle,
        "hello, not a fragment",
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, 90000005), "{reply:?}");
    let reply = http_bytes(&server, "PATCH", &location, &trickle, b"a=candidate:\xff").await;
    assert_eq!((reply.status, reply.code()), (400, 90000005), "{reply:?}");
    let reply = http(
        &server,
        "PATCH",
        &location,
        &[
            ("Content-Type", "application/trickle-ice-sdpfrag"),
            ("Authorization", auth.as_str()),
            ("If-Match", "*"),
        ],
        &frag.replace(&ufrag, "newufrag"),
    )
    .await;
    assert_eq!((reply.status, reply.code()), (405, 90100001), "{reply:?}");
    let reply = http(
        &server,
        "PATCH",
        &location,
        &trickle,
        "a=candidate:1 1 tcp 1 127.0.0.1 9 typ host\r\n",
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, 90000005), "{reply:?}");
    let reply = http(
        &server,
        "DELETE",
        &location,
        &[("Authorization", "Bearer other")],
        "",
    )
    .await;
    assert_eq!((reply.status, reply.code()), (401, 90100031), "{reply:?}");
    let reply = http(
        &server,
        "DELETE",
        "/whip/room-bad/0123",
        &[("Authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!((reply.status, reply.code()), (404, 90000005), "{reply:?}");
    let elsewhere = location.replace("/room-bad/", "/room-other/");
    let reply = http(
        &server,
        "DELETE",
        &elsewhere,
        &[("Authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");

    // DELETE ends it: stream-removed, peer-leave (0); a second DELETE is 404.
    let reply = http(
        &server,
        "DELETE",
        &location,
        &[("Authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let removed = stream_removed(&bob).await;
    assert_eq!(removed, added.stream_id);
    let left = peer_left(&bob).await;
    assert_eq!((left.0.as_str(), left.1), ("carol", LeaveReason::UserExit));
    let reply = http(
        &server,
        "DELETE",
        &location,
        &[("Authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");
    link.close().await;

    // Alice's stream never stopped.
    let before = remote.stats().frames_decoded;
    wait_for(Duration::from_secs(10), "bob still decoding", || {
        (remote.stats().frames_decoded >= before + 15).then_some(())
    })
    .await;
    let _: StreamId = stream_id;
    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}

/// A WHEP player in a browser page, written from docs/protocol.md: recvonly
/// transceivers, the complete offer POSTed with the bearer, the answer
/// applied. Returns the resource's Location.
const BROWSER_WHEP: &str = r#"(async (url, bearer) => {
  const pc = new RTCPeerConnection();
  // Played, so that the browser renders the audio and measures its energy.
  pc.ontrack = (e) => {
    if (e.track.kind !== 'audio') return;
    const audio = new Audio();
    audio.srcObject = new MediaStream([e.track]);
    audio.play().catch(() => {});
  };
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((done) => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done());
  });
  const reply = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + bearer },
    body: pc.localDescription.sdp,
  });
  if (reply.status !== 201) throw new Error('WHEP ' + reply.status + ' ' + await reply.text());
  await pc.setRemoteDescription({ type: 'answer', sdp: await reply.text() });
  window.whep = { pc, location: reply.headers.get('Location') };
  return window.whep.location;
})"#;

const BROWSER_STATS: &str = r#"(async () => {
  const out = { frames: 0, energy: 0 };
  (await whep.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.frames = s.framesDecoded || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.energy = s.totalAudioEnergy || 0;
    if (s.type === 'transport') out.srtp = s.srtpCipher;
  });
  return out;
})()"#;

/// WHEP in Chromium, which speaks AES-GCM SRTP: the leg is sealed by the
/// hub itself (the fast path), and the browser decodes video and hears audio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_over_whep_on_the_hubs_fast_path() {
    let Some(mut browser) = common::chromium::Chromium::start_or_skip(
        "chromium_plays_over_whep_on_the_hubs_fast_path",
        &[],
    )
    .await
    else {
        return;
    };
    let server = start().await;
    let (alice, _) = join(&server, "room-whep-browser", "alice").await;
    let stream_id = alice.publish(synthetic(523.0)).await.expect("publish");
    let base = server.url.replacen("ws://", "http://", 1);
    let page = browser.open(&format!("{base}/")).await;
    let url = format!("/whep/room-whep-browser/{stream_id}?userid=browser");
    let location = browser
        .eval(&page, &format!("{BROWSER_WHEP}({url:?}, {TOKEN:?})"))
        .await;
    let location = location.as_str().expect("a Location").to_owned();
    assert!(
        location.starts_with(&format!("/whep/room-whep-browser/{stream_id}/")),
        "{location}"
    );
    browser
        .wait_for(
            &page,
            Duration::from_secs(30),
            "30 frames decoded and audio heard in Chromium",
            BROWSER_STATS,
            |s| {
                (s["frames"].as_u64().unwrap_or(0) >= 30
                    && s["energy"].as_f64().unwrap_or(0.0) > 0.0)
                    .then_some(())
            },
        )
        .await;
    let stats = browser.eval(&page, BROWSER_STATS).await;
    assert!(
        stats["srtp"].as_str().is_some_and(|c| c.contains("GCM")),
        "AES-GCM SRTP: {stats}"
    );
    assert!(
        server.server.metrics().direct_egress_legs >= 1,
        "the WHEP leg is sealed by the hub: {:?}",
        server.server.metrics()
    );
    let status = browser
        .eval(
            &page,
            &format!(
                "fetch(whep.location, {{ method: 'DELETE', headers: {{ 'Authorization': 'Bearer {TOKEN}' }} }}).then((r) => r.status)"
            ),
        )
        .await;
    assert_eq!(status, 200);
    let left = peer_left(&alice).await;
    assert_eq!(
        (left.0.as_str(), left.1),
        ("browser", LeaveReason::UserExit)
    );
    wait_for(Duration::from_secs(5), "the leg is gone", || {
        (server.server.metrics().direct_egress_legs == 0).then_some(())
    })
    .await;
    alice.leave().await.expect("leave");
}

/// A play offer made from a publish offer: its sections turned `recvonly`,
/// its sending SSRCs dropped. Its link never connects (nobody answers on
/// its side), which is all a lifecycle test needs.
fn recvonly(offer: &str) -> String {
    offer
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with("a=ssrc") && !l.starts_with("a=msid"))
        .map(|l| {
            if l == "a=sendrecv" || l == "a=sendonly" {
                "a=recvonly"
            } else {
                l
            }
        })
        .map(|l| format!("{l}\r\n"))
        .collect()
}

/// A WHEP resource ends with the stream it plays: the room sees its member
/// leave (reason 0) and its Location is gone; `?srtp=` takes two values only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whep_resource_ends_with_its_stream() {
    let server = start().await;
    let (alice, _) = join(&server, "room-whep-end", "alice").await;
    let (bob, _) = join(&server, "room-whep-end", "bob").await;
    let stream_id = alice.publish(synthetic(523.0)).await.expect("publish");
    let (link, offer) = publish_offer(true, true).await;
    let play = recvonly(&offer);
    let auth = bearer(TOKEN);
    let headers = [
        ("Content-Type", "application/sdp"),
        ("Authorization", auth.as_str()),
    ];
    let path = format!("/whep/room-whep-end/{stream_id}?userid=viewer");
    let reply = http(
        &server,
        "POST",
        &format!("{path}&srtp=rot13"),
        &headers,
        &play,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (400, 90000005), "{reply:?}");
    let reply = http(&server, "POST", &path, &headers, &play).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert!(
        reply.body.contains("a=sendonly"),
        "the leg only sends: {reply:?}"
    );
    assert!(reply.body.contains("a=setup:passive"), "{reply:?}");
    let location = reply.header("Location").expect("Location").to_owned();
    let joined = peer_joined(&bob).await;
    assert_eq!(joined.user_id.as_str(), "viewer");

    alice.unpublish(stream_id).await.expect("unpublish");
    let left = peer_left(&bob).await;
    assert_eq!((left.0.as_str(), left.1), ("viewer", LeaveReason::UserExit));
    let reply = http(
        &server,
        "DELETE",
        &location,
        &[("Authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 404, "{reply:?}");
    wait_for(Duration::from_secs(5), "the leg is closed", || {
        (server.server.metrics().peer_connections == 0).then_some(())
    })
    .await;
    link.close().await;
    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}

/// A WHIP resource is a room member: it counts against the room's limit
/// (503, 90100217, nothing announced), and a join of the same user replaces
/// it (its stream goes, its Location is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_resource_is_a_room_member() {
    let mut config = ServerConfig::new(test_apps());
    config.signature_token = Some(TOKEN.into());
    config.limits.max_users_per_room = 2;
    let server = start_server_with(config).await;
    let (bob, _) = join(&server, "room-member", "bob").await;
    let (link, offer) = publish_offer(true, true).await;
    let auth = bearer(TOKEN);
    let headers = [
        ("Content-Type", "application/sdp"),
        ("Authorization", auth.as_str()),
    ];
    let reply = http(
        &server,
        "POST",
        "/whip/room-member?userid=carol",
        &headers,
        &offer,
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let location = reply.header("Location").expect("Location").to_owned();
    let added = stream_added(&bob).await;
    // The room is full now: a third member is refused, and no link is left.
    let before = server.server.metrics().peer_connections;
    let reply = http(
        &server,
        "POST",
        "/whip/room-member?userid=dave",
        &headers,
        &offer,
    )
    .await;
    assert_eq!((reply.status, reply.code()), (503, 90100217), "{reply:?}");
    assert_eq!(server.server.metrics().peer_connections, before);
    // carol joins over the WebSocket: the WHIP resource is replaced.
    let (carol, _) = join(&server, "room-member", "carol").await;
    let removed = stream_removed(&bob).await;
    assert_eq!(removed, added.stream_id);
    // An empty trickle PATCH changes nothing: 204 while the resource lives.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let reply = http(&server, "PATCH", &location, &trickle_headers(&auth), "").await;
        if reply.status == 404 {
            break;
        }
        assert_eq!(reply.status, 204, "{reply:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "the resource outlived its member"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    link.close().await;
    carol.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}

/// At shutdown a WHIP resource leaves its room and closes its link like a
/// WebSocket session: nothing is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_resources_end_at_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let mut config = ServerConfig::new(test_apps());
    config.signature_token = Some(TOKEN.into());
    let server = huddle::server::Server::new(config);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(server.clone().run(listener, async {
        stop_rx.await.ok();
    }));
    let (link, offer) = publish_offer(true, true).await;
    let auth = bearer(TOKEN);
    let reply = http_at(
        &addr,
        "POST",
        "/whip/room-down?userid=carol",
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", auth.as_str()),
        ],
        offer.as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let live = server.metrics();
    assert_eq!(
        (live.rooms, live.users, live.sessions),
        (1, 1, 1),
        "{live:?}"
    );
    assert!(live.peer_connections >= 1, "{live:?}");

    stop_tx.send(()).ok();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run returns")
        .expect("join")
        .expect("run");
    wait_for(Duration::from_secs(5), "the resource is gone", || {
        let m = server.metrics();
        (m.rooms == 0 && m.users == 0 && m.sessions == 0 && m.peer_connections == 0).then_some(())
    })
    .await;
    link.close().await;
}

/// A page on a configured origin may call WHIP/WHEP (CORS preflight, the
/// `Location` exposed); other origins get no CORS headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_configured_origins_get_cors_for_whip() {
    let mut config = ServerConfig::new(test_apps());
    config.signature_token = Some(TOKEN.into());
    config.cors_origins = vec!["https://studio.example.com".into()];
    let server = start_server_with(config).await;
    let preflight = |origin: &'static str| {
        [
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization,content-type",
            ),
        ]
    };
    let reply = http(
        &server,
        "OPTIONS",
        "/whip/room-cors",
        &preflight("https://studio.example.com"),
        "",
    )
    .await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://studio.example.com"),
        "{reply:?}"
    );
    let methods = reply
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(
        methods.contains("POST") && methods.contains("DELETE"),
        "{reply:?}"
    );
    let allowed = reply
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{reply:?}");
    let reply = http(
        &server,
        "OPTIONS",
        "/whip/room-cors",
        &preflight("https://elsewhere.example.com"),
        "",
    )
    .await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        None,
        "{reply:?}"
    );

    let (link, offer) = publish_offer(true, false).await;
    let auth = bearer(TOKEN);
    let reply = http(
        &server,
        "POST",
        "/whip/room-cors?userid=page",
        &[
            ("Origin", "https://studio.example.com"),
            ("Content-Type", "application/sdp"),
            ("Authorization", auth.as_str()),
        ],
        &offer,
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    assert!(
        reply
            .header("access-control-expose-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("location")),
        "{reply:?}"
    );
    let location = reply.header("Location").expect("Location").to_owned();
    let reply = http(
        &server,
        "DELETE",
        &location,
        &[("Authorization", auth.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    link.close().await;
}

/// A WHIP resource whose client vanishes (its ICE never answers) ends by
/// itself: the room sees its stream go and its member leave (reason 7),
/// and its Location is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whip_resource_whose_client_vanishes_ends() {
    let server = start().await;
    let (bob, _) = join(&server, "room-vanish", "bob").await;
    let (link, offer) = publish_offer(true, true).await;
    let auth = bearer(TOKEN);
    let reply = http(
        &server,
        "POST",
        "/whip/room-vanish?userid=carol",
        &[
            ("Content-Type", "application/sdp"),
            ("Authorization", auth.as_str()),
        ],
        &offer,
    )
    .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let location = reply.header("Location").expect("Location").to_owned();
    // The client goes without applying the answer or saying DELETE.
    link.close().await;
    let added = stream_added(&bob).await.stream_id;
    // ICE gives up after its timeout (about 30 s here).
    let removed = wait_event(
        &bob,
        Duration::from_secs(60),
        "stream-removed",
        |e| match e {
            RoomEvent::StreamRemoved { stream_id, .. } => Some(*stream_id),
            _ => None,
        },
    )
    .await;
    assert_eq!(removed, added);
    let left = peer_left(&bob).await;
    assert_eq!(
        (left.0.as_str(), left.1),
        ("carol", LeaveReason::ReconnectTimeout)
    );
    let reply = http(&server, "PATCH", &location, &trickle_headers(&auth), "").await;
    assert_eq!(reply.status, 404, "{reply:?}");
    bob.leave().await.expect("leave");
}
