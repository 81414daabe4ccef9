//! Issue 12 §1, roles and names in a room: `switch-role` (seed `switchRole`)
//! with a fresh signature, and `change-user-name` (seed `changeUserName`,
//! event `remote-user-name-changed`). Each change reaches the others as an
//! event and later joiners in their user list; every refusal carries its
//! code and leaves the room and everyone's media as they were.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{Client, ClientError, Credential, RoomEvent, SubscribeOptions};
use huddle::protocol::{ErrorCode, Event, Reply, RequestId, Role, ServerMessage, StreamId};

const WAIT: Duration = Duration::from_secs(10);

fn code_of(result: Result<impl std::fmt::Debug, ClientError>) -> ErrorCode {
    match result {
        Err(e) => e.code(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// A signature made now for `user` in `room`, valid for ten minutes: what an
/// app server hands out for a role switch.
fn fresh_signature(room: &str, user: &str) -> Credential {
    let ctime = huddle::auth::now_unix() + 600;
    Credential::Signature {
        ctime,
        signature: huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime),
    }
}

/// The role and name events `client` has received so far, in order, as
/// short strings (`role alice 2`, `name alice Al`, `removed 3`, `added 4`).
fn membership_events(client: &Client) -> Vec<String> {
    let mut seen = Vec::new();
    while let Ok(event) = client.events().try_recv() {
        match event {
            RoomEvent::PeerRoleChanged { user_id, role } => {
                seen.push(format!("role {user_id} {}", role.code()))
            }
            RoomEvent::RemoteUserNameChanged { user_id, user_name } => {
                seen.push(format!("name {user_id} {user_name}"))
            }
            RoomEvent::StreamRemoved { stream_id, .. } => seen.push(format!("removed {stream_id}")),
            RoomEvent::StreamAdded(info) => seen.push(format!("added {}", info.stream_id)),
            _ => {}
        }
    }
    seen
}

/// Waits until `client` has received `count` role/name/stream events and
/// returns them in order.
async fn next_membership_events(client: &Client, count: usize, what: &str) -> Vec<String> {
    let mut seen = Vec::new();
    wait_for(WAIT, what, || {
        seen.extend(membership_events(client));
        (seen.len() >= count).then_some(())
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joiner_that_becomes_a_player_is_unpublished_and_can_come_back() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-switch", "alice").await;
    let (bob, _) = join(&server, "room-switch", "bob").await;
    let first = alice.publish(synthetic(440.0)).await.expect("publish");
    let remote = bob
        .subscribe(first, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(WAIT, "alice's frames at bob", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;
    membership_events(&bob); // the stream-added that came before

    // To player, with a fresh signature: alice's stream goes first, then bob
    // learns her role.
    let role = alice
        .switch_role(Role::Player, fresh_signature("room-switch", "alice"))
        .await
        .expect("switch to player");
    assert_eq!(role, Role::Player);
    assert_eq!(alice.me().await.expect("me").role, Role::Player);
    let seen = next_membership_events(&bob, 2, "stream-removed, peer-role-changed").await;
    assert_eq!(
        seen,
        vec![format!("removed {first}"), "role alice 2".into()]
    );
    // Her publish link and bob's subscription link are closed on the server.
    wait_for(WAIT, "no links left", || {
        (server.server.metrics().peer_connections == 0).then_some(())
    })
    .await;

    // A player still may not publish.
    let code = code_of(alice.publish(synthetic(440.0)).await);
    assert_eq!(code, ErrorCode::RoleNoPermission);
    assert_eq!(server.server.metrics().peer_connections, 0);

    // Back to joiner (signed with the key this time): publishing works again.
    let key = Credential::AppKey {
        key: APP_KEY.into(),
        valid_for: Duration::from_secs(600),
    };
    let role = alice
        .switch_role(Role::Joiner, key)
        .await
        .expect("switch to joiner");
    assert_eq!(role, Role::Joiner);
    let second = alice
        .publish(synthetic(660.0))
        .await
        .expect("publish again");
    let seen = next_membership_events(&bob, 2, "peer-role-changed, stream-added").await;
    assert_eq!(
        seen,
        vec!["role alice 0".to_owned(), format!("added {second}")]
    );
    let remote = bob
        .subscribe(second, SubscribeOptions::default())
        .await
        .expect("subscribe again");
    wait_for(WAIT, "the new stream's frames at bob", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;

    // A later joiner sees alice as a joiner with her stream.
    let (carol, info) = join(&server, "room-switch", "carol").await;
    let alice_info = info
        .users
        .iter()
        .find(|u| u.user_id.as_str() == "alice")
        .expect("alice listed");
    assert_eq!(alice_info.role, Role::Joiner);
    let streams: Vec<StreamId> = info.streams.iter().map(|s| s.stream_id).collect();
    assert_eq!(streams, vec![second]);

    // The server closing alice's first publish link was no failure to her.
    while let Ok(event) = alice.events().try_recv() {
        assert!(
            !matches!(event, RoomEvent::Error { .. }),
            "alice got {event:?}"
        );
    }

    carol.leave().await.expect("leave");
    bob.leave().await.expect("leave");
    alice.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_role_switch_changes_nothing() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-refused", "alice").await;
    let (bob, _) = join(&server, "room-refused", "bob").await;
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(WAIT, "alice's frames at bob", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;
    membership_events(&bob);

    // The join's codes: a wrong key, another user's signature, an expired one.
    let wrong_key = Credential::AppKey {
        key: "wrong-key".into(),
        valid_for: Duration::from_secs(600),
    };
    let code = code_of(alice.switch_role(Role::Player, wrong_key).await);
    assert_eq!(code, ErrorCode::SignatureInvalid);
    let code = code_of(
        alice
            .switch_role(Role::Player, fresh_signature("room-refused", "bob"))
            .await,
    );
    assert_eq!(code, ErrorCode::SignatureInvalid);
    let expired = huddle::auth::now_unix() - 10;
    let code = code_of(
        alice
            .switch_role(
                Role::Player,
                Credential::Signature {
                    ctime: expired,
                    signature: huddle::auth::sign(
                        APP_KEY,
                        APP_ID,
                        "room-refused",
                        "alice",
                        expired,
                    ),
                },
            )
            .await,
    );
    assert_eq!(code, ErrorCode::SignatureExpired);

    // Nothing changed: alice is a joiner, her stream still reaches bob.
    assert_eq!(alice.me().await.expect("me").role, Role::Joiner);
    let frames_before = remote.stats().frames_decoded;
    wait_for(WAIT, "more frames at bob", || {
        (remote.stats().frames_decoded >= frames_before + 15).then_some(())
    })
    .await;

    // Switching to the role she has is accepted and announces nothing: the
    // next event bob gets is the rename that follows it.
    let role = alice
        .switch_role(Role::Joiner, fresh_signature("room-refused", "alice"))
        .await
        .expect("same role");
    assert_eq!(role, Role::Joiner);
    alice.change_user_name("Alice").await.expect("rename");
    let seen = next_membership_events(&bob, 1, "the rename").await;
    assert_eq!(seen, vec!["name alice Alice"]);
    assert_eq!(server.server.metrics().peer_connections, 2);

    bob.leave().await.expect("leave");
    alice.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_name_reaches_the_others_and_later_joiners() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-names", "alice").await;
    let (bob, _) = join(&server, "room-names", "bob").await;
    membership_events(&bob);

    alice
        .change_user_name("Alice Liddell")
        .await
        .expect("rename");
    let seen = next_membership_events(&bob, 1, "remote-user-name-changed").await;
    assert_eq!(seen, vec!["name alice Alice Liddell"]);
    assert_eq!(alice.me().await.expect("me").user_name, "Alice Liddell");

    // Over 256 bytes: refused as join refuses it, and nothing changes.
    let code = code_of(alice.change_user_name("n".repeat(257)).await);
    assert_eq!(code, ErrorCode::InvalidParameter);
    assert_eq!(alice.me().await.expect("me").user_name, "Alice Liddell");
    let (carol, info) = join(&server, "room-names", "carol").await;
    let names: Vec<(&str, &str)> = info
        .users
        .iter()
        .map(|u| (u.user_id.as_str(), u.user_name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![("alice", "Alice Liddell"), ("bob", "bob (test)")]
    );

    // 256 bytes exactly is fine; bob's next name event is this one, not the
    // refused one. Carol, in the room now, hears it too.
    let long = "é".repeat(128);
    alice.change_user_name(long.clone()).await.expect("rename");
    let seen = next_membership_events(&bob, 1, "the second rename").await;
    assert_eq!(seen, vec![format!("name alice {long}")]);
    let seen = next_membership_events(&carol, 1, "the second rename at carol").await;
    assert_eq!(seen, vec![format!("name alice {long}")]);

    // The same name again: accepted, no event (the next one bob sees is carol's).
    alice
        .change_user_name(long.clone())
        .await
        .expect("same name");
    carol.change_user_name("Carol").await.expect("rename");
    let seen = next_membership_events(&bob, 1, "carol's rename").await;
    assert_eq!(seen, vec!["name carol Carol"]);

    carol.leave().await.expect("leave");
    bob.leave().await.expect("leave");
    alice.leave().await.expect("leave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_role_and_name_requests_get_their_codes() {
    let server = start_server().await;
    let (bob, _) = join(&server, "room-raw", "bob").await;
    let mut mallory = RawSocket::connect(&server).await;
    let ctime = huddle::auth::now_unix() + 600;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, "room-raw", "mallory", ctime);

    // Before joining, both are refused as every request but join is.
    for (id, text) in [
        (
            1,
            format!(
                r#"{{"id":1,"type":"switch-role","role":2,"ctime":{ctime},"signature":"{signature}"}}"#
            ),
        ),
        (
            2,
            r#"{"id":2,"type":"change-user-name","userName":"M"}"#.into(),
        ),
    ] {
        mallory.send(&text).await;
        assert_eq!(
            expect_error(mallory.recv().await),
            (Some(RequestId(id)), ErrorCode::InvalidOperation),
            "{text}"
        );
    }

    mallory.joined("room-raw", "mallory").await;
    membership_events(&bob);

    let long = "n".repeat(257);
    let cases: Vec<(String, ErrorCode)> = vec![
        (
            r#"{"id":10,"type":"switch-role","ctime":1,"signature":"ab"}"#.into(),
            ErrorCode::InvalidParameter,
        ),
        (
            format!(r#"{{"id":11,"type":"switch-role","role":2,"signature":"{signature}"}}"#),
            ErrorCode::InvalidParameter,
        ),
        (
            format!(r#"{{"id":12,"type":"switch-role","role":2,"ctime":{ctime}}}"#),
            ErrorCode::InvalidParameter,
        ),
        (
            format!(
                r#"{{"id":13,"type":"switch-role","role":1,"ctime":{ctime},"signature":"{signature}"}}"#
            ),
            ErrorCode::InvalidParameter,
        ),
        (
            format!(
                r#"{{"id":14,"type":"switch-role","role":"2","ctime":{ctime},"signature":"{signature}"}}"#
            ),
            ErrorCode::InvalidParameter,
        ),
        (
            format!(
                r#"{{"id":15,"type":"switch-role","role":2,"ctime":{ctime},"signature":"zz"}}"#
            ),
            ErrorCode::SignatureInvalid,
        ),
        (
            format!(
                r#"{{"id":16,"type":"switch-role","role":2,"ctime":{},"signature":"{signature}"}}"#,
                ctime + 1
            ),
            ErrorCode::SignatureInvalid,
        ),
        (
            r#"{"id":17,"type":"change-user-name"}"#.into(),
            ErrorCode::InvalidParameter,
        ),
        (
            r#"{"id":18,"type":"change-user-name","userName":null}"#.into(),
            ErrorCode::InvalidParameter,
        ),
        (
            format!(r#"{{"id":19,"type":"change-user-name","userName":"{long}"}}"#),
            ErrorCode::InvalidParameter,
        ),
    ];
    for (text, code) in cases {
        mallory.send(&text).await;
        let id: u64 = serde_json::from_str::<serde_json::Value>(&text).expect("json")["id"]
            .as_u64()
            .expect("id");
        assert_eq!(
            expect_error(mallory.recv().await),
            (Some(RequestId(id)), code),
            "for {}",
            &text[..text.len().min(90)]
        );
    }

    // None of that reached bob; a valid switch over the wire does, and its
    // reply carries the new role.
    mallory
        .send(&format!(
            r#"{{"id":30,"type":"switch-role","role":2,"ctime":{ctime},"signature":"{signature}"}}"#
        ))
        .await;
    let reply = mallory
        .recv_until(WAIT, "the switch-role reply", |m| match m {
            ServerMessage::Reply { id, reply } if *id == RequestId(30) => Some(reply.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reply, Reply::RoleSwitched { role: Role::Player });
    let seen = next_membership_events(&bob, 1, "mallory's role").await;
    assert_eq!(seen, vec!["role mallory 2"]);

    // As a player, a publish is refused before its offer is even read.
    mallory
        .send(r#"{"id":31,"type":"publish","audio":true,"video":null,"sdp":"v=0"}"#)
        .await;
    assert_eq!(
        expect_error(mallory.recv().await),
        (Some(RequestId(31)), ErrorCode::RoleNoPermission)
    );

    // The connection still works, and mallory hears bob's rename.
    bob.change_user_name("Bob").await.expect("rename");
    let event = mallory
        .recv_until(WAIT, "bob's rename", |m| match m {
            ServerMessage::Event { event } => Some(event.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        event,
        Event::RemoteUserNameChanged {
            user_id: "bob".into(),
            user_name: "Bob".into(),
        }
    );
    bob.leave().await.expect("leave");
}
