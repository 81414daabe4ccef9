//! Issue 11 §1: the server keeps a dropped session for its resume window, and
//! only the token it issued, presented for the same app, room and user, takes
//! it back. Spoken over raw WebSockets, as a client that does not use the SDK
//! would.

mod common;

use std::time::{Duration, Instant};

use common::*;
use huddle::protocol::{ErrorCode, Event, LeaveReason, Reply, ServerMessage};
use huddle::server::ServerConfig;

/// Joins `user` over a raw socket and returns the socket and its resume token.
async fn joined_with_token(server: &TestServer, room: &str, user: &str) -> (RawSocket, String) {
    let mut socket = RawSocket::connect(server).await;
    match socket.join(room, user).await {
        ServerMessage::Reply {
            reply: Reply::Joined { resume_token, .. },
            ..
        } => {
            assert_eq!(resume_token.len(), 32, "{resume_token}");
            assert!(
                resume_token.bytes().all(|b| b.is_ascii_hexdigit()),
                "{resume_token}"
            );
            (socket, resume_token)
        }
        other => panic!("{user} could not join: {other:?}"),
    }
}

fn resume_frame(id: u64, room: &str, user: &str, token: &str) -> String {
    format!(
        r#"{{"id":{id},"type":"resume","appId":"{APP_ID}","roomId":"{room}","userId":"{user}","resumeToken":"{token}"}}"#
    )
}

/// Sends one frame on a fresh connection and returns the error code of the
/// answer (which must be an error for request `id`).
async fn refused(server: &TestServer, frame: &str, id: u64) -> ErrorCode {
    let mut socket = RawSocket::connect(server).await;
    socket.send(frame).await;
    let (got_id, code) = expect_error(socket.recv().await);
    assert_eq!(got_id.map(|i| i.0), Some(id), "{frame}");
    // Refused, and the connection still serves requests.
    socket.ping(id + 1).await;
    code
}

