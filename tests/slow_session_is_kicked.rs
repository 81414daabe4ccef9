//! A session that does not read its socket falls behind its room: once its
//! inbox is full it is kicked (`client-banned`, reason 1), leaves the room at
//! once (the others see `peer-leave` with reason 1) and is closed; the room
//! carries on. Issue 9, item 12.
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use huddle::protocol::{Event, LeaveReason, Reply, ServerMessage, StreamId};
use huddle::server::ServerConfig;

/// A server whose rate limit does not get in the way of a flood.
fn unlimited() -> ServerConfig {
    let mut config = ServerConfig::new(test_apps());
    config.limits.requests_per_second = 1_000_000;
    config.limits.request_burst = 1_000_000;
    config
}

/// Alice publishes (audio only) and returns her stream id.
async fn publish(alice: &mut RawSocket) -> (huddle::link::PeerLink, StreamId) {
    let (link, offer) = publish_offer(true, false).await;
    alice
        .send(&format!(
            r#"{{"id":2,"type":"publish","audio":true,"video":null,"sdp":{}}}"#,
            json_string(&offer)
        ))
        .await;
    let (stream_id, answer) = alice
        .recv_until(Duration::from_secs(10), "published", |m| match m {
            ServerMessage::Reply {
                reply: Reply::Published { stream_id, sdp, .. },
                ..
            } => Some((*stream_id, sdp.clone())),
            ServerMessage::Error(e) => panic!("publish refused: {e:?}"),
            _ => None,
        })
        .await;
    // Connected, so the stream outlives a long flood.
    link.apply_answer(answer).await.expect("apply the answer");
    (link, stream_id)
}

/// Alice toggles her mute state in batches (every toggle is a
/// `stream-updated` for everyone else) until she sees `slow` leave; returns
/// the leave reason.
async fn flood_until_slow_leaves(alice: &mut RawSocket, stream_id: StreamId) -> LeaveReason {
    const BATCH: u64 = 256;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut id = 100;
    while Instant::now() < deadline {
        for _ in 0..BATCH {
            id += 1;
            alice
                .send(&format!(
                    r#"{{"id":{id},"type":"update-stream","streamId":{},"audioMuted":{},"videoMuted":false}}"#,
                    stream_id.0,
                    id % 2 == 0
                ))
                .await;
        }
        let mut left = None;
        let mut replies = 0;
        while replies < BATCH {
            alice
                .recv_until(Duration::from_secs(10), "a reply", |m| match m {
                    ServerMessage::Event {
                        event: Event::PeerLeave { user_id, reason },
                    } if user_id.as_str() == "slow" => {
                        left = Some(*reason);
                        None
                    }
                    ServerMessage::Reply {
                        reply: Reply::Ok, ..
                    } => Some(()),
                    ServerMessage::Error(e) => panic!("update-stream refused: {e:?}"),
                    _ => None,
                })
                .await;
            replies += 1;
        }
        if let Some(reason) = left {
            eprintln!("the slow session left after {} updates", id - 100);
            return reason;
        }
    }
    panic!(
        "the slow session was never kicked ({} updates sent)",
        id - 100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_does_not_read_is_kicked_and_leaves_while_the_room_carries_on() {
    let server = start_server_with(unlimited()).await;
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-slow", "alice").await;
    let (link, stream_id) = publish(&mut alice).await;
    let mut slow = RawSocket::connect_with_small_receive_buffer(&server.url, 4096).await;
    slow.joined("room-slow", "slow").await;

    // The slow session stops reading; the others see it leave, kicked, while
    // it still has not read a byte.
    let reason = flood_until_slow_leaves(&mut alice, stream_id).await;
    assert_eq!(reason, LeaveReason::ServerException);
    assert_eq!(server.server.metrics().users, 1);

    // When it reads again, it finds what was queued, then client-banned (1),
    // then the close frame.
    let before = slow.until_close(Duration::from_secs(10)).await;
    assert!(
        matches!(
            before.last(),
            Some(ServerMessage::Event {
                event: Event::ClientBanned {
                    reason: LeaveReason::ServerException
                }
            })
        ),
        "client-banned (1) last before the close frame; got {} messages ending {:?}",
        before.len(),
        before.last()
    );

    // The room carries on.
    alice.ping(7).await;
    let mut carol = RawSocket::connect(&server).await;
    match carol.join("room-slow", "carol").await {
        ServerMessage::Reply {
            reply: Reply::Joined { users, streams, .. },
            ..
        } => {
            let names: Vec<_> = users.iter().map(|u| u.user_id.as_str()).collect();
            assert_eq!(names, ["alice"]);
            assert_eq!(streams.len(), 1);
        }
        other => panic!("join failed: {other:?}"),
    }
    link.close().await;
}

/// A session that never reads again must not hang around: its goodbye is
/// bounded by `send_timeout`, after which the session is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_never_reads_again_is_gone_within_the_send_timeout() {
    let mut config = unlimited();
    config.limits.send_timeout = Duration::from_millis(500);
    let server = start_server_with(config).await;
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-stuck", "alice").await;
    let (link, stream_id) = publish(&mut alice).await;
    let mut slow = RawSocket::connect_with_small_receive_buffer(&server.url, 4096).await;
    slow.joined("room-stuck", "slow").await;
    assert_eq!(server.server.metrics().sessions, 2);

    let reason = flood_until_slow_leaves(&mut alice, stream_id).await;
    // Kicked for its full inbox, or cut off by the send timeout first: either
    // way it is out of the room, and its session ends.
    assert!(
        [LeaveReason::ServerException, LeaveReason::ReconnectTimeout].contains(&reason),
        "{reason:?}"
    );
    wait_for(Duration::from_secs(5), "the stuck session to end", || {
        (server.server.metrics().sessions == 1).then_some(())
    })
    .await;
    drop(slow);
    link.close().await;
}
