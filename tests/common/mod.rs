//! Shared harness for the integration tests: a real server on `127.0.0.1:0`, real
//! clients, real codecs, real UDP. Every wait is bounded.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod bench_script;
pub mod chromium;
pub mod coturn;
pub mod lossy_turn;
pub mod nginx;
pub mod node;
pub mod redis;
pub mod stderr_lines;
#[cfg(feature = "devices")]
pub mod x11_window;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use huddle::auth::AppRegistry;
use huddle::bot::BotConfig;
use huddle::client::{Client, Credential, JoinConfig, JoinInfo, LocalStream, RoomEvent};
use huddle::media::{AudioProfile, VideoProfile};
use huddle::protocol::{AppId, Role, RoomId, ServerMessage, UserId};
use huddle::server::{Server, ServerConfig};

pub use stderr_lines::StderrLines;

pub const APP_ID: &str = "test-app";
pub const APP_KEY: &str = "test-key";

/// A running server.
pub struct TestServer {
    pub url: String,
    pub server: Server,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn test_apps() -> AppRegistry {
    let mut apps = AppRegistry::new();
    apps.insert(APP_ID.to_owned(), APP_KEY.to_owned());
    apps
}

pub async fn start_server() -> TestServer {
    start_server_with(ServerConfig::new(test_apps())).await
}

pub async fn start_server_with(config: ServerConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = Server::new(config);
    let task = tokio::spawn(server.clone().run(listener, std::future::pending()));
    TestServer {
        url: format!("ws://{addr}"),
        server,
        task,
    }
}

pub fn join_config(server: &TestServer, room: &str, user: &str, role: Role) -> JoinConfig {
    JoinConfig {
        server_url: server.url.clone(),
        app_id: AppId(APP_ID.into()),
        room_id: RoomId(room.into()),
        user_id: UserId(user.into()),
        user_name: format!("{user} (test)"),
        role,
        credential: Credential::AppKey {
            key: APP_KEY.into(),
            valid_for: Duration::from_secs(3600),
        },
        decode: true,
        reconnect_window: huddle::client::DEFAULT_RECONNECT_WINDOW,
    }
}

pub async fn join(server: &TestServer, room: &str, user: &str) -> (Client, JoinInfo) {
    let client = Client::new();
    let info = client
        .join(join_config(server, room, user, Role::Joiner))
        .await
        .expect("join");
    (client, info)
}

/// The synthetic pattern (360p_2: 480x360@15) with a tone.
pub fn synthetic(tone_hz: f32) -> LocalStream {
    LocalStream::synthetic(VideoProfile::default(), AudioProfile::default(), tone_hz)
}

/// Polls `check` every 20 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a room event matching `pick`, skipping others.
pub async fn wait_event<T>(
    client: &Client,
    timeout: Duration,
    what: &str,
    mut pick: impl FnMut(&RoomEvent) -> Option<T>,
) -> T {
    wait_for(timeout, what, || {
        while let Ok(event) = client.events().try_recv() {
            if let Some(v) = pick(&event) {
                return Some(v);
            }
        }
        None
    })
    .await
}

/// How long the room-event helpers below wait.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The next `peer-join` `client` sees (within [`EVENT_TIMEOUT`]).
pub async fn peer_joined(client: &Client) -> huddle::protocol::UserInfo {
    wait_event(client, EVENT_TIMEOUT, "peer-join", |e| match e {
        RoomEvent::PeerJoin(user) => Some(user.clone()),
        _ => None,
    })
    .await
}

/// The next `peer-leave` `client` sees: who, and why.
pub async fn peer_left(
    client: &Client,
) -> (huddle::protocol::UserId, huddle::protocol::LeaveReason) {
    wait_event(client, EVENT_TIMEOUT, "peer-leave", |e| match e {
        RoomEvent::PeerLeave { user_id, reason } => Some((user_id.clone(), *reason)),
        _ => None,
    })
    .await
}

/// The next `stream-added` `client` sees.
pub async fn stream_added(client: &Client) -> huddle::protocol::StreamInfo {
    wait_event(client, EVENT_TIMEOUT, "stream-added", |e| match e {
        RoomEvent::StreamAdded(info) => Some(info.clone()),
        _ => None,
    })
    .await
}

/// The stream of the next `stream-removed` `client` sees.
pub async fn stream_removed(client: &Client) -> huddle::protocol::StreamId {
    wait_event(client, EVENT_TIMEOUT, "stream-removed", |e| match e {
        RoomEvent::StreamRemoved { stream_id, .. } => Some(*stream_id),
        _ => None,
    })
    .await
}

/// A raw WebSocket, for sending what the SDK never would.
pub struct RawSocket {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl RawSocket {
    pub async fn connect(server: &TestServer) -> Self {
        Self::connect_url(&server.url).await
    }

