//! Issue 14 §2, the broadcast console over real links: a director (a
//! director signature) sets the room's program, everyone follows it and
//! joiners get it in `joined`; it removes a user (reason 9) and dismisses the
//! room (reason 10). Everyone else, and every bad request, gets a numbered
//! error while the room and its media carry on.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{
    Client, ClientError, ConnectionState, Credential, JoinConfig, RoomEvent, SubscribeOptions,
};
use huddle::protocol::{
    ErrorCode, LeaveReason, Program, ProgramLayout, Reply, RequestId, Role, ServerMessage,
    StreamId, UserId,
};

const WAIT: Duration = Duration::from_secs(10);

fn director_config(server: &TestServer, room: &str, user: &str) -> JoinConfig {
    JoinConfig {
        credential: Credential::DirectorKey {
            key: APP_KEY.into(),
            valid_for: Duration::from_secs(3600),
        },
        ..join_config(server, room, user, Role::Player)
    }
}

async fn join_as(config: JoinConfig) -> (Client, huddle::client::JoinInfo) {
    let client = Client::new();
    let info = client.join(config).await.expect("join");
    (client, info)
}

fn code_of(result: Result<(), ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server { code, .. }) => code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The next `program-changed` a client hears.
async fn next_program(client: &Client, who: &str) -> (Program, Option<UserId>) {
    wait_event(
        client,
        WAIT,
        &format!("program-changed at {who}"),
        |e| match e {
            RoomEvent::ProgramChanged { program, by } => Some((program.clone(), by.clone())),
            _ => None,
        },
    )
    .await
}

