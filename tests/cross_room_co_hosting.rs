//! Issue 15 §1: cross-room co-hosting (seed 001 chapter 1 "Cross-room").
//! A streamer of room A relays its stream into rooms B and C: their members
//! see the streamer join as a player with that stream and decode its frames,
//! while the server reads the stream's tracks once (no second upload); the
//! streamer subscribes to B's host; stopping the relay into B ends it there
//! only; leaving A ends every relay. Every refused relay changes nothing.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{
    Client, ClientError, Credential, RemoteStream, RoomEvent, StreamInfo, SubscribeOptions,
};
use huddle::protocol::{ErrorCode, LeaveReason, Role, RoomId, StreamId};

const SLOW: Duration = Duration::from_secs(40);

fn app_key() -> Credential {
    Credential::AppKey {
        key: APP_KEY.into(),
        valid_for: Duration::from_secs(3600),
    }
}

fn room(id: &str) -> RoomId {
    RoomId(id.into())
}

async fn join_as(server: &TestServer, room: &str, user: &str, role: Role) -> Client {
    let client = Client::new();
    client
        .join(join_config(server, room, user, role))
        .await
        .expect("join");
    client
}

/// Waits for `n` more decoded frames, all read back in order; returns the
/// last frame number.
async fn decodes(remote: &RemoteStream, n: u64, what: &str) -> u32 {
    let start = remote.stats().frames_decoded;
    wait_for(SLOW, what, || {
        (remote.stats().frames_decoded >= start + n).then_some(())
    })
    .await;
    let stats = remote.stats();
    assert_eq!(
        stats.out_of_order_frames, 0,
        "{what}: frame numbers in order"
    );
    stats
        .last_frame_no
        .expect("stamped frame numbers read back")
}

/// The stream `user` adds, as a room event (own room or, with `cross`, a
/// cross-room one of that room).
async fn stream_added(client: &Client, user: &str, cross: Option<&str>) -> StreamInfo {
    wait_event(client, SLOW, "stream-added", |e| {
        let e = match (e, cross) {
            (RoomEvent::CrossRoom { room_id, event }, Some(r)) if room_id.as_str() == r => {
                event.as_ref()
            }
            (e, None) => e,
            _ => return None,
        };
        match e {
            RoomEvent::StreamAdded(info) if info.user_id.as_str() == user => Some(info.clone()),
            _ => None,
        }
    })
    .await
}

/// The next error on a raw socket, skipping room events.
async fn raw_error(raw: &mut RawSocket) -> huddle::protocol::ServerMessage {
    raw.recv_until(Duration::from_secs(10), "an error", |m| {
        matches!(m, huddle::protocol::ServerMessage::Error(_)).then(|| m.clone())
    })
    .await
}

