//! Issue 12 §1 in the app: "Watch only" takes us off stage (our stream ends,
//! the others see it removed and our role change), "Join on stage" brings us
//! back publishing, each proved with the join's credential.

use std::time::{Duration, Instant};

use super::*;
use crate::auth::AppRegistry;
use crate::media::{SwitchableAudio, SwitchableVideo, SyntheticAudio, SyntheticVideo};
use crate::protocol::{AppId, RoomId};
use crate::server::{Server, ServerConfig};

use super::test_support::{APP, KEY, poll_until};

/// Synthetic camera and tone, wired as the app wires real devices.
fn synthetic_media() -> LocalMedia {
    let video_profile = VideoProfile::default();
    let audio_profile = AudioProfile::default();
    let slot = Arc::new(VideoSlot::default());
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
    LocalMedia {
        stream: LocalStream::new(
            Some(Box::new(camera)),
            Some(Box::new(mic)),
            video_profile,
            audio_profile,
        ),
        slot,
        camera: camera_switch,
        microphone: mic_switch,
        meter: Arc::new(crate::ui::device_preview::LevelMeter::default()),
        video_profile,
        audio_profile,
        start_audio_muted: false,
        start_video_muted: false,
    }
}

/// The next event of `events` that `want` picks, within 10 s.
fn next_event<T>(
    events: &crossbeam_channel::Receiver<RoomEvent>,
    what: &str,
    mut want: impl FnMut(&RoomEvent) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no {what} within 10 s"));
        if let Some(t) = want(&event) {
            return t;
        }
    }
}

#[test]
fn watch_only_then_back_on_stage() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut apps = AppRegistry::new();
    apps.insert(APP.to_owned(), KEY.to_owned());
    let server = Server::new(ServerConfig::new(apps));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(server.run(listener, std::future::pending()));
    let credential = Credential::AppKey {
        key: KEY.into(),
        valid_for: Duration::from_secs(600),
    };
    let config = |user: &str| JoinConfig {
        server_url: format!("ws://{addr}"),
        app_id: AppId(APP.into()),
        room_id: RoomId("ui-stage".into()),
        user_id: UserId(user.into()),
        user_name: user.into(),
        role: Role::Joiner,
        credential: credential.clone(),
        decode: false,
        reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
    };
    // Bob watches what happens to us.
    let bob = rt.block_on(async {
        let bob = Client::new();
        bob.join(config("bob")).await.expect("bob joins");
        bob
    });
    let mut session = RoomSession::join(
        rt.handle(),
        &egui::Context::default(),
        config("me"),
        CredentialSource::Ready(credential.clone()),
        Some(synthetic_media()),
        DeviceCatalog::synthetic(),
        String::new(),
        crate::client::TurnConfig::default(),
    );
    poll_until(&mut session, Duration::from_secs(15), "published", |s| {
        s.local.as_ref().is_some_and(|l| l.stream_id.is_some())
    });
    let first = session
        .local
        .as_ref()
        .and_then(|l| l.stream_id)
        .expect("id");
    next_event(bob.events(), "our stream-added", |e| {
        matches!(e, RoomEvent::StreamAdded(s) if s.stream_id == first).then_some(())
    });

    session.switch_role(Role::Player, None);
    assert!(session.switching_role, "the control is disabled meanwhile");
    poll_until(&mut session, Duration::from_secs(10), "player", |s| {
        s.role == Role::Player && !s.switching_role
    });
    assert!(session.local.is_none(), "a player shows no self tile");
    next_event(bob.events(), "our stream-removed", |e| {
        matches!(e, RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == first).then_some(())
    });
    next_event(bob.events(), "our role change", |e| match e {
        RoomEvent::PeerRoleChanged { user_id, role } if user_id.0 == "me" => Some(*role),
        _ => None,
    });

    session.switch_role(Role::Joiner, Some(synthetic_media()));
    poll_until(
        &mut session,
        Duration::from_secs(15),
        "on stage again",
        |s| s.role == Role::Joiner && s.local.as_ref().is_some_and(|l| l.stream_id.is_some()),
    );
    let second = session
        .local
        .as_ref()
        .and_then(|l| l.stream_id)
        .expect("id");
    assert_ne!(first, second, "a new stream");
    let role = next_event(bob.events(), "our role change back", |e| match e {
        RoomEvent::PeerRoleChanged { user_id, role } if user_id.0 == "me" => Some(*role),
        _ => None,
    });
    assert_eq!(role, Role::Joiner);
    next_event(bob.events(), "our new stream-added", |e| {
        matches!(e, RoomEvent::StreamAdded(s) if s.stream_id == second).then_some(())
    });
    assert!(session.take_errors().is_empty());
    session.leave();
    rt.block_on(async { bob.leave().await.ok() });
}
