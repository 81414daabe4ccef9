//! The server's room limits: a join that would create one room too many gets
//! 90100205, a join into a full room gets 90100217, and replacing your own
//! user id does not count against the room's limit. Issue 9, item 12.
#![cfg(feature = "client")]

mod common;

use common::*;
use huddle::protocol::{ErrorCode, Reply, ServerMessage};
use huddle::server::ServerConfig;

fn refused_with(message: ServerMessage) -> ErrorCode {
    match message {
        ServerMessage::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn joined(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::Reply {
            reply: Reply::Joined { .. },
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_beyond_max_rooms_gets_90100205() {
    let mut config = ServerConfig::new(test_apps());
    config.limits.max_rooms = 2;
    let server = start_server_with(config).await;
    let mut a = RawSocket::connect(&server).await;
    assert!(joined(&a.join("room-1", "a").await));
    let mut b = RawSocket::connect(&server).await;
    assert!(joined(&b.join("room-2", "b").await));

    let mut c = RawSocket::connect(&server).await;
    assert_eq!(
        refused_with(c.join("room-3", "c").await),
        ErrorCode::NoSfuResource
    );
    // Joining a room that exists is fine at the limit.
    let mut d = RawSocket::connect(&server).await;
    assert!(joined(&d.join("room-1", "d").await));
    assert_eq!(server.server.metrics().rooms, 2);

    // Once a room is gone, a new one may be created.
    b.send(r#"{"id":2,"type":"leave"}"#).await;
    b.until_close(std::time::Duration::from_secs(5)).await;
    let mut e = RawSocket::connect(&server).await;
    assert!(joined(&e.join("room-3", "e").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_into_a_full_room_gets_90100217_but_replacing_yourself_is_allowed() {
    let mut config = ServerConfig::new(test_apps());
    config.limits.max_users_per_room = 2;
    let server = start_server_with(config).await;
    let mut a = RawSocket::connect(&server).await;
    assert!(joined(&a.join("room-full", "a").await));
    let mut b = RawSocket::connect(&server).await;
    assert!(joined(&b.join("room-full", "b").await));

    let mut c = RawSocket::connect(&server).await;
    assert_eq!(
        refused_with(c.join("room-full", "c").await),
        ErrorCode::OverloadRoomCapacity
    );
    // The refused connection is still usable: another room has space.
    assert!(joined(&c.join("room-other", "c").await));

    let mut b2 = RawSocket::connect(&server).await;
    assert!(joined(&b2.join("room-full", "b").await), "b replaces b");
    assert_eq!(server.server.metrics().users, 3);
}
