//! Signature expiry and renewal (seed 001 `signature-expired`,
//! `renewSignature`), issue 11 §2: a session is warned before its signature's
//! `ctime`, a renewal keeps it past that `ctime`, a wrong renewal changes
//! nothing, and without a renewal the session is removed with reason 6 while
//! everyone else's media carries on.
//!
//! The server is configured with a 2 s notice and clients join with
//! signatures a few seconds from expiry, so each scenario takes seconds.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{
    Client, ClientError, ConnectionState, Credential, RoomEvent, SubscribeOptions,
};
use huddle::protocol::{ErrorCode, Event, LeaveReason, Role, ServerMessage, UserId};
use huddle::server::ServerConfig;

/// The server warns this long before a signature's ctime.
const NOTICE: Duration = Duration::from_secs(2);

async fn short_notice_server() -> TestServer {
    let mut config = ServerConfig::new(test_apps());
    config.signature_expiry_notice = NOTICE;
    start_server_with(config).await
}

/// Joins `user` with a signature that expires `secs` from now.
async fn join_expiring(server: &TestServer, room: &str, user: &str, secs: u64) -> (Client, u64) {
    let ctime = huddle::auth::now_unix() + secs;
    let mut config = join_config(server, room, user, Role::Joiner);
    config.credential = Credential::Signature {
        ctime,
        signature: huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime),
    };
    let client = Client::new();
    client.join(config).await.expect("join");
    (client, ctime)
}

/// Waits until the wall clock is past the end of second `ctime` (and a margin),
/// the moment a session holding that signature would be removed.
async fn wait_past(ctime: u64) {
    wait_for(Duration::from_secs(30), "the old ctime to pass", || {
        let now = huddle::auth::now_unix();
        (now >= ctime + 2).then_some(())
    })
    .await;
}

