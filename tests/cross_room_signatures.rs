//! Issue 15 §1, the relays' own lifetimes: each room relayed into holds its
//! own signature, which runs out on its own (the relay there ends, reason 6,
//! and nothing else does) unless renewed for that room; and a relayed
//! stream whose publish link fails is published again and relayed again,
//! without the application doing anything.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{
    Client, ClientError, ConnectionState, Credential, RemoteStream, RoomEvent, SubscribeOptions,
};
use huddle::protocol::{ErrorCode, LeaveReason, Role, RoomId, StreamId};
use huddle::server::ServerConfig;

const SLOW: Duration = Duration::from_secs(40);
/// The server warns this long before a signature's ctime.
const NOTICE: Duration = Duration::from_secs(2);

fn app_key(valid_for: Duration) -> Credential {
    Credential::AppKey {
        key: APP_KEY.into(),
        valid_for,
    }
}

fn room(id: &str) -> RoomId {
    RoomId(id.into())
}

/// A signature for `user` in `room` that expires `secs` from now.
fn expiring(room: &str, user: &str, secs: u64) -> (u64, Credential) {
    let ctime = huddle::auth::now_unix() + secs;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime);
    (ctime, Credential::Signature { ctime, signature })
}

async fn short_notice_server() -> TestServer {
    let mut config = ServerConfig::new(test_apps());
    config.signature_expiry_notice = NOTICE;
    start_server_with(config).await
}

async fn join_as(server: &TestServer, room: &str, user: &str, role: Role) -> Client {
    let client = Client::new();
    client
        .join(join_config(server, room, user, role))
        .await
        .expect("join");
    client
}

async fn decodes(remote: &RemoteStream, n: u64, what: &str) {
    let start = remote.stats().frames_decoded;
    wait_for(SLOW, what, || {
        (remote.stats().frames_decoded >= start + n).then_some(())
    })
    .await;
}

