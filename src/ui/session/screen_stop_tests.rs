//! The app on the SDK's `ScreenSharingStopped` (seed
//! `screen-sharing-stopped`): our share ends and the user is told; an event
//! for another stream changes nothing. The SDK side (the window closed, the
//! share unpublished, the viewer told) is `tests/screen_sharing.rs`.

use super::super::screen_share::ShareState;
use super::*;

#[test]
fn our_share_stopped_by_the_sdk_ends_it_and_says_why() {
    // Never driven: the join task never runs; the test feeds the events.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let credential = Credential::AppKey {
        key: "key".into(),
        valid_for: std::time::Duration::from_secs(60),
    };
    let config = JoinConfig {
        server_url: "ws://127.0.0.1:9".into(),
        app_id: crate::protocol::AppId("app".into()),
        room_id: crate::protocol::RoomId("room".into()),
        user_id: UserId("me".into()),
        user_name: "Me".into(),
        role: crate::client::Role::Joiner,
        credential: credential.clone(),
        decode: true,
        reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
    };
    let mut session = RoomSession::join(
        rt.handle(),
        &egui::Context::default(),
        config,
        CredentialSource::Ready(credential),
        None,
        DeviceCatalog::synthetic(),
        String::new(),
        crate::client::TurnConfig::default(),
    );
    session.take_errors();
    let sharing = ShareState::Sharing {
        stream_id: StreamId(7),
        label: "a window".into(),
    };
    session.screen_share.state = sharing.clone();

    // Another stream's: not ours, nothing changes.
    session.on_event(RoomEvent::ScreenSharingStopped {
        stream_id: StreamId(8),
    });
    assert_eq!(session.screen_share.state, sharing);
    assert!(session.take_errors().is_empty());

    session.on_event(RoomEvent::ScreenSharingStopped {
        stream_id: StreamId(7),
    });
    assert_eq!(session.screen_share.state, ShareState::Off);
    let told: Vec<_> = session.take_errors().into_iter().map(|n| n.text).collect();
    assert_eq!(told, ["The shared window was closed; sharing stopped."]);
}