fn config_with_window(window: Duration) -> ServerConfig {
    let mut config = ServerConfig::new(test_apps());
    config.limits.resume_window = window;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_resumes_on_a_new_connection_and_nobody_sees_it_leave() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-resume", "alice").await;
    let (mut bob, token) = joined_with_token(&server, "room-resume", "bob").await;
    bob.ping(2).await;

    bob.kill();
    // Meanwhile the room changes: carol joins.
    let (carol, _) = join(&server, "room-resume", "carol").await;
    wait_for(Duration::from_secs(5), "three users", || {
        (server.server.metrics().users == 3).then_some(())
    })
    .await;

    let mut back = RawSocket::connect(&server).await;
    back.send(&resume_frame(7, "room-resume", "bob", &token))
        .await;
    let reply = back
        .recv_until(Duration::from_secs(5), "resumed", |m| match m {
            ServerMessage::Reply { id, reply } if id.0 == 7 => Some(reply.clone()),
            ServerMessage::Error(e) => panic!("resume refused: {e:?}"),
            _ => None,
        })
        .await;
    let Reply::Resumed {
        me,
        users,
        publications,
        subscriptions,
        ..
    } = reply
    else {
        panic!("expected resumed, got {reply:?}");
    };
    assert_eq!(me.user_id.as_str(), "bob");
    let names: Vec<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(names, ["alice", "carol"], "the room as it is now");
    assert!(publications.is_empty() && subscriptions.is_empty());
    back.ping(8).await;

    // Nobody saw bob leave; the room still counts him once.
    for (who, client) in [("alice", &alice), ("carol", &carol)] {
        while let Ok(event) = client.events().try_recv() {
            assert!(
                !matches!(&event, huddle::client::RoomEvent::PeerLeave { user_id, .. } if user_id.as_str() == "bob"),
                "{who} saw bob leave: {event:?}"
            );
        }
    }
    assert_eq!(server.server.metrics().users, 3);
    assert_eq!(server.server.metrics().sessions, 3);

    // The resumed session is the same one: its leave is an ordinary leave.
    back.send(r#"{"id":9,"type":"leave"}"#).await;
    let reason = wait_event(&alice, Duration::from_secs(5), "bob leaves", |e| match e {
        huddle::client::RoomEvent::PeerLeave { user_id, reason } if user_id.as_str() == "bob" => {
            Some(*reason)
        }
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::UserExit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_user_is_refused_and_touches_nothing() {
    let server = start_server().await;
    let (mut alice, alice_token) = joined_with_token(&server, "room-steal", "alice").await;
    let (mut bob, bob_token) = joined_with_token(&server, "room-steal", "bob").await;
    assert_ne!(alice_token, bob_token);

    // Bob's name with alice's token, alice's token in another room, and for
    // another app: each refused with 90100031.
    let frames = [
        resume_frame(3, "room-steal", "bob", &alice_token),
        resume_frame(3, "room-other", "alice", &alice_token),
        format!(
            r#"{{"id":3,"type":"resume","appId":"other-app","roomId":"room-steal","userId":"alice","resumeToken":"{alice_token}"}}"#
        ),
    ];
    for frame in &frames {
        assert_eq!(
            refused(&server, frame, 3).await,
            ErrorCode::SignatureInvalid,
            "{frame}"
        );
    }
    // A token nobody was given: 90100013.
    let made_up = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        refused(&server, &resume_frame(3, "room-steal", "alice", made_up), 3).await,
        ErrorCode::WebsocketReconnectTimeout
    );

    // Both sessions are untouched: on their own sockets, answering, in the
    // room, and nobody left.
    alice.ping(10).await;
    bob.ping(10).await;
    assert_eq!(server.server.metrics().users, 2);
    alice.send(r#"{"id":11,"type":"leave"}"#).await;
    let left = bob
        .recv_until(Duration::from_secs(5), "alice's peer-leave", |m| match m {
            ServerMessage::Event {
                event: Event::PeerLeave { user_id, reason },
            } => Some((user_id.as_str().to_owned(), *reason)),
            _ => None,
        })
        .await;
    assert_eq!(left, ("alice".to_owned(), LeaveReason::UserExit));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_window_the_session_leaves_and_its_token_is_refused() {
    let window = Duration::from_secs(1);
    let server = start_server_with(config_with_window(window)).await;
    let (alice, _) = join(&server, "room-late", "alice").await;
    let (bob, token) = joined_with_token(&server, "room-late", "bob").await;

    let dropped = Instant::now();
    bob.kill();
    let reason = wait_event(&alice, Duration::from_secs(10), "bob leaves", |e| match e {
        huddle::client::RoomEvent::PeerLeave { user_id, reason } if user_id.as_str() == "bob" => {
            Some(*reason)
        }
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::ReconnectTimeout);
    assert!(
        dropped.elapsed() >= window,
        "bob left {:?} after the drop, inside the {window:?} window",
        dropped.elapsed()
    );
    assert_eq!(
        refused(&server, &resume_frame(3, "room-late", "bob", &token), 3).await,
        ErrorCode::WebsocketReconnectTimeout
    );
    assert_eq!(server.server.metrics().users, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_resume_requests_get_numbered_errors() {
    let server = start_server().await;
    let (mut alice, token) = joined_with_token(&server, "room-bad", "alice").await;
    let cases: Vec<(String, ErrorCode)> = vec![
        // Not a token: wrong length, upper case, not hex.
        (
            resume_frame(4, "room-bad", "alice", "abc"),
            ErrorCode::InvalidParameter,
        ),
        (
            resume_frame(4, "room-bad", "alice", &token.to_uppercase()),
            ErrorCode::InvalidParameter,
        ),
        (
            resume_frame(4, "room-bad", "alice", &"z".repeat(32)),
            ErrorCode::InvalidParameter,
        ),
        // An id out of syntax.
        (
            resume_frame(4, "room bad", "alice", &token),
            ErrorCode::InvalidParameter,
        ),
        // A field missing, or of the wrong type.
        (
            format!(
                r#"{{"id":4,"type":"resume","appId":"{APP_ID}","roomId":"room-bad","userId":"alice"}}"#
            ),
            ErrorCode::InvalidParameter,
        ),
        (
            format!(
                r#"{{"id":4,"type":"resume","appId":"{APP_ID}","roomId":"room-bad","userId":"alice","resumeToken":7}}"#
            ),
            ErrorCode::InvalidParameter,
        ),
    ];
    for (frame, code) in &cases {
        assert_eq!(refused(&server, frame, 4).await, *code, "{frame}");
    }
    // A resume on a connection that has joined: 90100204, and the session
    // carries on.
    alice
        .send(&resume_frame(5, "room-bad", "alice", &token))
        .await;
    let (id, code) = expect_error(alice.recv().await);
    assert_eq!((id.map(|i| i.0), code), (Some(5), ErrorCode::AlreadyJoined));
    alice.ping(6).await;
    // The real token still works after all that.
    alice.kill();
    let mut back = RawSocket::connect(&server).await;
    back.send(&resume_frame(8, "room-bad", "alice", &token))
        .await;
    match back.recv().await {
        ServerMessage::Reply {
            reply: Reply::Resumed { .. },
            ..
        } => {}
        other => panic!("resume refused: {other:?}"),
    }
    assert_eq!(server.server.metrics().users, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_before_the_server_noticed_the_drop_takes_the_session_over() {
    // The client's network changed: its old connection still looks fine to
    // the server when the client comes back on a new one.
    let server = start_server().await;
    let (alice, _) = join(&server, "room-over", "alice").await;
    let (mut old, token) = joined_with_token(&server, "room-over", "bob").await;
    old.ping(2).await;

    let mut new = RawSocket::connect(&server).await;
    new.send(&resume_frame(3, "room-over", "bob", &token)).await;
    match new.recv().await {
        ServerMessage::Reply {
            reply: Reply::Resumed { me, users, .. },
            ..
        } => {
            assert_eq!(me.user_id.as_str(), "bob");
            assert_eq!(users.len(), 1, "{users:?}");
        }
        other => panic!("resume refused: {other:?}"),
    }
    new.ping(4).await;
    // The old connection is dropped without a word (no close frame, no
    // client-banned): its session now lives on the new one.
    let mut words = Vec::new();
    loop {
        match old.next_frame(Duration::from_secs(5)).await {
            None => break,
            Some(tokio_tungstenite::tungstenite::Message::Text(text)) => words.push(text),
            Some(_) => {}
        }
    }
    assert!(words.is_empty(), "the old connection was told {words:?}");
    // One session, still in the room; nobody saw bob leave.
    assert_eq!(server.server.metrics().users, 2);
    while let Ok(event) = alice.events().try_recv() {
        assert!(
            !matches!(event, huddle::client::RoomEvent::PeerLeave { .. }),
            "alice saw {event:?}"
        );
    }
    wait_for(Duration::from_secs(5), "one session for bob", || {
        (server.server.metrics().sessions == 2).then_some(())
    })
    .await;
}

/// Joins `user` over a raw socket with a signature that runs out at `ctime`;
/// returns the socket and its resume token.
async fn joined_until(
    server: &TestServer,
    room: &str,
    user: &str,
    ctime: u64,
) -> (RawSocket, String) {
    let mut socket = RawSocket::connect(server).await;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime);
    socket
        .send(&format!(
            r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"{user}","ctime":{ctime},"signature":"{signature}"}}"#
        ))
        .await;
    match socket.recv().await {
        ServerMessage::Reply {
            reply: Reply::Joined { resume_token, .. },
            ..
        } => (socket, resume_token),
        other => panic!("{user} could not join: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_session_still_expires_and_a_missed_warning_follows_the_resume() {
    let mut config = ServerConfig::new(test_apps());
    config.signature_expiry_notice = Duration::from_secs(3);
    let server = start_server_with(config).await;
    let (alice, _) = join(&server, "room-clock", "alice").await;

    // Bob's signature runs out in 4-5 s (whole seconds): the warning is due
    // 1-2 s after he joins, while his session is parked; it reaches him right
    // after `resumed`.
    let ctime = huddle::auth::now_unix() + 5;
    let (bob, token) = joined_until(&server, "room-clock", "bob", ctime).await;
    bob.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await; // past the warning, before the expiry
    let mut back = RawSocket::connect(&server).await;
    back.send(&resume_frame(2, "room-clock", "bob", &token))
        .await;
    assert!(matches!(
        back.recv().await,
        ServerMessage::Reply {
            reply: Reply::Resumed { .. },
            ..
        }
    ));
    let warned = back
        .recv_until(Duration::from_secs(2), "signature-expired", |m| match m {
            ServerMessage::Event {
                event: Event::SignatureExpired { ctime, .. },
            } => Some(*ctime),
            _ => None,
        })
        .await;
    assert_eq!(warned, ctime);

    // Carol never comes back: her session expires while parked, with reason 6.
    let ctime = huddle::auth::now_unix() + 2;
    let (carol, _) = joined_until(&server, "room-clock", "carol", ctime).await;
    carol.kill();
    let reason = wait_event(
        &alice,
        Duration::from_secs(10),
        "carol leaves",
        |e| match e {
            huddle::client::RoomEvent::PeerLeave { user_id, reason }
                if user_id.as_str() == "carol" =>
            {
                Some(*reason)
            }
            _ => None,
        },
    )
    .await;
    assert_eq!(reason, LeaveReason::SignatureExpired);
}