fn server_code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server { code, .. }) => code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The next relay warning for `room`: its `ctime` and whether the SDK renews.
async fn relay_warned(client: &Client, room: &str) -> (u64, bool) {
    wait_event(client, SLOW, "a relay's signature-expired", |e| match e {
        RoomEvent::CrossRoom { room_id, event } if room_id.as_str() == room => {
            match event.as_ref() {
                RoomEvent::SignatureExpired {
                    ctime, renewing, ..
                } => Some((*ctime, *renewing)),
                _ => None,
            }
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_signature_runs_out_alone_and_a_renewal_for_its_room_keeps_it() {
    let server = short_notice_server().await;
    let alice = join_as(&server, "xs-a", "alice", Role::Joiner).await;
    let watcher_a = join_as(&server, "xs-a", "watcher-a", Role::Player).await;
    let viewer_b = join_as(&server, "xs-b", "viewer-b", Role::Player).await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");

    let (ctime_b, into_b) = expiring("xs-b", "alice", 5);
    let (ctime_c, into_c) = expiring("xs-c", "alice", 5);
    alice
        .start_cross_room_relay(room("xs-b"), stream, into_b)
        .await
        .expect("relay into B");
    alice
        .start_cross_room_relay(room("xs-c"), stream, into_c)
        .await
        .expect("relay into C");
    let in_a = watcher_a
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe in A");
    let in_b = viewer_b
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe in B");
    decodes(&in_b, 10, "B decodes alice").await;

    // Each relay room is warned about by itself; the signatures are not
    // keys, so the application renews.
    let (warned, renewing) = relay_warned(&alice, "xs-b").await;
    assert_eq!((warned, renewing), (ctime_b, false));
    // Refused renewals change nothing: a wrong signature, a room without a
    // relay, another room's signature.
    let fresh = huddle::auth::now_unix() + 3600;
    assert_eq!(
        server_code(
            alice
                .renew_cross_room_signature(room("xs-b"), fresh, "00".repeat(32))
                .await
        ),
        ErrorCode::SignatureInvalid
    );
    assert_eq!(
        alice
            .renew_cross_room_signature(room("xs-nowhere"), fresh, "00".repeat(32))
            .await
            .unwrap_err()
            .code(),
        ErrorCode::InvalidOperation
    );
    let for_c = huddle::auth::sign(APP_KEY, APP_ID, "xs-c", "alice", fresh);
    assert_eq!(
        server_code(
            alice
                .renew_cross_room_signature(room("xs-b"), fresh, for_c)
                .await
        ),
        ErrorCode::SignatureInvalid
    );
    let for_b = huddle::auth::sign(APP_KEY, APP_ID, "xs-b", "alice", fresh);
    alice
        .renew_cross_room_signature(room("xs-b"), fresh, for_b)
        .await
        .expect("renew B");

    // C was not renewed: its relay ends at its ctime, reason 6, and only it.
    let stopped = wait_event(&alice, SLOW, "C's relay stopped", |e| match e {
        RoomEvent::CrossRoomRelayStopped { room_id, reason } => Some((room_id.clone(), *reason)),
        _ => None,
    })
    .await;
    assert_eq!(stopped, (room("xs-c"), LeaveReason::SignatureExpired));
    assert!(huddle::auth::now_unix() > ctime_c, "not before C's ctime");
    assert_eq!(server.server.metrics().cross_room_relays, 1);
    // Past B's old ctime, B's relay and the own room carry on.
    wait_for(SLOW, "B's old ctime to pass", || {
        (huddle::auth::now_unix() >= ctime_b + 2).then_some(())
    })
    .await;
    decodes(&in_b, 15, "B still decodes alice").await;
    decodes(&in_a, 15, "A still decodes alice").await;
    assert_eq!(server.server.metrics().cross_room_relays, 1);
    assert_eq!(alice.connection_state(), ConnectionState::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_key_relay_is_renewed_by_the_sdk() {
    let server = short_notice_server().await;
    let alice = join_as(&server, "xk-a", "alice", Role::Joiner).await;
    let viewer_b = join_as(&server, "xk-b", "viewer-b", Role::Player).await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    // A key whose signatures last 5 s: warned 2 s before, renewed each time.
    alice
        .start_cross_room_relay(room("xk-b"), stream, app_key(Duration::from_secs(5)))
        .await
        .expect("relay into B");
    let in_b = viewer_b
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe in B");
    let (first, renewing) = relay_warned(&alice, "xk-b").await;
    assert!(renewing, "an app key renews by itself");
    let (second, _) = relay_warned(&alice, "xk-b").await;
    assert!(
        second > first,
        "renewed: the next warning is for a later ctime"
    );
    wait_for(SLOW, "the first ctime to pass", || {
        (huddle::auth::now_unix() >= first + 2).then_some(())
    })
    .await;
    decodes(&in_b, 10, "B still decodes alice").await;
    assert_eq!(server.server.metrics().cross_room_relays, 1);
    while let Ok(e) = alice.events().try_recv() {
        assert!(
            !matches!(e, RoomEvent::CrossRoomRelayStopped { .. }),
            "the relay never stopped: {e:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_stream_published_again_after_its_link_failed_is_relayed_again() {
    let server = start_server().await;
    let alice = join_as(&server, "xf-a", "alice", Role::Joiner).await;
    let viewer_b = join_as(&server, "xf-b", "viewer-b", Role::Player).await;
    let old_id = alice.publish(synthetic(440.0)).await.expect("publish");
    alice
        .start_cross_room_relay(room("xf-b"), old_id, app_key(Duration::from_secs(3600)))
        .await
        .expect("relay into B");
    let old_remote = viewer_b
        .subscribe(old_id, SubscribeOptions::default())
        .await
        .expect("subscribe in B");
    decodes(&old_remote, 5, "B decodes alice").await;
    while alice.events().try_recv().is_ok() {}

    assert!(
        alice
            .fail_publish_link(old_id)
            .await
            .expect("fail the link")
    );
    let new_id: StreamId = wait_event(&alice, SLOW, "republished", |e| match e {
        RoomEvent::LocalStreamRepublished {
            previous,
            stream_id,
        } if *previous == old_id => Some(*stream_id),
        _ => None,
    })
    .await;
    // B sees the new stream from alice, and decodes it.
    let added = wait_event(&viewer_b, SLOW, "the new stream in B", |e| match e {
        RoomEvent::StreamAdded(info) if info.stream_id == new_id => Some(info.clone()),
        _ => None,
    })
    .await;
    assert_eq!(added.user_id.as_str(), "alice");
    let new_remote = viewer_b
        .subscribe(new_id, SubscribeOptions::default())
        .await
        .expect("subscribe to the relayed-again stream");
    decodes(&new_remote, 10, "B decodes the new stream").await;
    assert_eq!(server.server.metrics().cross_room_relays, 1);
    // The late stop of the old relay did not end the new one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(e) = alice.events().try_recv() {
        assert!(
            !matches!(e, RoomEvent::CrossRoomRelayStopped { .. }),
            "the relay never stopped for the application: {e:?}"
        );
    }
    assert_eq!(server.server.metrics().cross_room_relays, 1);
    decodes(&new_remote, 10, "B still decodes").await;
}