fn pair(a: StreamId, b: StreamId) -> Program {
    Program {
        layout: ProgramLayout::SideBySide,
        streams: vec![a, b],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_director_sets_the_program_and_everyone_follows() {
    let server = start_server().await;
    let room = "show-1";
    let (alice, _) = join(&server, room, "alice").await;
    let (bob, _) = join(&server, room, "bob").await;
    let a = alice.publish(synthetic(440.0)).await.expect("publish a");
    let b = bob.publish(synthetic(660.0)).await.expect("publish b");
    let (director, info) = join_as(director_config(&server, room, "host")).await;
    assert!(info.director, "a director signature grants director powers");
    assert!(info.program.is_off());
    let (kiosk, info) = join_as(join_config(&server, room, "kiosk", Role::Player)).await;
    assert!(!info.director, "a plain signature grants none");

    director
        .set_program(Program::single(a))
        .await
        .expect("on air");
    for (client, who) in [(&kiosk, "kiosk"), (&alice, "alice"), (&director, "host")] {
        let (program, by) = next_program(client, who).await;
        assert_eq!(program, Program::single(a), "{who}");
        assert_eq!(by, Some(UserId("host".into())), "{who}");
    }

    // A joiner gets the program in `joined`.
    let (_late, info) = join_as(join_config(&server, room, "late", Role::Player)).await;
    assert_eq!(info.program, Program::single(a));

    director
        .set_program(pair(a, b))
        .await
        .expect("side by side");
    assert_eq!(next_program(&kiosk, "kiosk").await.0, pair(a, b));
    let quad = Program {
        layout: ProgramLayout::Quad,
        streams: vec![b, a],
    };
    director.set_program(quad.clone()).await.expect("quad");
    assert_eq!(next_program(&kiosk, "kiosk").await.0, quad);

    // An on-air stream that goes takes itself off air, announced by the server.
    alice.unpublish(a).await.expect("unpublish");
    let (program, by) = next_program(&kiosk, "kiosk").await;
    assert_eq!(
        program,
        Program {
            layout: ProgramLayout::Quad,
            streams: vec![b],
        }
    );
    assert_eq!(by, None);
    director.set_program(Program::off()).await.expect("off air");
    assert!(next_program(&kiosk, "kiosk").await.0.is_off());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_director_requests_change_nothing_and_media_flows_on() {
    let server = start_server().await;
    let room = "show-2";
    let (alice, _) = join(&server, room, "alice").await;
    let a = alice.publish(synthetic(440.0)).await.expect("publish");
    let (viewer, _) = join_as(join_config(&server, room, "viewer", Role::Player)).await;
    let remote = viewer
        .subscribe(a, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(WAIT, "media flowing", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;
    let (director, _) = join_as(director_config(&server, room, "host")).await;
    director
        .set_program(Program::single(a))
        .await
        .expect("on air");
    next_program(&viewer, "viewer").await;

    // Not a director: 90100022 for each request, nothing changes.
    let (member, _) = join(&server, room, "member").await;
    assert_eq!(
        code_of(member.set_program(Program::off()).await),
        ErrorCode::RoleNoPermission
    );
    assert_eq!(
        code_of(member.remove_user(UserId("alice".into())).await),
        ErrorCode::RoleNoPermission
    );
    assert_eq!(
        code_of(member.dismiss_room().await),
        ErrorCode::RoleNoPermission
    );

    // Bad programs from the director: numbered errors, nothing changes.
    for (program, code) in [
        (
            Program {
                layout: ProgramLayout::Single,
                streams: vec![a, a],
            },
            ErrorCode::InvalidParameter,
        ),
        (
            Program {
                layout: ProgramLayout::Quad,
                streams: vec![a, a],
            },
            ErrorCode::InvalidParameter,
        ),
        (
            Program {
                layout: ProgramLayout::SideBySide,
                streams: vec![a],
            },
            ErrorCode::InvalidParameter,
        ),
        (
            Program {
                layout: ProgramLayout::Off,
                streams: vec![a],
            },
            ErrorCode::InvalidParameter,
        ),
        (
            Program::single(StreamId(999)),
            ErrorCode::InvalidSubscribedInfo,
        ),
        (pair(a, StreamId(998)), ErrorCode::InvalidSubscribedInfo),
    ] {
        assert_eq!(
            code_of(director.set_program(program.clone()).await),
            code,
            "{program:?}"
        );
    }
    assert_eq!(
        code_of(director.remove_user(UserId("nobody".into())).await),
        ErrorCode::KickUserFail
    );
    assert_eq!(
        code_of(director.remove_user(UserId("host".into())).await),
        ErrorCode::InvalidOperation
    );

    // Raw frames the SDK would never send.
    let mut raw = RawSocket::connect(&server).await;
    raw.send(r#"{"id":1,"type":"set-program","program":{"layout":"single","streams":[1]}}"#)
        .await;
    assert_eq!(
        expect_error(raw.recv().await),
        (Some(RequestId(1)), ErrorCode::InvalidOperation),
        "before join"
    );
    raw.joined(room, "mallory").await;
    for (id, frame, code) in [
        (
            2,
            r#"{"id":2,"type":"set-program","program":{"layout":"3x3","streams":[]}}"#,
            ErrorCode::InvalidParameter,
        ),
        (
            3,
            r#"{"id":3,"type":"set-program","program":{"streams":[1]}}"#,
            ErrorCode::InvalidParameter,
        ),
        (
            4,
            r#"{"id":4,"type":"set-program","program":"single"}"#,
            ErrorCode::InvalidParameter,
        ),
        (
            5,
            r#"{"id":5,"type":"remove-user"}"#,
            ErrorCode::InvalidParameter,
        ),
        (
            6,
            r#"{"id":6,"type":"remove-user","userId":"alice"}"#,
            ErrorCode::RoleNoPermission,
        ),
        (
            7,
            r#"{"id":7,"type":"dismiss-room"}"#,
            ErrorCode::RoleNoPermission,
        ),
    ] {
        raw.send(frame).await;
        assert_eq!(
            expect_error(raw.recv().await),
            (Some(RequestId(id)), code),
            "{frame}"
        );
    }
    raw.ping(8).await;

    // A director signature made with another key is no signature at all.
    let ctime = huddle::auth::now_unix() + 600;
    let forged = huddle::auth::sign_grant(
        "not-the-key",
        APP_ID,
        room,
        "forger",
        ctime,
        huddle::auth::Grant::Director,
    );
    let mut forger = RawSocket::connect(&server).await;
    forger
        .send(&format!(
            r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"forger","ctime":{ctime},"signature":"{forged}"}}"#
        ))
        .await;
    assert_eq!(
        expect_error(forger.recv().await),
        (Some(RequestId(1)), ErrorCode::SignatureInvalid)
    );

    // The program is what it was, and the media never stopped.
    let (_late, info) = join_as(join_config(&server, room, "late", Role::Player)).await;
    assert_eq!(info.program, Program::single(a));
    let frames = remote.stats().frames_decoded;
    wait_for(WAIT, "media still flowing", || {
        (remote.stats().frames_decoded >= frames + 10).then_some(())
    })
    .await;
    assert!(
        viewer
            .events()
            .try_iter()
            .all(|e| !matches!(e, RoomEvent::ProgramChanged { .. })),
        "a refused request announced a program"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_director_removes_a_user_then_dismisses_the_room() {
    let server = start_server().await;
    let room = "show-3";
    let (alice, _) = join(&server, room, "alice").await;
    let a = alice.publish(synthetic(440.0)).await.expect("publish");
    let (bob, _) = join(&server, room, "bob").await;
    let (director, _) = join_as(director_config(&server, room, "host")).await;
    director
        .set_program(Program::single(a))
        .await
        .expect("on air");
    next_program(&bob, "bob").await;

    // Removing alice: she hears reason 9, the others see her (and her
    // stream, on air) go.
    director
        .remove_user(UserId("alice".into()))
        .await
        .expect("remove");
    let reason = wait_event(&alice, WAIT, "alice's client-banned", |e| match e {
        RoomEvent::ClientBanned { reason } => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::UserRemoved);
    wait_for(WAIT, "alice disconnected", || {
        (alice.connection_state() == ConnectionState::Disconnected).then_some(())
    })
    .await;
    let mut saw = (false, false, false);
    wait_event(&bob, WAIT, "alice's leave at bob", |e| {
        match e {
            RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == a => saw.0 = true,
            RoomEvent::ProgramChanged { program, by: None } if program.is_off() => saw.1 = true,
            RoomEvent::PeerLeave { user_id, reason } if user_id.0 == "alice" => {
                assert_eq!(*reason, LeaveReason::UserRemoved);
                saw.2 = true;
            }
            _ => {}
        }
        (saw.2).then_some(())
    })
    .await;
    assert!(
        saw.0 && saw.1,
        "stream-removed and program-changed before peer-leave: {saw:?}"
    );

    // Dismissing: everyone, the director included, is out with reason 10.
    director.dismiss_room().await.expect("dismiss");
    for (client, who) in [(&bob, "bob"), (&director, "host")] {
        let reason = wait_event(
            client,
            WAIT,
            &format!("{who}'s client-banned"),
            |e| match e {
                RoomEvent::ClientBanned { reason } => Some(*reason),
                _ => None,
            },
        )
        .await;
        assert_eq!(reason, LeaveReason::RoomDismissed, "{who}");
        wait_for(WAIT, "disconnected", || {
            (client.connection_state() == ConnectionState::Disconnected).then_some(())
        })
        .await;
    }
    // The room is gone: a join starts a new, empty one.
    let mut raw = RawSocket::connect(&server).await;
    match raw.join(room, "newcomer").await {
        ServerMessage::Reply {
            reply: Reply::Joined { users, program, .. },
            ..
        } => {
            assert!(users.is_empty(), "{users:?}");
            assert!(program.is_off());
        }
        other => panic!("join refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signature_in_force_decides_who_directs() {
    use huddle::auth::{Grant, sign_grant};
    let server = start_server().await;
    let room = "show-4";
    let (alice, _) = join(&server, room, "alice").await;
    let a = alice.publish(synthetic(440.0)).await.expect("publish");
    let signed = |grant| {
        let ctime = huddle::auth::now_unix() + 600;
        (
            ctime,
            sign_grant(APP_KEY, APP_ID, room, "host", ctime, grant),
        )
    };
    let mut host = RawSocket::connect(&server).await;
    let (ctime, signature) = signed(Grant::Director);
    host.send(&format!(
        r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"host","role":2,"ctime":{ctime},"signature":"{signature}"}}"#
    ))
    .await;
    match host.recv().await {
        ServerMessage::Reply {
            reply: Reply::Joined { director, .. },
            ..
        } => assert!(director, "joined says director"),
        other => panic!("join refused: {other:?}"),
    }
    let set = |id: u64| {
        format!(
            r#"{{"id":{id},"type":"set-program","program":{{"layout":"single","streams":[{}]}}}}"#,
            a.0
        )
    };
    let ok = |m: &ServerMessage, id: u64| matches!(m, ServerMessage::Reply { id: RequestId(got), reply: Reply::Ok } if *got == id);
    host.send(&set(2)).await;
    host.recv_until(WAIT, "ok to set-program", |m| ok(m, 2).then_some(()))
        .await;
    // A plain renewal ends the grant...
    let (ctime, signature) = signed(Grant::Member);
    host.send(&format!(
        r#"{{"id":3,"type":"renew-signature","ctime":{ctime},"signature":"{signature}"}}"#
    ))
    .await;
    host.recv_until(WAIT, "ok to the renewal", |m| ok(m, 3).then_some(()))
        .await;
    host.send(&set(4)).await;
    let refused = host
        .recv_until(WAIT, "the refusal", |m| match m {
            ServerMessage::Error(e) => Some(e.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (refused.id, refused.code),
        (Some(RequestId(4)), ErrorCode::RoleNoPermission)
    );
    // ...and a director renewal gives it back.
    let (ctime, signature) = signed(Grant::Director);
    host.send(&format!(
        r#"{{"id":5,"type":"renew-signature","ctime":{ctime},"signature":"{signature}"}}"#
    ))
    .await;
    host.recv_until(WAIT, "ok to the renewal", |m| ok(m, 5).then_some(()))
        .await;
    host.send(r#"{"id":6,"type":"set-program","program":{"layout":"off","streams":[]}}"#)
        .await;
    host.recv_until(WAIT, "ok to off air", |m| ok(m, 6).then_some(()))
        .await;
}
