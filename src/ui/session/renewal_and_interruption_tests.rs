//! The app's side of issue 11 §2 and §3, end to end against a real server:
//! a session joined with a signature from a signature URL renews it from
//! there when warned and outlives the first signature, and a remote tile
//! shows "interrupted" while its publisher's camera stalls.

use std::time::Duration;

use super::*;
use crate::auth::AppRegistry;
use crate::protocol::{AppId, RoomId};
use crate::server::{Server, ServerConfig};

use super::test_support::{APP, KEY, poll_until};

#[test]
fn a_signature_from_a_url_is_renewed_and_a_stalled_camera_shows_on_its_tile() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut apps = AppRegistry::new();
    apps.insert(APP.to_owned(), KEY.to_owned());
    let mut config = ServerConfig::new(apps);
    config.signature_expiry_notice = Duration::from_secs(2);
    let server = Server::new(config);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(server.run(listener, std::future::pending()));

    // A publisher whose camera will stall.
    let (publisher, pause) = rt.block_on(async {
        let client = Client::new();
        client
            .join(JoinConfig {
                server_url: format!("ws://{addr}"),
                app_id: AppId(APP.into()),
                room_id: RoomId("ui-room".into()),
                user_id: UserId("bob".into()),
                user_name: "Bob".into(),
                role: crate::client::Role::Joiner,
                credential: Credential::AppKey {
                    key: KEY.into(),
                    valid_for: Duration::from_secs(600),
                },
                decode: true,
                reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
            })
            .await
            .expect("bob joins");
        let stream =
            LocalStream::synthetic(VideoProfile::default(), AudioProfile::default(), 440.0);
        let pause = stream.frame_pause();
        client.publish(stream).await.expect("bob publishes");
        (client, pause)
    });

    // The app joins with a signature from the server's URL that runs out in
    // 4 s (the URL's own `ctime`); it renews from the plain URL.
    let first_ctime = crate::auth::now_unix() + 4;
    let config = JoinConfig {
        server_url: format!("ws://{addr}"),
        app_id: AppId(APP.into()),
        room_id: RoomId("ui-room".into()),
        user_id: UserId("me".into()),
        user_name: "Me".into(),
        role: crate::client::Role::Player,
        credential: Credential::Signature {
            ctime: 0,
            signature: String::new(),
        },
        decode: true,
        reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
    };
    let mut session = RoomSession::join(
        rt.handle(),
        &egui::Context::default(),
        config,
        CredentialSource::Fetch {
            url: format!("http://{addr}/signature?ctime={first_ctime}"),
            token: String::new(),
        },
        None,
        DeviceCatalog::synthetic(),
        String::new(),
        crate::client::TurnConfig::default(),
    );
    // The renewal must not ask for the same short ctime again.
    if let Some(renewal) = &mut session.renewal {
        renewal.url = format!("http://{addr}/signature");
    }
    poll_until(
        &mut session,
        Duration::from_secs(15),
        "a tile with video",
        |s| {
            s.phase == Phase::Joined
                && s.tiles
                    .values()
                    .any(|t| t.stream.stats().frames_decoded >= 5)
        },
    );

    // Past the first signature's ctime: still in the room, nothing went wrong.
    poll_until(
        &mut session,
        Duration::from_secs(20),
        "the first ctime to pass",
        |_| crate::auth::now_unix() >= first_ctime + 2,
    );
    let errors = session.take_errors();
    assert_eq!(session.phase, Phase::Joined, "{errors:?}");
    assert!(errors.is_empty(), "{errors:?}");

    // The camera stalls: the tile says so; it comes back: the mark goes.
    pause.set_paused(true);
    poll_until(
        &mut session,
        Duration::from_secs(15),
        "an interrupted tile",
        |s| s.tiles.values().any(|t| t.interrupted),
    );
    pause.set_paused(false);
    poll_until(
        &mut session,
        Duration::from_secs(15),
        "the tile to recover",
        |s| s.tiles.values().all(|t| !t.interrupted),
    );
    session.leave();
    rt.block_on(async { publisher.leave().await.ok() });
}
