//! Streams and users come and go; the server tells the others and keeps nothing
//! behind (counted through its metrics: sessions, peer connections, tasks).
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use huddle::client::{RoomEvent, SubscribeOptions};
use huddle::protocol::{LeaveReason, ServerMessage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_removes_the_stream_and_leave_announces_the_peer() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-life", "alice").await;
    let (bob, _) = join(&server, "room-life", "bob").await;
    wait_event(
        &alice,
        Duration::from_secs(5),
        "peer-join bob",
        |e| match e {
            RoomEvent::PeerJoin(user) if user.user_id.as_str() == "bob" => Some(()),
            _ => None,
        },
    )
    .await;

    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(10), "first frames", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;
    assert_eq!(
        server.server.metrics().peer_connections,
        2,
        "one publish leg, one subscription leg"
    );

    alice.unpublish(stream_id).await.expect("unpublish");
    let (removed, by) = wait_event(
        &bob,
        Duration::from_secs(5),
        "stream-removed",
        |e| match e {
            RoomEvent::StreamRemoved { stream_id, user_id } => Some((*stream_id, user_id.clone())),
            _ => None,
        },
    )
    .await;
    assert_eq!(removed, stream_id);
    assert_eq!(by.as_str(), "alice");
    wait_for(Duration::from_secs(5), "the subscription to end", || {
        remote.is_ended().then_some(())
    })
    .await;
    wait_for(
        Duration::from_secs(5),
        "both legs closed on the server",
        || (server.server.metrics().peer_connections == 0).then_some(()),
    )
    .await;

    alice.leave().await.expect("leave");
    let (who, reason) = wait_event(&bob, Duration::from_secs(5), "peer-leave", |e| match e {
        RoomEvent::PeerLeave { user_id, reason } => Some((user_id.clone(), *reason)),
        _ => None,
    })
    .await;
    assert_eq!(who.as_str(), "alice");
    assert_eq!(reason, LeaveReason::UserExit);

    bob.leave().await.expect("leave");
    let m = wait_for(Duration::from_secs(5), "an empty server", || {
        let m = server.server.metrics();
        (m.sessions == 0 && m.rooms == 0).then_some(m)
    })
    .await;
    assert_eq!(m.users, 0);
    assert_eq!(m.peer_connections, 0);
    wait_for(Duration::from_secs(5), "all SFU tasks to end", || {
        (server.server.metrics().tasks == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_is_a_peer_leave_and_leaves_nothing_behind() {
    // A killed connection is kept for its resume window (issue 11), then
    // leaves with reason 7.
    let window = Duration::from_secs(1);
    let mut config = huddle::server::ServerConfig::new(test_apps());
    config.limits.resume_window = window;
    let server = start_server_with(config).await;
    let (alice, _) = join(&server, "room-kill", "alice").await;
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");

    // Bob joins over a raw socket and subscribes, so a real egress leg exists.
    let mut bob = RawSocket::connect(&server).await;
    bob.joined("room-kill", "bob").await;
    bob.send(&format!(
        r#"{{"id":2,"type":"subscribe","streamId":{},"audio":true,"video":true}}"#,
        stream_id.0
    ))
    .await;
    // Wait for the subscribe reply (the server's offer); events may come first.
    while !matches!(bob.recv().await, ServerMessage::Reply { .. }) {}
    wait_for(Duration::from_secs(5), "two peer connections", || {
        (server.server.metrics().peer_connections == 2).then_some(())
    })
    .await;

    let killed_at = Instant::now();
    bob.kill();
    let (who, reason) = wait_event(
        &alice,
        Duration::from_secs(10),
        "peer-leave after a kill",
        |e| match e {
            RoomEvent::PeerLeave { user_id, reason } => Some((user_id.clone(), *reason)),
            _ => None,
        },
    )
    .await;
    assert_eq!(who.as_str(), "bob");
    assert_eq!(reason, LeaveReason::ReconnectTimeout);
    let after = killed_at.elapsed();
    assert!(
        after >= window,
        "peer-leave inside the resume window: {after:?}"
    );
    assert!(
        after < window + Duration::from_secs(5),
        "peer-leave took {after:?}"
    );
    wait_for(Duration::from_secs(5), "the egress leg to close", || {
        let m = server.server.metrics();
        (m.peer_connections == 1 && m.sessions == 1).then_some(())
    })
    .await;

    alice.leave().await.expect("leave");
    wait_for(Duration::from_secs(5), "nothing left", || {
        let m = server.server.metrics();
        (m.sessions == 0 && m.peer_connections == 0 && m.tasks == 0 && m.rooms == 0).then_some(())
    })
    .await;
}
