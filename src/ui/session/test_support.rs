//! What the session's end-to-end tests share.

use std::time::{Duration, Instant};

use super::RoomSession;

/// The app id the tests' servers accept.
pub const APP: &str = "ui-app";
/// Its key.
pub const KEY: &str = "ui-key";

/// Polls `session` every 20 ms until `check` holds, or panics after `timeout`.
pub fn poll_until(
    session: &mut RoomSession,
    timeout: Duration,
    what: &str,
    mut check: impl FnMut(&mut RoomSession) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        session.poll();
        if check(session) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; errors: {:?}",
            session.take_errors()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A room session that never connects (its runtime is never driven), for
/// drawing the real room widgets headless with the users, streams and tiles
/// a test puts in.
pub struct FakeRoom {
    /// Kept alive for the session's handles; never driven.
    pub _rt: tokio::runtime::Runtime,
    /// The session, phase `Joined`.
    pub session: RoomSession,
}

/// Synthetic camera and tone, wired as the app wires real devices.
pub fn synthetic_media() -> super::LocalMedia {
    use crate::media::{
        AudioProfile, SwitchableAudio, SwitchableVideo, SyntheticAudio, SyntheticVideo,
        VideoProfile,
    };
    let video_profile = VideoProfile::default();
    let audio_profile = AudioProfile::default();
    let (camera, camera_switch) = SwitchableVideo::new(Box::new(SyntheticVideo::new(
        video_profile.width,
        video_profile.height,
        video_profile.frame_rate,
    )));
    let (mic, mic_switch) = SwitchableAudio::new(Box::new(SyntheticAudio::new(
        440.0,
        audio_profile.sample_rate,
        audio_profile.channels,
    )));
    super::LocalMedia {
        stream: crate::client::LocalStream::new(
            Some(Box::new(camera)),
            Some(Box::new(mic)),
            video_profile,
            audio_profile,
        ),
        slot: std::sync::Arc::new(crate::client::VideoSlot::default()),
        camera: camera_switch,
        microphone: mic_switch,
        meter: std::sync::Arc::new(crate::ui::device_preview::LevelMeter::default()),
        video_profile,
        audio_profile,
        start_audio_muted: false,
        start_video_muted: false,
    }
}

/// Who is in a fake room besides us.
#[derive(Debug, Clone)]
pub struct FakePeer {
    /// Display name.
    pub name: String,
    /// Publishes audio + video (a tile); `false`: a player (no tile).
    pub publishes: bool,
}

/// A joined room with `peers`, us publishing (joiner) as `my_name`.
pub fn fake_room(my_name: &str, peers: &[FakePeer]) -> FakeRoom {
    use crate::client::{
        Credential, JoinConfig, RemoteStream, Role, StreamId, StreamInfo, UserInfo,
    };
    use crate::protocol::{AppId, RoomId, UserId};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let credential = Credential::AppKey {
        key: KEY.into(),
        valid_for: Duration::from_secs(60),
    };
    let config = JoinConfig {
        server_url: "ws://127.0.0.1:9".into(),
        app_id: AppId(APP.into()),
        room_id: RoomId("room".into()),
        user_id: UserId("me".into()),
        user_name: my_name.into(),
        role: Role::Joiner,
        credential: credential.clone(),
        decode: true,
        reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
    };
    let devices = super::DeviceCatalog::synthetic();
    let mut session = RoomSession::join(
        rt.handle(),
        &egui::Context::default(),
        config,
        super::CredentialSource::Ready(credential),
        Some(synthetic_media()),
        devices.clone(),
        String::new(),
        crate::client::TurnConfig::default(),
    );
    session.phase = super::Phase::Joined;
    if let Some(local) = &mut session.local {
        local.stream_id = Some(StreamId(1000));
    }
    for (i, peer) in peers.iter().enumerate() {
        let user_id = UserId(format!("user{i}"));
        session.users.insert(
            user_id.clone(),
            UserInfo {
                user_id: user_id.clone(),
                user_name: peer.name.clone(),
                role: if peer.publishes {
                    Role::Joiner
                } else {
                    Role::Player
                },
            },
        );
        if !peer.publishes {
            continue;
        }
        let id = StreamId(i as u64 + 1);
        let info = StreamInfo {
            stream_id: id,
            user_id,
            audio: true,
            video: Some(crate::protocol::VideoInfo {
                width: 640,
                height: 360,
                frame_rate: 15,
            }),
            audio_muted: false,
            video_muted: false,
            is_screen: false,
            resolutions: Vec::new(),
        };
        session.streams.insert(id, info.clone());
        let (_tx, audio_rx) = crossbeam_channel::bounded(1);
        let stream = RemoteStream {
            info,
            video: std::sync::Arc::new(crate::client::VideoSlot::default()),
            audio_rx,
            stats: Default::default(),
            ended: Default::default(),
            tap: Default::default(),
            frames: crate::client::FrameLogs::default().attach(id, "test"),
        };
        let tap = super::AudioTap::start(&stream, devices.open_playout(""), 1.0, || {})
            .expect("audio tap");
        session
            .tiles
            .insert(id, super::RemoteTile::new(stream, Some(tap)));
    }
    FakeRoom { _rt: rt, session }
}

/// `n` publishing peers named "Peer 1".., the first one `first_name`.
pub fn peers(n: usize, first_name: &str) -> Vec<FakePeer> {
    (0..n)
        .map(|i| FakePeer {
            name: if i == 0 {
                first_name.to_owned()
            } else {
                format!("Peer {}", i + 1)
            },
            publishes: true,
        })
        .collect()
}
