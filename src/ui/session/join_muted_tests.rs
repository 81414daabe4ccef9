//! Issue 16: "join with mic and/or camera off". The lobby's choice mutes the
//! stream as soon as it is published: the others see it muted (their
//! `StreamAdded`/`StreamUpdated` say so) and our bar shows "Unmute mic" and
//! "Start camera". A real server on loopback, a real second client.

use std::time::{Duration, Instant};

use super::test_support::{APP, KEY, poll_until, synthetic_media};
use super::*;
use crate::auth::AppRegistry;
use crate::protocol::{AppId, RoomId};
use crate::server::{Server, ServerConfig};

#[test]
fn joining_with_mic_and_camera_off_publishes_muted() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut apps = AppRegistry::new();
    apps.insert(APP.to_owned(), KEY.to_owned());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(Server::new(ServerConfig::new(apps)).run(listener, std::future::pending()));
    let credential = Credential::AppKey {
        key: KEY.into(),
        valid_for: Duration::from_secs(600),
    };
    let config = |user: &str| JoinConfig {
        server_url: format!("ws://{addr}"),
        app_id: AppId(APP.into()),
        room_id: RoomId("ui-muted".into()),
        user_id: UserId(user.into()),
        user_name: user.into(),
        role: Role::Joiner,
        credential: credential.clone(),
        decode: false,
        reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
    };
    let bob = rt.block_on(async {
        let bob = Client::new();
        bob.join(config("bob")).await.expect("bob joins");
        bob
    });
    let mut media = synthetic_media();
    media.start_audio_muted = true;
    media.start_video_muted = true;
    let mut session = RoomSession::join(
        rt.handle(),
        &egui::Context::default(),
        config("me"),
        CredentialSource::Ready(credential),
        Some(media),
        DeviceCatalog::synthetic(),
        String::new(),
        crate::client::TurnConfig::default(),
    );
    let local = session.local.as_ref().expect("publishing");
    assert!(
        local.audio_muted && local.video_muted,
        "the bar shows muted at once"
    );
    poll_until(&mut session, Duration::from_secs(15), "published", |s| {
        s.local.as_ref().is_some_and(|l| l.stream_id.is_some())
    });
    // Bob sees our stream muted (added muted, or updated to muted at once).
    let first = session.local.as_ref().and_then(|l| l.stream_id);
    sees_muted(&bob, first.expect("published"));
    // Watch only, then back on stage: the new stream is muted too.
    session.switch_role(Role::Player, None);
    poll_until(&mut session, Duration::from_secs(10), "player", |s| {
        s.role == Role::Player && !s.switching_role
    });
    let mut media = synthetic_media();
    media.start_audio_muted = true;
    media.start_video_muted = true;
    session.switch_role(Role::Joiner, Some(media));
    poll_until(&mut session, Duration::from_secs(15), "on stage", |s| {
        s.role == Role::Joiner && s.local.as_ref().is_some_and(|l| l.stream_id.is_some())
    });
    let second = session.local.as_ref().and_then(|l| l.stream_id);
    assert_ne!(second, first);
    sees_muted(&bob, second.expect("published again"));
    let local = session.local.as_ref().expect("publishing");
    assert!(local.audio_muted && local.video_muted);
    assert!(session.take_errors().is_empty());
}

/// Waits (10 s) until `bob` sees stream `id` with audio and video muted.
fn sees_muted(bob: &Client, id: StreamId) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = bob
            .events()
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("stream {} muted, within 10 s", id.0));
        if let RoomEvent::StreamAdded(s) | RoomEvent::StreamUpdated(s) = &event
            && s.stream_id == id
            && s.audio_muted
            && s.video_muted
        {
            return;
        }
    }
}