fn server_code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server { code, .. }) => code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// A subscriber to `stream` whose decoded frames keep coming.
async fn watching(
    client: &Client,
    stream: huddle::protocol::StreamId,
) -> huddle::client::RemoteStream {
    let remote = client
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(15), "first frames", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;
    remote
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warned_then_renewed_the_session_outlives_its_old_ctime_and_wrong_renewals_change_nothing()
{
    let server = short_notice_server().await;
    let (bob, _) = join(&server, "room-renew", "bob").await;
    let stream = bob.publish(synthetic(440.0)).await.expect("publish");
    let (alice, old_ctime) = join_expiring(&server, "room-renew", "alice", 5).await;

    let (code, ctime, renewing) = wait_event(
        &alice,
        Duration::from_secs(10),
        "signature-expired",
        |e| match e {
            RoomEvent::SignatureExpired {
                code,
                ctime,
                renewing,
                ..
            } => Some((*code, *ctime, *renewing)),
            _ => None,
        },
    )
    .await;
    assert_eq!(code, ErrorCode::SignatureExpired);
    assert_eq!(code.code(), 90100030);
    assert_eq!(ctime, old_ctime, "the event names the expiring ctime");
    assert!(!renewing, "a fixed signature is the application's to renew");

    // Wrong renewals: another key, a signature for another user, an expired
    // ctime, a ctime too far ahead. Each is refused and changes nothing.
    let now = huddle::auth::now_unix();
    let fresh = now + 600;
    let wrong_key = huddle::auth::sign("not-the-key", APP_ID, "room-renew", "alice", fresh);
    assert_eq!(
        server_code(alice.renew_signature(fresh, wrong_key).await),
        ErrorCode::SignatureInvalid
    );
    let bobs = huddle::auth::sign(APP_KEY, APP_ID, "room-renew", "bob", fresh);
    assert_eq!(
        server_code(alice.renew_signature(fresh, bobs).await).code(),
        90100031
    );
    let past = now - 5;
    let expired = huddle::auth::sign(APP_KEY, APP_ID, "room-renew", "alice", past);
    assert_eq!(
        server_code(alice.renew_signature(past, expired).await),
        ErrorCode::SignatureExpired
    );
    let far = now + 13 * 3600;
    let too_far = huddle::auth::sign(APP_KEY, APP_ID, "room-renew", "alice", far);
    assert_eq!(
        server_code(alice.renew_signature(far, too_far).await),
        ErrorCode::SignatureInvalid
    );
    assert_eq!(
        alice.me().await.expect("still in the room").user_id,
        UserId("alice".into())
    );

    // The right renewal: the session lives on past the old ctime.
    let good = huddle::auth::sign(APP_KEY, APP_ID, "room-renew", "alice", fresh);
    alice.renew_signature(fresh, good).await.expect("renewal");
    wait_past(old_ctime).await;
    let remote = watching(&alice, stream).await;
    alice
        .change_user_name("Alice, renewed")
        .await
        .expect("the session still answers");
    let frames = remote.stats().frames_decoded;
    wait_for(Duration::from_secs(10), "more frames", || {
        (remote.stats().frames_decoded >= frames + 10).then_some(())
    })
    .await;
    while let Ok(event) = alice.events().try_recv() {
        assert!(
            !matches!(
                event,
                RoomEvent::ClientBanned { .. } | RoomEvent::SignatureExpired { .. }
            ),
            "renewed, alice must not be warned again or removed: {event:?}"
        );
    }
    while let Ok(event) = bob.events().try_recv() {
        assert!(
            !matches!(event, RoomEvent::PeerLeave { .. }),
            "bob saw alice leave: {event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_renewal_the_session_is_removed_with_reason_6_and_the_others_carry_on() {
    let server = short_notice_server().await;
    let (bob, _) = join(&server, "room-expire", "bob").await;
    let stream = bob.publish(synthetic(440.0)).await.expect("publish");
    let (carol, _) = join(&server, "room-expire", "carol").await;
    let carols = watching(&carol, stream).await;
    let (alice, ctime) = join_expiring(&server, "room-expire", "alice", 4).await;
    let _alices = alice
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("alice subscribes");

    wait_event(&alice, Duration::from_secs(10), "signature-expired", |e| {
        matches!(e, RoomEvent::SignatureExpired { .. }).then_some(())
    })
    .await;
    let reason = wait_event(
        &alice,
        Duration::from_secs(10),
        "client-banned",
        |e| match e {
            RoomEvent::ClientBanned { reason } => Some(*reason),
            _ => None,
        },
    )
    .await;
    assert_eq!(reason, LeaveReason::SignatureExpired);
    assert_eq!(reason.code(), 6);
    assert!(
        huddle::auth::now_unix() > ctime,
        "removed only once ctime had passed"
    );
    wait_event(
        &alice,
        Duration::from_secs(5),
        "disconnected",
        |e| match e {
            RoomEvent::ConnectionStateChanged {
                current: ConnectionState::Disconnected,
                ..
            } => Some(()),
            _ => None,
        },
    )
    .await;
    for (who, client) in [("bob", &bob), ("carol", &carol)] {
        let reason = wait_event(
            client,
            Duration::from_secs(5),
            "peer-leave of alice",
            |e| match e {
                RoomEvent::PeerLeave { user_id, reason } if user_id.0 == "alice" => Some(*reason),
                _ => None,
            },
        )
        .await;
        assert_eq!(reason, LeaveReason::SignatureExpired, "{who}'s peer-leave");
    }

    // Carol still decodes bob's video, and alice is gone from the room.
    let frames = carols.stats().frames_decoded;
    wait_for(
        Duration::from_secs(10),
        "carol's frames after alice left",
        || (carols.stats().frames_decoded >= frames + 15).then_some(()),
    )
    .await;
    assert_eq!(server.server.metrics().users, 2);
    assert!(
        matches!(alice.me().await, Err(ClientError::InvalidOperation(_))),
        "alice is no longer in a room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_key_credential_is_renewed_by_the_sdk() {
    let server = short_notice_server().await;
    let mut config = join_config(&server, "room-auto", "alice", Role::Joiner);
    config.credential = Credential::AppKey {
        key: APP_KEY.into(),
        valid_for: Duration::from_secs(4),
    };
    let joined_ctime = huddle::auth::now_unix() + 4;
    let alice = Client::new();
    alice.join(config).await.expect("join");
    let renewing = wait_event(
        &alice,
        Duration::from_secs(10),
        "signature-expired",
        |e| match e {
            RoomEvent::SignatureExpired { renewing, .. } => Some(*renewing),
            _ => None,
        },
    )
    .await;
    assert!(renewing, "with the app key the SDK renews by itself");
    wait_past(joined_ctime).await;
    alice
        .change_user_name("still here")
        .await
        .expect("the session outlived its first signature");
    while let Ok(event) = alice.events().try_recv() {
        assert!(
            !matches!(
                event,
                RoomEvent::ClientBanned { .. } | RoomEvent::Error { .. }
            ),
            "{event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_signature_bad_input_gets_numbered_errors_and_the_wire_shows_event_and_ban() {
    let server = short_notice_server().await;
    let mut socket = RawSocket::connect(&server).await;

    // Before join: not allowed.
    let ctime = huddle::auth::now_unix() + 600;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, "room-raw", "alice", ctime);
    socket
        .send(&format!(
            r#"{{"id":2,"type":"renew-signature","ctime":{ctime},"signature":"{signature}"}}"#
        ))
        .await;
    assert_eq!(
        expect_error(socket.recv().await),
        (
            Some(huddle::protocol::RequestId(2)),
            ErrorCode::InvalidOperation
        )
    );

    // Join with a signature 3 s from expiry.
    let short = huddle::auth::now_unix() + 3;
    let short_signature = huddle::auth::sign(APP_KEY, APP_ID, "room-raw", "alice", short);
    socket
        .send(&format!(
            r#"{{"id":3,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"room-raw","userId":"alice","ctime":{short},"signature":"{short_signature}"}}"#
        ))
        .await;
    // Everything after the join, events included, in order.
    let mut seen: Vec<ServerMessage> = Vec::new();
    socket
        .recv_until(Duration::from_secs(5), "joined", |m| {
            seen.push(m.clone());
            matches!(m, ServerMessage::Reply { .. }).then_some(())
        })
        .await;

    // Missing or mistyped fields, a signature that is not hex.
    for (id, body) in [
        (4, format!(r#""signature":"{signature}""#)),
        (5, format!(r#""ctime":{ctime}"#)),
        (6, format!(r#""ctime":"soon","signature":"{signature}""#)),
        (7, format!(r#""ctime":{ctime},"signature":42"#)),
    ] {
        socket
            .send(&format!(r#"{{"id":{id},"type":"renew-signature",{body}}}"#))
            .await;
        let error = socket
            .recv_until(Duration::from_secs(5), "the error", |m| {
                seen.push(m.clone());
                matches!(m, ServerMessage::Error(_)).then(|| m.clone())
            })
            .await;
        assert_eq!(
            expect_error(error),
            (
                Some(huddle::protocol::RequestId(id)),
                ErrorCode::InvalidParameter
            ),
            "request {id}"
        );
    }
    socket
        .send(&format!(
            r#"{{"id":8,"type":"renew-signature","ctime":{ctime},"signature":"not hex at all"}}"#
        ))
        .await;
    let error = socket
        .recv_until(Duration::from_secs(5), "the error", |m| {
            seen.push(m.clone());
            matches!(m, ServerMessage::Error(_)).then(|| m.clone())
        })
        .await;
    assert_eq!(
        expect_error(error),
        (
            Some(huddle::protocol::RequestId(8)),
            ErrorCode::SignatureInvalid
        )
    );
    socket.send(r#"{"id":9,"type":"ping"}"#).await;
    socket
        .recv_until(Duration::from_secs(5), "pong", |m| {
            seen.push(m.clone());
            matches!(
                m,
                ServerMessage::Reply {
                    reply: huddle::protocol::Reply::Pong,
                    ..
                }
            )
            .then_some(())
        })
        .await;

    // None of that renewed anything: the event, then the ban, then the close.
    seen.extend(socket.until_close(Duration::from_secs(15)).await);
    let before = seen;
    let warned = before.iter().position(|m| {
        matches!(m, ServerMessage::Event { event: Event::SignatureExpired { code, ctime, .. } }
            if *code == ErrorCode::SignatureExpired && *ctime == short)
    });
    let banned = before.iter().position(|m| {
        matches!(
            m,
            ServerMessage::Event {
                event: Event::ClientBanned {
                    reason: LeaveReason::SignatureExpired
                }
            }
        )
    });
    assert!(
        matches!((warned, banned), (Some(w), Some(b)) if w < b),
        "signature-expired then client-banned (6) before the close: {before:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_switch_carries_a_fresh_signature_and_renews_the_session_too() {
    let server = short_notice_server().await;
    let (alice, old_ctime) = join_expiring(&server, "room-switch", "alice", 5).await;
    wait_event(&alice, Duration::from_secs(10), "signature-expired", |e| {
        matches!(e, RoomEvent::SignatureExpired { .. }).then_some(())
    })
    .await;
    let fresh = huddle::auth::now_unix() + 600;
    let role = alice
        .switch_role(
            Role::Player,
            Credential::Signature {
                ctime: fresh,
                signature: huddle::auth::sign(APP_KEY, APP_ID, "room-switch", "alice", fresh),
            },
        )
        .await
        .expect("switch role");
    assert_eq!(role, Role::Player);
    wait_past(old_ctime).await;
    assert_eq!(
        alice.me().await.expect("still in the room").role,
        Role::Player
    );
    while let Ok(event) = alice.events().try_recv() {
        assert!(
            !matches!(event, RoomEvent::ClientBanned { .. }),
            "{event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_key_that_would_not_outlast_the_signature_is_not_used_to_renew() {
    let server = short_notice_server().await;
    let mut config = join_config(&server, "room-short-key", "alice", Role::Joiner);
    // Signatures made with this key end when the current one does: renewing
    // with one would only be warned about again at once.
    config.credential = Credential::AppKey {
        key: APP_KEY.into(),
        valid_for: Duration::ZERO,
    };
    let alice = Client::new();
    alice.join(config).await.expect("join");
    let renewing = wait_event(
        &alice,
        Duration::from_secs(5),
        "signature-expired",
        |e| match e {
            RoomEvent::SignatureExpired { renewing, .. } => Some(*renewing),
            _ => None,
        },
    )
    .await;
    assert!(!renewing);
    let code = wait_event(&alice, Duration::from_secs(5), "the error", |e| match e {
        RoomEvent::Error { code, .. } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, ErrorCode::SignatureExpired);
    let reason = wait_event(
        &alice,
        Duration::from_secs(10),
        "client-banned",
        |e| match e {
            RoomEvent::ClientBanned { reason } => Some(*reason),
            _ => None,
        },
    )
    .await;
    assert_eq!(reason, LeaveReason::SignatureExpired);
}