fn code(e: ClientError) -> ErrorCode {
    e.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_stream_is_seen_in_other_rooms_from_one_upload() {
    let server = start_server().await;
    let alice = join_as(&server, "xr-a", "alice", Role::Joiner).await;
    let bob = join_as(&server, "xr-b", "bob", Role::Joiner).await;
    let viewer_b = join_as(&server, "xr-b", "viewer-b", Role::Player).await;
    let viewer_c = join_as(&server, "xr-c", "viewer-c", Role::Player).await;

    let alice_stream = alice.publish(synthetic(440.0)).await.expect("publish");
    let bob_stream = bob.publish(synthetic(660.0)).await.expect("publish");
    // Both publishers' audio and video tracks reach the server.
    wait_for(SLOW, "4 ingress tracks", || {
        (server.server.metrics().ingress_tracks == 4).then_some(())
    })
    .await;
    let links_before = server.server.metrics().peer_connections;

    let into_b = alice
        .start_cross_room_relay(room("xr-b"), alice_stream, app_key())
        .await
        .expect("relay into B");
    assert_eq!(into_b.stream_id, alice_stream);
    let b_users: Vec<&str> = into_b.users.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(b_users, ["bob", "viewer-b"]);
    assert_eq!(into_b.streams.len(), 1);
    assert_eq!(into_b.streams[0].stream_id, bob_stream);
    alice
        .start_cross_room_relay(room("xr-c"), alice_stream, app_key())
        .await
        .expect("relay into C");
    assert_eq!(server.server.metrics().cross_room_relays, 2);

    // B sees alice join as a player (one joiner role at a time) with her stream.
    let joined = wait_event(&viewer_b, SLOW, "peer-join of alice", |e| match e {
        RoomEvent::PeerJoin(user) if user.user_id.as_str() == "alice" => Some(user.clone()),
        _ => None,
    })
    .await;
    assert_eq!(joined.role, Role::Player);
    let in_b = stream_added(&viewer_b, "alice", None).await;
    assert_eq!(in_b.stream_id, alice_stream);
    let in_c = stream_added(&viewer_c, "alice", None).await;
    assert_eq!(in_c.stream_id, alice_stream);
    // Bob (B's host) sees her too: the hosts see each other.
    stream_added(&bob, "alice", None).await;

    let remote_b = viewer_b
        .subscribe(alice_stream, SubscribeOptions::default())
        .await
        .expect("subscribe in B");
    let remote_c = viewer_c
        .subscribe(alice_stream, SubscribeOptions::default())
        .await
        .expect("subscribe in C");
    decodes(&remote_b, 30, "B decodes alice").await;
    decodes(&remote_c, 30, "C decodes alice").await;
    assert_eq!(remote_b.info().user_id.as_str(), "alice");

    // The streamer watches B's host.
    let bob_in_a = alice
        .subscribe(bob_stream, SubscribeOptions::default())
        .await
        .expect("alice subscribes to bob in B");
    assert_eq!(bob_in_a.info().user_id.as_str(), "bob");
    decodes(&bob_in_a, 30, "alice decodes bob").await;

    // One upload: the relays added no ingress track and no publish link;
    // the three new links are the three subscriptions.
    let m = server.server.metrics();
    assert_eq!(m.ingress_tracks, 4, "relays read no track twice");
    assert_eq!(m.peer_connections, links_before + 3);

    // Stopping the relay into B ends it in B only.
    alice
        .stop_cross_room_relay(room("xr-b"))
        .await
        .expect("stop relay into B");
    wait_event(&viewer_b, SLOW, "stream-removed in B", |e| match e {
        RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == alice_stream => Some(()),
        _ => None,
    })
    .await;
    let reason = wait_event(&viewer_b, SLOW, "peer-leave of alice in B", |e| match e {
        RoomEvent::PeerLeave { user_id, reason } if user_id.as_str() == "alice" => Some(*reason),
        _ => None,
    })
    .await;
    assert_eq!(reason, LeaveReason::UserExit);
    wait_for(SLOW, "B's subscription ends", || {
        remote_b.is_ended().then_some(())
    })
    .await;
    wait_for(SLOW, "alice's subscription to bob ends", || {
        bob_in_a.is_ended().then_some(())
    })
    .await;
    assert_eq!(server.server.metrics().cross_room_relays, 1);
    let before = decodes(&remote_c, 1, "C still decodes").await;
    let after = decodes(&remote_c, 15, "C keeps decoding after B stopped").await;
    assert!(
        after > before,
        "frame numbers go on in C: {before} → {after}"
    );
    assert!(!remote_c.is_ended());
    // Bob's stream in B is untouched: the B viewer can still watch him.
    let bob_in_b = viewer_b
        .subscribe(bob_stream, SubscribeOptions::default())
        .await
        .expect("subscribe to bob in B");
    decodes(&bob_in_b, 15, "B viewer decodes bob").await;

    // The publisher leaving A ends every relay.
    alice.leave().await.expect("leave");
    wait_event(&viewer_c, SLOW, "peer-leave of alice in C", |e| match e {
        RoomEvent::PeerLeave { user_id, .. } if user_id.as_str() == "alice" => Some(()),
        _ => None,
    })
    .await;
    wait_for(SLOW, "C's subscription ends", || {
        remote_c.is_ended().then_some(())
    })
    .await;
    wait_for(SLOW, "no relay left, alice's tracks gone", || {
        let m = server.server.metrics();
        (m.cross_room_relays == 0 && m.ingress_tracks == 2).then_some(())
    })
    .await;
    for c in [bob, viewer_b, viewer_c] {
        c.leave().await.expect("leave");
    }
    wait_for(SLOW, "nothing left", || {
        let m = server.server.metrics();
        (m.rooms == 0 && m.peer_connections == 0 && m.ingress_tracks == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_relays_change_nothing() {
    let server = start_server().await;
    let alice = join_as(&server, "xr2-a", "alice", Role::Joiner).await;
    let watcher = join_as(&server, "xr2-b", "watcher", Role::Player).await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");

    // A stream that is not hers (here: none at all): 90100213.
    let e = alice
        .start_cross_room_relay(room("xr2-b"), StreamId(999_999), app_key())
        .await
        .expect_err("missing stream");
    assert_eq!(code(e), ErrorCode::InvalidSubscribedInfo);
    // A signature made with the wrong key, or for another room: 90100031.
    let wrong = Credential::AppKey {
        key: "not-the-key".into(),
        valid_for: Duration::from_secs(3600),
    };
    let e = alice
        .start_cross_room_relay(room("xr2-b"), stream, wrong)
        .await
        .expect_err("bad signature");
    assert_eq!(code(e), ErrorCode::SignatureInvalid);
    let ctime = huddle::auth::now_unix() + 3600;
    let for_a = huddle::auth::sign(APP_KEY, APP_ID, "xr2-a", "alice", ctime);
    let e = alice
        .start_cross_room_relay(
            room("xr2-b"),
            stream,
            Credential::Signature {
                ctime,
                signature: for_a,
            },
        )
        .await
        .expect_err("signature of another room");
    assert_eq!(code(e), ErrorCode::SignatureInvalid);
    // Her own room: 90100204 (seed RTC.32000033).
    let e = alice
        .start_cross_room_relay(room("xr2-a"), stream, app_key())
        .await
        .expect_err("own room");
    assert_eq!(code(e), ErrorCode::AlreadyJoined);
    // Nothing reached B.
    assert_eq!(server.server.metrics().cross_room_relays, 0);
    assert_eq!(server.server.metrics().users, 2);

    // Three relays are fine, a fifth room is not: 90100246 (RTC.32000032).
    for r in ["xr2-b", "xr2-c", "xr2-d"] {
        alice
            .start_cross_room_relay(room(r), stream, app_key())
            .await
            .expect("relay");
    }
    let e = alice
        .start_cross_room_relay(room("xr2-e"), stream, app_key())
        .await
        .expect_err("fifth room");
    assert_eq!(code(e), ErrorCode::AnchorNumberOutOfRange);
    // The same room twice: 90100204.
    let e = alice
        .start_cross_room_relay(room("xr2-b"), stream, app_key())
        .await
        .expect_err("B twice");
    assert_eq!(code(e), ErrorCode::AlreadyJoined);
    let m = server.server.metrics();
    assert_eq!((m.cross_room_relays, m.rooms, m.users), (3, 4, 5));

    // A player cannot relay (seed: players receive, never send): 90100022.
    let player = join_as(&server, "xr2-a", "pat", Role::Player).await;
    let e = player
        .start_cross_room_relay(room("xr2-e"), stream, app_key())
        .await
        .expect_err("player relays");
    assert_eq!(code(e), ErrorCode::RoleNoPermission);
    // Stopping a relay that does not run: refused by the SDK; on the wire
    // (raw socket below) 90100001.
    assert!(
        player.stop_cross_room_relay(room("xr2-b")).await.is_err(),
        "no relay to stop"
    );

    // Bad input on the wire: missing fields, a malformed room id, and a stop
    // for a room without a relay. The session and the room carry on.
    let mut raw = RawSocket::connect(&server).await;
    raw.joined("xr2-a", "raw").await;
    raw.send(r#"{"id":7,"type":"start-cross-room-relay","roomId":"xr2-b"}"#)
        .await;
    let (id, c) = expect_error(raw_error(&mut raw).await);
    assert_eq!((id.map(|i| i.0), c), (Some(7), ErrorCode::InvalidParameter));
    raw.send(&format!(
        r#"{{"id":8,"type":"start-cross-room-relay","roomId":"no such room!","streamId":{},"ctime":1,"signature":"00"}}"#,
        stream.0
    ))
    .await;
    let (id, c) = expect_error(raw_error(&mut raw).await);
    // The room id is checked before the stream (not its own).
    assert_eq!((id.map(|i| i.0), c), (Some(8), ErrorCode::InvalidParameter));
    raw.send(r#"{"id":9,"type":"stop-cross-room-relay","roomId":"xr2-b"}"#)
        .await;
    let (id, c) = expect_error(raw_error(&mut raw).await);
    assert_eq!((id.map(|i| i.0), c), (Some(9), ErrorCode::InvalidOperation));
    raw.ping(10).await;

    // Everything as it was: the watcher in B still decodes alice.
    let remote = watcher
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decodes(&remote, 20, "B decodes alice after the refusals").await;
    assert_eq!(server.server.metrics().cross_room_relays, 3);

    // Her mute state follows her stream into the other rooms.
    alice.set_muted(stream, true, false).await.expect("mute");
    let updated = wait_event(&watcher, SLOW, "stream-updated in B", |e| match e {
        RoomEvent::StreamUpdated(info) if info.stream_id == stream => Some(info.clone()),
        _ => None,
    })
    .await;
    assert!(updated.audio_muted && !updated.video_muted);

    // Unpublishing ends her relays: each room sees the stream go, and she
    // is told (reason 0).
    alice.unpublish(stream).await.expect("unpublish");
    let stopped = wait_event(&alice, SLOW, "cross-room-relay-stopped", |e| match e {
        RoomEvent::CrossRoomRelayStopped { room_id, reason } => Some((room_id.clone(), *reason)),
        _ => None,
    })
    .await;
    assert_eq!(stopped.1, LeaveReason::UserExit);
    wait_for(SLOW, "B's subscription ends", || {
        remote.is_ended().then_some(())
    })
    .await;
    wait_for(SLOW, "no relays", || {
        (server.server.metrics().cross_room_relays == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_user_joining_the_other_room_ends_only_that_relay() {
    let server = start_server().await;
    let alice = join_as(&server, "xr3-a", "alice", Role::Joiner).await;
    let watcher = join_as(&server, "xr3-a", "watcher", Role::Player).await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    alice
        .start_cross_room_relay(room("xr3-b"), stream, app_key())
        .await
        .expect("relay");
    // Alice herself joins B from another device: the relay gives way.
    let alice_in_b = join_as(&server, "xr3-b", "alice", Role::Joiner).await;
    let stopped = wait_event(&alice, SLOW, "cross-room-relay-stopped", |e| match e {
        RoomEvent::CrossRoomRelayStopped { room_id, reason } => Some((room_id.clone(), *reason)),
        _ => None,
    })
    .await;
    assert_eq!(stopped, (room("xr3-b"), LeaveReason::Banned));
    // Her session in A is untouched: A's watcher still decodes her.
    let remote = watcher
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe in A");
    decodes(&remote, 20, "A decodes alice").await;
    assert_eq!(server.server.metrics().cross_room_relays, 0);
    assert_eq!(
        alice.connection_state(),
        huddle::client::ConnectionState::Connected
    );
    alice_in_b.leave().await.expect("leave");
}

/// [`join_config`] for a server given by its URL.
fn join_config_url(url: &str, room: &str, user: &str, role: Role) -> huddle::client::JoinConfig {
    huddle::client::JoinConfig {
        server_url: url.to_owned(),
        app_id: huddle::protocol::AppId(APP_ID.into()),
        room_id: RoomId(room.into()),
        user_id: huddle::protocol::UserId(user.into()),
        user_name: String::new(),
        role,
        credential: app_key(),
        decode: true,
        reconnect_window: huddle::client::DEFAULT_RECONNECT_WINDOW,
    }
}

/// A server on `addr` (port 0: any) until `stop` fires.
async fn serve_until(
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> (
    std::net::SocketAddr,
    huddle::server::Server,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = huddle::server::Server::new(huddle::server::ServerConfig::new(test_apps()));
    let task = tokio::spawn(server.clone().run(listener, async {
        stop.await.ok(); // a dropped sender stops it too
    }));
    (addr, server, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_start_again_after_the_server_restarts() {
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (addr, _, task) = serve_until("127.0.0.1:0".parse().unwrap(), stopped).await;
    let url = format!("ws://{addr}");
    let config = |room: &str, user: &str, role| {
        let mut c = join_config_url(&url, room, user, role);
        c.reconnect_window = Duration::from_secs(30);
        c
    };
    let alice = Client::new();
    alice
        .join(config("xr4-a", "alice", Role::Joiner))
        .await
        .expect("join");
    let viewer = Client::new();
    viewer
        .join(config("xr4-b", "viewer", Role::Player))
        .await
        .expect("join");
    let first = alice.publish(synthetic(440.0)).await.expect("publish");
    alice
        .start_cross_room_relay(room("xr4-b"), first, app_key())
        .await
        .expect("relay");
    stream_added(&viewer, "alice", None).await;

    // The server goes down (both clients are told: reason 3) and comes back
    // on the same port, knowing nothing.
    stop.send(()).ok();
    task.await.expect("server task").expect("server ran");
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let (_, server, _task) = serve_until(addr, stopped).await;

    // Alice joins again, publishes again (a new server's id, which may
    // happen to be the old number) and relays it again: the viewer in B,
    // back too, sees her stream and decodes it.
    let in_b = stream_added(&viewer, "alice", None).await;
    let again = in_b.stream_id;
    assert_eq!(in_b.user_id.as_str(), "alice");
    wait_for(SLOW, "one relay on the new server", || {
        (server.metrics().cross_room_relays == 1).then_some(())
    })
    .await;
    let remote = viewer
        .subscribe(again, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decodes(&remote, 15, "B decodes alice after the restart").await;
    // The relay goes on: stopping it works on the new server.
    alice
        .stop_cross_room_relay(room("xr4-b"))
        .await
        .expect("stop");
    assert_eq!(server.metrics().cross_room_relays, 0);
    drop(stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_relays_into_another_room_with_relay_rooms() {
    let server = start_server().await;
    let viewer = join_as(&server, "xr5-b", "viewer", Role::Player).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = huddle::bot::BotConfig {
        relay_rooms: vec![room("xr5-b")],
        ..publishing_bot(&server.url, "xr5-a", "bot", "180p_1", 440.0)
    };
    let bot = tokio::spawn(huddle::bot::run(config, async {
        stopped.await.ok(); // a dropped sender stops it too
    }));
    let info = stream_added(&viewer, "bot", None).await;
    let remote = viewer
        .subscribe(info.stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    decodes(&remote, 15, "B decodes the bot").await;
    stop.send(()).ok();
    bot.await.expect("bot task").expect("bot ran");
    wait_for(SLOW, "the relay ends with the bot", || {
        remote.is_ended().then_some(())
    })
    .await;
    assert_eq!(server.server.metrics().cross_room_relays, 0);
}