    pub async fn connect_url(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        Self { socket }
    }

    /// Connects over a TCP socket whose receive buffer is `bytes` small, so a
    /// client that stops reading backs the server up quickly.
    pub async fn connect_with_small_receive_buffer(url: &str, bytes: u32) -> Self {
        let addr = url.trim_start_matches("ws://");
        let addr: std::net::SocketAddr = addr.parse().expect("ws://ip:port");
        let tcp = tokio::net::TcpSocket::new_v4().expect("socket");
        tcp.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        let stream = tcp.connect(addr).await.expect("connect");
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
        let (socket, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("upgrade");
        Self { socket }
    }

    /// The next frame of any kind within `timeout`; `None` when the connection
    /// ended (end of stream or a socket error).
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Message> {
        match tokio::time::timeout(timeout, self.socket.next()).await {
            Err(_) => panic!("no frame and no end of stream within {timeout:?}"),
            Ok(Some(Ok(frame))) => Some(frame),
            Ok(Some(Err(_)) | None) => None,
        }
    }

    /// Skips server messages until `pick` returns `Some`, within `timeout`.
    pub async fn recv_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("timed out after {timeout:?} waiting for {what}"))
                .unwrap_or_else(|| panic!("socket closed while waiting for {what}"))
                .unwrap_or_else(|e| panic!("socket error while waiting for {what}: {e}"));
            if let Message::Text(text) = frame {
                let message: ServerMessage =
                    serde_json::from_str(text.as_str()).expect("server sent invalid JSON");
                if let Some(value) = pick(&message) {
                    return value;
                }
            }
        }
    }

