//! Signed joins (seed 001 chapter 4) and roles: every refusal carries its seed
//! error code, and the server keeps serving everyone else.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{ClientError, Credential, RoomEvent};
use huddle::protocol::{AppId, ErrorCode, LeaveReason, Role, RoomId, UserId};

fn code_of(result: Result<impl std::fmt::Debug, ClientError>) -> ErrorCode {
    match result {
        Err(e) => e.code(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_and_ids_get_their_codes_and_others_are_unaffected() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-auth", "alice").await;
    let now = huddle::auth::now_unix();

    let attempt = |mutate: &dyn Fn(&mut huddle::client::JoinConfig)| {
        let mut config = join_config(&server, "room-auth", "mallory", Role::Joiner);
        mutate(&mut config);
        let client = huddle::client::Client::new();
        async move { client.join(config).await }
    };

    // A signature made with the wrong key.
    let code = code_of(
        attempt(&|c| {
            c.credential = Credential::AppKey {
                key: "wrong-key".into(),
                valid_for: Duration::from_secs(600),
            }
        })
        .await,
    );
    assert_eq!(code, ErrorCode::SignatureInvalid);

    // A correct signature whose ctime has passed.
    let expired = now - 10;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, "room-auth", "mallory", expired);
    let code = code_of(
        attempt(&|c| {
            c.credential = Credential::Signature {
                ctime: expired,
                signature: signature.clone(),
            }
        })
        .await,
    );
    assert_eq!(code, ErrorCode::SignatureExpired);

    // ctime more than 12 h ahead.
    let far = now + 13 * 3600;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, "room-auth", "mallory", far);
    let code = code_of(
        attempt(&|c| {
            c.credential = Credential::Signature {
                ctime: far,
                signature: signature.clone(),
            }
        })
        .await,
    );
    assert_eq!(code, ErrorCode::SignatureInvalid);

    // An app the server does not know.
    let code = code_of(attempt(&|c| c.app_id = AppId("no-such-app".into())).await);
    assert_eq!(code, ErrorCode::SignatureInvalid);

    // Malformed ids and names.
    let code = code_of(attempt(&|c| c.room_id = RoomId("bad room!".into())).await);
    assert_eq!(code, ErrorCode::InvalidParameter);
    let code = code_of(attempt(&|c| c.user_id = UserId("x".repeat(65))).await);
    assert_eq!(code, ErrorCode::InvalidParameter);
    let code = code_of(attempt(&|c| c.user_name = "n".repeat(257)).await);
    assert_eq!(code, ErrorCode::InvalidParameter);

    // Nobody got in, and the room still works for a good join.
    let (bob, info) = join(&server, "room-auth", "bob").await;
    let users: Vec<_> = info
        .users
        .iter()
        .map(|u| u.user_id.as_str().to_owned())
        .collect();
    assert_eq!(users, vec!["alice"]);
    wait_event(
        &alice,
        Duration::from_secs(5),
        "peer-join bob",
        |e| match e {
            RoomEvent::PeerJoin(u) if u.user_id.as_str() == "bob" => Some(()),
            RoomEvent::PeerJoin(u) => panic!("{} should not have joined", u.user_id),
            _ => None,
        },
    )
    .await;
    bob.leave().await.expect("leave");
    alice.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_cannot_publish() {
    let server = start_server().await;
    let player = huddle::client::Client::new();
    player
        .join(join_config(&server, "room-roles", "viewer", Role::Player))
        .await
        .expect("players may join");
    let code = code_of(player.publish(synthetic(440.0)).await);
    assert_eq!(code, ErrorCode::RoleNoPermission);
    assert_eq!(
        server.server.metrics().peer_connections,
        0,
        "the refused offer left no link"
    );
    // Still in the room: a second client sees the player.
    let (other, info) = join(&server, "room-roles", "other").await;
    assert_eq!(info.users.len(), 1);
    assert_eq!(info.users[0].role, Role::Player);
    other.leave().await.expect("leave");
    player.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_user_joining_again_kicks_the_older_session() {
    let server = start_server().await;
    let (watcher, _) = join(&server, "room-dup", "watcher").await;
    let (first, _) = join(&server, "room-dup", "dup").await;
    first.publish(synthetic(440.0)).await.expect("publish");
    wait_event(
        &watcher,
        Duration::from_secs(5),
        "the first session's stream",
        |e| matches!(e, RoomEvent::StreamAdded(_)).then_some(()),
    )
    .await;

    let (second, info) = join(&server, "room-dup", "dup").await;
    assert!(
        info.streams.is_empty(),
        "the kicked session's stream is gone"
    );

    let reason = wait_event(
        &first,
        Duration::from_secs(5),
        "client-banned",
        |e| match e {
            RoomEvent::ClientBanned { reason } => Some(*reason),
            _ => None,
        },
    )
    .await;
    assert_eq!(reason, LeaveReason::Banned);

    // The watcher sees the stream go, the old session leave with reason 5, then the new one join.
    let mut seen = Vec::new();
    wait_for(Duration::from_secs(5), "removed, leave(5), join", || {
        while let Ok(e) = watcher.events().try_recv() {
            match e {
                RoomEvent::StreamRemoved { .. } => seen.push("removed".to_owned()),
                RoomEvent::PeerLeave { user_id, reason } => {
                    seen.push(format!("leave {user_id} {}", reason.code()))
                }
                RoomEvent::PeerJoin(u) => seen.push(format!("join {}", u.user_id)),
                _ => {}
            }
        }
        (seen.len() >= 3).then_some(())
    })
    .await;
    assert_eq!(seen, vec!["removed", "leave dup 5", "join dup"]);
    let m = server.server.metrics();
    assert_eq!(m.users, 2, "watcher and the new dup");

    second.leave().await.expect("leave");
    watcher.leave().await.expect("leave");
}