    /// Reads until the server's close frame, within `timeout`, and returns the
    /// messages before it. Panics if the connection ends without a close frame.
    pub async fn until_close(&mut self, timeout: Duration) -> Vec<ServerMessage> {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no close frame within {timeout:?}; got {before:?}"));
            match frame {
                Some(Ok(Message::Text(text))) => before
                    .push(serde_json::from_str(text.as_str()).expect("server sent invalid JSON")),
                Some(Ok(Message::Close(_))) => return before,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("socket error before a close frame: {e}; got {before:?}"),
                None => panic!("connection ended without a close frame; got {before:?}"),
            }
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// The next server message (skipping non-text frames), within 5 s.
    pub async fn recv(&mut self) -> ServerMessage {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .expect("no server message within 5 s")
                .expect("socket closed")
                .expect("socket error");
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str()).expect("server sent invalid JSON");
            }
        }
    }

    /// Sends a join for `user` with a valid signature.
    pub async fn join(&mut self, room: &str, user: &str) -> ServerMessage {
        let ctime = huddle::auth::now_unix() + 600;
        let signature = huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime);
        self.send(&format!(
            r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"{user}","ctime":{ctime},"signature":"{signature}"}}"#
        ))
        .await;
        self.recv().await
    }

    /// [`RawSocket::join`], which must succeed.
    pub async fn joined(&mut self, room: &str, user: &str) {
        match self.join(room, user).await {
            ServerMessage::Reply { .. } => {}
            other => panic!("{user} could not join {room}: {other:?}"),
        }
    }

    /// Sends `ping` with request id `id` and waits for its `pong`: the
    /// session is alive and answering.
    pub async fn ping(&mut self, id: u64) {
        self.send(&format!(r#"{{"id":{id},"type":"ping"}}"#)).await;
        self.recv_until(Duration::from_secs(5), "pong", |m| {
            matches!(
                m,
                ServerMessage::Reply {
                    reply: huddle::protocol::Reply::Pong,
                    ..
                }
            )
            .then_some(())
        })
        .await;
    }

    /// Subscribes to audio and video of `stream` (request id `id`) and
    /// returns the subscription's link and the server's SDP offer.
    pub async fn subscribe_offer(
        &mut self,
        id: u64,
        stream: huddle::protocol::StreamId,
    ) -> (huddle::protocol::LinkId, String) {
        self.send(&format!(
            r#"{{"id":{id},"type":"subscribe","streamId":{},"audio":true,"video":true}}"#,
            stream.0
        ))
        .await;
        self.recv_until(Duration::from_secs(10), "subscribe-offer", |m| match m {
            ServerMessage::Reply {
                reply: huddle::protocol::Reply::SubscribeOffer { link_id, sdp, .. },
                ..
            } => Some((*link_id, sdp.clone())),
            ServerMessage::Error(e) => panic!("subscribe refused: {e:?}"),
            _ => None,
        })
        .await
    }

    /// Reads until the close frame (within 10 s) and checks that
    /// `client-banned` with reason 3 (service unavailable: the server is
    /// shutting down) came before it; `who` names the socket in the message.
    pub async fn until_shutdown_goodbye(&mut self, who: &str) {
        let before = self.until_close(Duration::from_secs(10)).await;
        assert!(
            before.iter().any(|m| matches!(
                m,
                ServerMessage::Event {
                    event: huddle::protocol::Event::ClientBanned {
                        reason: huddle::protocol::LeaveReason::ServiceUnavailable
                    }
                }
            )),
            "{who} got no client-banned (3) before the close frame: {before:?}"
        );
    }

    /// Drops the TCP connection without a close frame (a killed process).
    pub fn kill(self) {
        drop(self.socket);
    }
}

/// A bot that publishes the synthetic pattern (`profile`) and a `tone_hz` tone.
pub fn publishing_bot(
    server_url: &str,
    room: &str,
    user: &str,
    profile: &str,
    tone_hz: f32,
) -> BotConfig {
    BotConfig {
        video_profile: *VideoProfile::by_name(profile).expect("profile"),
        tone_hz,
        ..BotConfig::publisher(
            server_url,
            AppId(APP_ID.into()),
            Credential::AppKey {
                key: APP_KEY.into(),
                valid_for: Duration::from_secs(3600),
            },
            RoomId(room.into()),
            user,
        )
    }
}

/// The code (and request id) of an error message; panics on anything else.
pub fn expect_error(
    message: ServerMessage,
) -> (
    Option<huddle::protocol::RequestId>,
    huddle::protocol::ErrorCode,
) {
    match message {
        ServerMessage::Error(e) => {
            assert!(!e.message.is_empty(), "errors carry a message");
            (e.id, e.code)
        }
        other => panic!("expected an error reply, got {other:?}"),
    }
}

/// Whether this run is CI: `CI` is set to anything but empty, `0` or `false`
/// (GitHub, GitLab and most others set `CI=true`). CI provides every outside
/// tool the tests use (`.ci/setup.sh`, `.ci/pulse.sh`).
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// `test` cannot run here because of `reason` (a missing tool or service).
/// Outside CI: prints `SKIP <test>: <reason>` and returns, and the caller
/// returns, so the test passes without having checked anything. On CI
/// ([`on_ci`]): panics, because a test that cannot run there is a broken CI
/// setup, not a pass. Every skip in tests/ goes through here.
#[track_caller]
pub fn skip(test: &str, reason: &str) {
    assert!(
        !on_ci(),
        "{test} cannot run: {reason}. CI (`CI` is set) must provide it: \
         .ci/setup.sh installs Xvfb, ImageMagick, Vulkan, Chromium and openssl, .ci/pulse.sh starts PulseAudio \
         with the huddle_null sink. Outside CI the test would be skipped."
    );
    eprintln!("SKIP {test}: {reason} (with `CI` set this fails instead)");
}

/// The null sink `.ci/pulse.sh` loads.
#[cfg(feature = "devices")]
pub const SINK: &str = "huddle_null";

/// One test at a time on the shared sink (per test binary).
#[cfg(feature = "devices")]
static PULSE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// PulseAudio with the [`SINK`], held for one test: the sink as a speaker,
/// its monitor as a microphone.
#[cfg(feature = "devices")]
pub struct Pulse {
    _guard: std::sync::MutexGuard<'static, ()>,
    pub speaker: huddle::media::devices::DeviceInfo,
    pub monitor: huddle::media::devices::DeviceInfo,
}

/// The sink for `test`, or `None` after [`skip`] when there is no PulseAudio
/// server, no [`SINK`] or no `pacat` (`source .ci/pulse.sh` provides all three).
#[cfg(feature = "devices")]
#[track_caller]
pub fn pulse_or_skip(test: &str) -> Option<Pulse> {
    use huddle::media::devices::{list_microphones, list_speakers, pulseaudio_available};

    let guard = PULSE.lock().unwrap_or_else(|e| e.into_inner());
    if !pulseaudio_available() {
        skip(
            test,
            "no PulseAudio server reachable (PULSE_SERVER / XDG_RUNTIME_DIR); \
             run `source .ci/pulse.sh` first",
        );
        return None;
    }
    if let Err(e) = std::process::Command::new("pacat")
        .arg("--version")
        .output()
    {
        skip(
            test,
            &format!("cannot run pacat ({e}); install pulseaudio-utils"),
        );
        return None;
    }
    let speakers = list_speakers().expect("list speakers");
    let mics = list_microphones().expect("list microphones");
    let speaker = speakers
        .iter()
        .find(|d| d.id.ends_with(&format!(":{SINK}")));
    let monitor = mics
        .iter()
        .find(|d| d.id.ends_with(&format!(":{SINK}.monitor")));
    if let (Some(s), Some(m)) = (speaker, monitor) {
        return Some(Pulse {
            _guard: guard,
            speaker: s.clone(),
            monitor: m.clone(),
        });
    }
    skip(
        test,
        &format!(
            "PulseAudio is up but has no {SINK} sink (speakers {speakers:?}); \
             run `source .ci/pulse.sh`"
        ),
    );
    None
}

/// Reads frames from `mic` until five in a row (100 ms) have an RMS
/// satisfying `ok`; panics after `within`. Returns how long it took.
#[cfg(feature = "devices")]
pub fn wait_for_level(
    mic: &mut huddle::media::devices::MicrophoneSource,
    ok: impl Fn(f32) -> bool,
    what: &str,
    within: Duration,
) -> Duration {
    use huddle::media::AudioSource;

    // Five frames in a row that also span real time: after a stall the source
    // hands out its catch-up frames (silence) at once, and those say nothing
    // about what the device is playing now.
    let start = Instant::now();
    let mut run: Option<(u32, Instant)> = None;
    while start.elapsed() < within {
        let frame = mic
            .next_frame()
            .expect("mic frame")
            .expect("mic is endless");
        run = if ok(huddle::media::rms_level(&frame.samples)) {
            let (n, since) = run.unwrap_or((0, Instant::now()));
            Some((n + 1, since))
        } else {
            None
        };
        if let Some((n, since)) = run
            && n >= 5
            && since.elapsed() >= Duration::from_millis(80)
        {
            return start.elapsed();
        }
    }
    panic!("the monitor did not hear {what} within {within:?}");
}

/// `pacat` playing `seconds` of a `freq` tone into the sink; killed on drop.
pub struct Pacat(std::process::Child);

impl Pacat {
    /// Starts `pacat`; [`pulse_or_skip`] has checked that it runs.
    pub fn play(sink: &str, freq: f32, seconds: u32) -> Self {
        let mut child = std::process::Command::new("pacat")
            .args([
                "--playback",
                "--raw",
                "--format=s16le",
                "--rate=48000",
                "--channels=1",
                &format!("--device={sink}"),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run pacat");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut tone = huddle::media::tone::ToneSource::new(freq, 48_000, 1, 0.5);
        let bytes: Vec<u8> = (0..seconds * 50)
            .flat_map(|_| tone.next_frame().samples)
            .flat_map(i16::to_le_bytes)
            .collect();
        // pacat plays at the sink's pace; write from a thread so we don't wait.
        std::thread::spawn(move || {
            std::io::Write::write_all(&mut stdin, &bytes).ok(); // pacat killed early: fine
        });
        Self(child)
    }
}

impl Drop for Pacat {
    fn drop(&mut self) {
        self.0.kill().ok(); // already exited: fine
        self.0.wait().ok();
    }
}

/// The frequency of a tone heard through a live audio path (48 kHz mono): the
/// median of the dominant frequency of each 100 ms piece.
///
/// Live paths stay live by dropping a 20 ms frame when they fall behind (a
/// loaded machine delays a device callback), which splices the waveform; one
/// splice inside a single 1 s analysis window moves its peak by several Hz
/// (seen: 886 Hz for an 880 Hz tone). A piece without a splice measures the
/// tone itself, and the median ignores the few pieces that contain one.
pub fn tone_frequency(pcm: &[i16]) -> f32 {
    let mut estimates: Vec<f32> = pcm
        .chunks_exact(4_800)
        .filter_map(|piece| huddle::media::dominant_frequency(piece, 1, 48_000))
        .collect();
    if estimates.is_empty() {
        return 0.0;
    }
    estimates.sort_by(f32::total_cmp);
    estimates[estimates.len() / 2]
}

/// A publish offer as the SDK makes one: a real peer connection on loopback
/// with send-only H.264 and/or Opus tracks, candidates gathered. Keep the
/// link while the offer is in use; close it when done.
pub async fn publish_offer(audio: bool, video: bool) -> (huddle::link::PeerLink, String) {
    use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
    use webrtc::media_stream::track_local::TrackLocal;
    use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

    let (link, _signals) = huddle::link::PeerLink::new([127, 0, 0, 1].into())
        .await
        .expect("peer connection");
    for (wanted, kind, id) in [
        (video, RtpCodecKind::Video, "video"),
        (audio, RtpCodecKind::Audio, "audio"),
    ] {
        if wanted {
            let description =
                huddle::link::track_description(kind, rand::random::<u32>() | 1, "test", id);
            let track = std::sync::Arc::new(TrackLocalStaticRTP::new(description));
            link.pc()
                .add_track(track as std::sync::Arc<dyn TrackLocal>)
                .await
                .expect("add track");
        }
    }
    let offer = link.create_offer().await.expect("offer");
    (link, offer)
}

/// A JSON string literal of `text` (for splicing SDPs into raw frames).
pub fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// One plain `GET path` to the test server (no token), as an operator's tool
/// would send it; returns the status and the JSON body.
pub async fn http_get_json(server: &TestServer, path: &str) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("send");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response))
        .await
        .expect("a response")
        .expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    (status, serde_json::from_str(body).expect("a JSON body"))
}
