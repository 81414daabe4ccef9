//! Issue 15 §2, "a room larger than one node can carry": with
//! `--relay-subscribers`, players who reach a node that does not own the room
//! are served there, and each stream they watch comes from the owner node
//! over ONE relay link for that node, however many players watch it (two
//! real `huddle serve` processes and a real Redis, as in several_nodes.rs).
//! Links are opened for the streams players on the node watch, reopened when
//! they fail, and the players come back when the owner node dies.
#![cfg(feature = "client")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::node::{Node, config, http, owner, pair, registered};
use common::redis::Redis;
use common::*;
use huddle::client::{Client, ClientError, RemoteStream, RoomEvent};
use huddle::protocol::{ErrorCode, Reply, Role, ServerMessage, StreamId};

/// Starts node a and node b with their extra flags and waits until both
/// are registered.
async fn two_nodes(redis: &Redis, a_extra: &[&str], b_extra: &[&str]) -> (Node, Node) {
    pair(redis, ("node-a", a_extra), ("node-b", b_extra)).await
}

/// `user` joins `room` at `url` as a joiner and publishes the pattern + a
/// 440 Hz tone.
async fn publisher(url: &str, room: &str, user: &str) -> (Client, StreamId) {
    let client = Client::new();
    client
        .join(config(url, room, user, Role::Joiner))
        .await
        .unwrap_or_else(|e| panic!("{user} joins at {url}: {e}"));
    let stream = client.publish(synthetic(440.0)).await.expect("publish");
    (client, stream)
}

/// `user` joins `room` at `url` as a player.
async fn player(url: &str, room: &str, user: &str) -> Client {
    let client = Client::new();
    client
        .join(config(url, room, user, Role::Player))
        .await
        .unwrap_or_else(|e| panic!("{user} joins at {url}: {e}"));
    client
}

/// `GET /rooms/{room}` on the node at `url` (no token configured); `None`
/// when the room is not there.
async fn room_view(url: &str, room: &str) -> Option<serde_json::Value> {
    let (status, text) = http(url, "GET", &format!("/rooms/{room}"), "-", "").await;
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{text}");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Chunked or not: the JSON object is between the outer braces.
    let start = body.find('{').expect("a JSON body");
    let end = body.rfind('}').expect("a JSON body");
    Some(serde_json::from_str(&body[start..=end]).expect("JSON"))
}

fn user_ids(view: &serde_json::Value) -> Vec<String> {
    view["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Waits until `remote` decoded `frames` more video frames.
async fn decodes(remote: &RemoteStream, frames: u64, what: &str) {
    let start = remote.stats().frames_decoded;
    wait_for(Duration::from_secs(20), what, || {
        (remote.stats().frames_decoded >= start + frames).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn players_on_a_second_node_watch_through_one_relay_link_per_stream() {
    let Some(redis) = Redis::start("noderelay_players_on_a_second_node") else {
        return;
    };
    let (a, b) = two_nodes(&redis, &[], &["--relay-subscribers"]).await;
    let room = "room-relay";

    // Alice publishes on node a, which owns the room; Ann watches there.
    let (_alice, stream) = publisher(&a.url, room, "alice").await;
    let ann = Client::new();
    ann.join(config(&a.url, room, "ann", Role::Player))
        .await
        .expect("ann joins at a");
    let ann_sees = ann
        .subscribe(stream, Default::default())
        .await
        .expect("ann subscribes");

    // Three players reach node b: served there, they see alice's stream.
    let mut players = Vec::new();
    let mut remotes = Vec::new();
    for name in ["p1", "p2", "p3"] {
        let player = Client::new();
        let info = player
            .join(config(&b.url, room, name, Role::Player))
            .await
            .expect("a player joins at b");
        assert!(
            info.users.iter().any(|u| u.user_id.as_str() == "alice"),
            "{name} sees alice: {:?}",
            info.users
        );
        assert!(info.streams.iter().any(|s| s.stream_id == stream));
        remotes.push(
            player
                .subscribe(stream, Default::default())
                .await
                .expect("subscribe at b"),
        );
        players.push(player);
    }
    decodes(&ann_sees, 20, "ann decodes alice on a").await;
    for (i, remote) in remotes.iter().enumerate() {
        decodes(
            remote,
            20,
            &format!("player {} decodes alice through b", i + 1),
        )
        .await;
    }

    // Node b holds the players and exactly one relay link for the stream.
    let Some(on_b) = room_view(&b.url, room).await else {
        panic!("the room is not on b: {:#?}", b.log());
    };
    let users_b = user_ids(&on_b);
    for name in ["p1", "p2", "p3", "alice"] {
        assert!(users_b.iter().any(|u| u == name), "{users_b:?}");
    }
    assert_eq!(on_b["relay"]["ownerNode"], "node-a", "{on_b}");
    assert_eq!(
        on_b["relay"]["relayLinks"],
        serde_json::json!([stream.0]),
        "{on_b}"
    );
    // Keyframe requests of b's subscribers go to the owner over that link
    // as PLIs. A request is dropped when a keyframe passed meanwhile (the
    // relay link's first one may serve everyone), so more players join
    // until one is sent; still one link.
    let mut late = 0;
    loop {
        let view = room_view(&b.url, room).await.expect("the room is on b");
        assert_eq!(view["relay"]["relayLinks"], serde_json::json!([stream.0]));
        if view["relay"]["plisSent"].as_u64() >= Some(1) {
            break;
        }
        late += 1;
        assert!(late <= 8, "no PLI on the relay link: {view}");
        let player = Client::new();
        player
            .join(config(&b.url, room, &format!("late{late}"), Role::Player))
            .await
            .expect("a late player joins at b");
        let remote = player
            .subscribe(stream, Default::default())
            .await
            .expect("subscribe at b");
        decodes(&remote, 5, "a late player decodes").await;
        players.push(player);
    }
    // Node a serves the players through one play of the stream (user
    // node-relay-node-b-<stream>) and the mirror's member, nothing else of b.
    let on_a = room_view(&a.url, room).await.expect("the room is on a");
    let users_a = user_ids(&on_a);
    let relays: Vec<&String> = users_a
        .iter()
        .filter(|u| u.starts_with("node-relay-node-b"))
        .collect();
    assert_eq!(
        relays,
        [
            "node-relay-node-b",
            &format!("node-relay-node-b-{}", stream.0)
        ],
        "{users_a:?}"
    );
    assert!(
        !users_a
            .iter()
            .any(|u| u.starts_with('p') || u.starts_with("late")),
        "{users_a:?}"
    );

    // A joiner (may publish) reaching b is still sent to the owner.
    let mut joiner = RawSocket::connect_url(&b.url).await;
    match joiner.join(room, "carol").await {
        ServerMessage::Reply {
            reply: Reply::Redirect { node_id, url, .. },
            ..
        } => {
            assert_eq!(node_id, "node-a");
            assert_eq!(url, a.url);
        }
        other => panic!("expected a redirect to node-a, got {other:?}"),
    }

    // A player on b may not become a joiner there (its streams would stay
    // on b): 90100001, and it stays a player.
    let ctime = huddle::auth::now_unix() + 600;
    let sign = |user: &str| huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime);
    let mut dora = RawSocket::connect_url(&b.url).await;
    dora.send(&format!(
        r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"dora","role":2,"ctime":{ctime},"signature":"{}"}}"#,
        sign("dora")
    ))
    .await;
    match dora.recv().await {
        ServerMessage::Reply {
            reply: Reply::Joined { .. },
            ..
        } => {}
        other => panic!("dora should join at b: {other:?}"),
    }
    dora.send(&format!(
        r#"{{"id":2,"type":"switch-role","role":0,"ctime":{ctime},"signature":"{}"}}"#,
        sign("dora")
    ))
    .await;
    let refused = dora
        .recv_until(
            Duration::from_secs(5),
            "the switch-role answer",
            |m| match m {
                ServerMessage::Error(e) => Some(e.code),
                ServerMessage::Reply { reply, .. } => panic!("switch-role answered {reply:?}"),
                ServerMessage::Event { .. } => None,
            },
        )
        .await;
    assert_eq!(refused, ErrorCode::InvalidOperation);
    // Leaving (not just dropping the socket, which keeps the session for a
    // resume) so that the mirror can end below.
    dora.send(r#"{"id":3,"type":"leave"}"#).await;
    dora.until_close(Duration::from_secs(5)).await;

    // A forged node credential is refused with a numbered error, on the
    // signalling and on the relay link's WHEP endpoint...
    let mut forged = RawSocket::connect_url(&a.url).await;
    forged
        .send(&format!(
            r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"node-relay-node-x","role":2,"ctime":{},"signature":"{}"}}"#,
            huddle::auth::now_unix() + 600,
            "0".repeat(64)
        ))
        .await;
    assert_eq!(
        expect_error(forged.recv().await).1,
        ErrorCode::SignatureInvalid
    );
    let ctime = huddle::auth::now_unix() + 600;
    let path = format!(
        "/whep/{room}/{}?userid=node-relay-node-x-{}&ctime={ctime}&role=2",
        stream.0, stream.0
    );
    let (status, text) = http(&a.url, "POST", &path, &"0".repeat(64), "v=0\r\n").await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("90100031"), "{text}");
    // ... and disturbs nothing: everyone still decodes, still one link.
    decodes(&ann_sees, 10, "ann still decodes").await;
    for remote in &remotes {
        decodes(remote, 10, "players on b still decode").await;
    }
    let on_b = room_view(&b.url, room).await.expect("the room is on b");
    assert_eq!(on_b["relay"]["relayLinks"], serde_json::json!([stream.0]));

    // The last player on b leaves: the relay link and the mirror close, and
    // node a no longer serves node b.
    for player in &players {
        player.leave().await.expect("leave");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = room_view(&a.url, room).await;
        let users = view.as_ref().map(user_ids).unwrap_or_default();
        if !users.iter().any(|u| u.starts_with("node-relay-node-b")) {
            break;
        }
        assert!(Instant::now() < deadline, "node b still on a: {users:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        room_view(&b.url, room).await.is_none(),
        "b dropped the room"
    );
    decodes(&ann_sees, 10, "ann decodes after the relay closed").await;
}

/// The SDK's log lines (reconnection, redirects), captured by the test
/// harness and shown when a test fails.
fn sdk_log() {
    // Another test of this binary may have set it already.
    tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("huddle::client=info")
        .try_init()
        .ok();
}

/// Joins `room` as `user` over a raw socket at `url` until the `joined`
/// reply lists `count` nodes (each node reads the list once per heartbeat).
async fn nodes_listed(url: &str, room: &str, user: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut socket = RawSocket::connect_url(url).await;
        match socket.join(room, user).await {
            ServerMessage::Reply {
                reply: Reply::Joined { nodes, .. },
                ..
            } if nodes.len() >= count => return,
            ServerMessage::Reply {
                reply: Reply::Joined { .. },
                ..
            } => {}
            other => panic!("{user} could not join {room} at {url}: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "{url} never listed {count} nodes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // next heartbeat
    }
}

/// The room's owner in Redis (`None`: unclaimed).
/// The streams node `url` relays for `room` now (`relay.relayLinks`).
async fn relay_links(url: &str, room: &str) -> serde_json::Value {
    let view = room_view(url, room).await.expect("the room is there");
    view["relay"]["relayLinks"].clone()
}

/// Waits until node `url` relays exactly `streams` for `room`.
async fn links_become(url: &str, room: &str, streams: &[StreamId], what: &str) {
    let want = serde_json::json!(streams.iter().map(|s| s.0).collect::<Vec<_>>());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = relay_links(url, room).await;
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: links {now}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `node-relay-node-b…` members of `room` on node `url`.
async fn relay_members(url: &str, room: &str) -> Vec<String> {
    let view = room_view(url, room).await.expect("the room is there");
    let mut members: Vec<String> = user_ids(&view)
        .into_iter()
        .filter(|u| u.starts_with("node-relay-node-b"))
        .collect();
    members.sort();
    members
}

/// The next event of `client` that `pick` takes, within 20 s.
async fn event<T>(client: &Client, what: &str, pick: impl FnMut(&RoomEvent) -> Option<T>) -> T {
    wait_event(client, Duration::from_secs(20), what, pick).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_owner_node_brings_the_relay_nodes_players_back() {
    sdk_log();
    let Some(redis) = Redis::start("relayup_killing_the_owner_node") else {
        return;
    };
    let (mut a, b) = two_nodes(&redis, &[], &["--relay-subscribers"]).await;
    // Both nodes know both: alice, who joined a, has b to go to.
    nodes_listed(&a.url, "room-probe-a", "probe", 2).await;
    nodes_listed(&b.url, "room-probe-b", "probe", 2).await;
    let room = "room-owner-dies";

    let (alice, old_id) = publisher(&a.url, room, "alice").await;
    let mut players = Vec::new();
    for name in ["p1", "p2"] {
        let player = Client::new();
        player
            .join(config(&b.url, room, name, Role::Player))
            .await
            .expect("a player joins at b");
        let remote = player
            .subscribe(old_id, Default::default())
            .await
            .expect("subscribe at b");
        decodes(&remote, 10, "a player decodes alice through b").await;
        players.push(player);
    }
    let on_b = room_view(&b.url, room).await.expect("the room is on b");
    assert_eq!(on_b["relay"]["ownerNode"], "node-a", "{on_b}");
    for client in players.iter().chain([&alice]) {
        while client.events().try_recv().is_ok() {}
    }

    a.kill();
    let killed = Instant::now();
    // Alice comes back on the room's new node and publishes again there.
    let new_id = wait_event(
        &alice,
        Duration::from_secs(30),
        "alice republished",
        |e| match e {
            RoomEvent::LocalStreamRepublished {
                previous,
                stream_id,
            } if *previous == old_id => Some(*stream_id),
            _ => None,
        },
    )
    .await;
    // B's players were told to go (the mirror's owner is gone), joined
    // again and decode alice's new stream.
    for (i, player) in players.iter().enumerate() {
        wait_event(
            player,
            Duration::from_secs(30),
            "the player sees alice's new stream",
            |e| match e {
                RoomEvent::StreamAdded(info) if info.stream_id == new_id => Some(()),
                _ => None,
            },
        )
        .await;
        let remote = player
            .subscribe(new_id, Default::default())
            .await
            .expect("the player's subscription to the new stream");
        decodes(
            &remote,
            10,
            &format!("player {} decodes after the kill", i + 1),
        )
        .await;
    }
    eprintln!(
        "players on b decode again {:?} after kill -9 of the owner",
        killed.elapsed()
    );
    // The room lives on b now, as a room of its own: no mirror is left.
    assert_eq!(
        owner(&redis, room).as_deref(),
        Some("node-b"),
        "b: {:#?}",
        b.log()
    );
    let on_b = room_view(&b.url, room).await.expect("the room is on b");
    assert!(on_b["relay"].is_null(), "a stale mirror on b: {on_b}");
    let mut users = user_ids(&on_b);
    users.sort();
    assert_eq!(users, ["alice", "p1", "p2"], "{on_b}");
    // A joiner reaching b now joins there (no redirect to the dead node).
    let mut carol = RawSocket::connect_url(&b.url).await;
    match carol.join(room, "carol").await {
        ServerMessage::Reply {
            reply: Reply::Joined { .. },
            ..
        } => {}
        other => panic!("carol should join at b: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_links_follow_what_the_nodes_players_watch() {
    let Some(redis) = Redis::start("relayup_links_follow_subscriptions") else {
        return;
    };
    let (a, b) = two_nodes(&redis, &[], &["--relay-subscribers"]).await;
    let room = "room-watched";

    let (_alice, s1) = publisher(&a.url, room, "alice").await;
    let bob = Client::new();
    bob.join(config(&a.url, room, "bob", Role::Joiner))
        .await
        .expect("bob joins at a");
    let s2 = bob.publish(synthetic(660.0)).await.expect("publish");

    // A player on b sees both streams; nothing is relayed before it
    // subscribes.
    let p1 = Client::new();
    let info = p1
        .join(config(&b.url, room, "p1", Role::Player))
        .await
        .expect("p1 joins at b");
    for s in [s1, s2] {
        assert!(info.streams.iter().any(|i| i.stream_id == s), "{info:?}");
    }
    assert_eq!(relay_links(&b.url, room).await, serde_json::json!([]));
    assert_eq!(relay_members(&a.url, room).await, ["node-relay-node-b"]);

    // It watches s1: one link, for s1 only.
    let sees_1 = p1
        .subscribe(s1, Default::default())
        .await
        .expect("subscribe s1");
    decodes(&sees_1, 10, "p1 decodes s1").await;
    links_become(&b.url, room, &[s1], "s1 watched").await;
    assert_eq!(
        relay_members(&a.url, room).await,
        [
            "node-relay-node-b".to_owned(),
            format!("node-relay-node-b-{}", s1.0)
        ]
    );
    // Bad input: a stream that does not exist is refused with its code and
    // opens nothing.
    match p1.subscribe(StreamId(999_999), Default::default()).await {
        Err(e @ ClientError::Server { .. }) => {
            assert_eq!(e.code(), ErrorCode::InvalidSubscribedInfo, "{e}");
        }
        Err(e) => panic!("subscribing to no stream: {e}"),
        Ok(_) => panic!("subscribing to no stream succeeded"),
    }
    // It and a second player watch s2: one more link, still one per stream.
    let sees_2 = p1
        .subscribe(s2, Default::default())
        .await
        .expect("subscribe s2");
    let p2 = player(&b.url, room, "p2").await;
    let p2_sees_2 = p2
        .subscribe(s2, Default::default())
        .await
        .expect("p2 subscribes s2");
    decodes(&sees_2, 10, "p1 decodes s2").await;
    decodes(&p2_sees_2, 10, "p2 decodes s2").await;
    let mut both = [s1, s2];
    both.sort_by_key(|s| s.0);
    links_become(&b.url, room, &both, "s1 and s2 watched").await;

    // Nobody on b watches s1 any more: its link closes after the grace,
    // on both nodes; s2 goes on.
    p1.unsubscribe(s1, Default::default())
        .await
        .expect("unsubscribe s1");
    links_become(&b.url, room, &[s2], "s1 no longer watched").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = [
        "node-relay-node-b".to_owned(),
        format!("node-relay-node-b-{}", s2.0),
    ];
    while relay_members(&a.url, room).await != want {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            relay_members(&a.url, room).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    decodes(&sees_2, 10, "p1 still decodes s2").await;
    decodes(&p2_sees_2, 10, "p2 still decodes s2").await;
    // Watching s1 again opens its link again, and it plays.
    let sees_1 = p2
        .subscribe(s1, Default::default())
        .await
        .expect("subscribe s1 again");
    decodes(&sees_1, 10, "p2 decodes s1").await;
    links_become(&b.url, room, &both, "s1 watched again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_link_the_owner_drops_is_reopened_and_players_get_video_again() {
    use huddle::auth::{Grant, sign_grant};
    let Some(redis) = Redis::start("relayup_link_reopened") else {
        return;
    };
    let (a, b) = two_nodes(&redis, &[], &["--relay-subscribers"]).await;
    let room = "room-reopen";

    let (_alice, stream) = publisher(&a.url, room, "alice").await;
    let p1 = player(&b.url, room, "p1").await;
    let remote = p1
        .subscribe(stream, Default::default())
        .await
        .expect("subscribe at b");
    decodes(&remote, 10, "p1 decodes through b").await;
    let view = room_view(&b.url, room).await.expect("the room is on b");
    assert_eq!(view["relay"]["relayLinks"], serde_json::json!([stream.0]));
    assert_eq!(view["relay"]["linksReopened"], 0, "{view}");

    // A director on a (the console, §3c) removes users there.
    let ctime = huddle::auth::now_unix() + 600;
    let signature = sign_grant(APP_KEY, APP_ID, room, "host", ctime, Grant::Director);
    let mut host = RawSocket::connect_url(&a.url).await;
    host.send(&format!(
        r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"host","role":2,"ctime":{ctime},"signature":"{signature}"}}"#
    ))
    .await;
    match host.recv().await {
        ServerMessage::Reply {
            reply: Reply::Joined { director, .. },
            ..
        } => assert!(director, "joined says director"),
        other => panic!("the director's join: {other:?}"),
    }
    let answer = |id: u64| {
        move |m: &ServerMessage| match m {
            ServerMessage::Reply { id: got, .. } if got.0 == id => Some(Ok(())),
            ServerMessage::Error(e) if e.id.map(|i| i.0) == Some(id) => Some(Err(e.code)),
            _ => None,
        }
    };
    // Bad input: a relay member that is not there is 90100222; the link
    // stays as it is.
    host.send(r#"{"id":2,"type":"remove-user","userId":"node-relay-node-b-999999"}"#)
        .await;
    let refused = host
        .recv_until(Duration::from_secs(5), "remove-user answer", answer(2))
        .await;
    assert_eq!(refused, Err(ErrorCode::KickUserFail));
    decodes(&remote, 10, "p1 still decodes").await;
    let view = room_view(&b.url, room).await.expect("the room is on b");
    assert_eq!(view["relay"]["linksReopened"], 0, "{view}");

    // Node a drops b's link for the stream: b reopens it, and p1, without
    // doing anything, gets video again.
    host.send(&format!(
        r#"{{"id":3,"type":"remove-user","userId":"node-relay-node-b-{}"}}"#,
        stream.0
    ))
    .await;
    let removed = host
        .recv_until(Duration::from_secs(5), "remove-user answer", answer(3))
        .await;
    assert_eq!(removed, Ok(()));
    let dropped = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = room_view(&b.url, room).await.expect("the room is on b");
        if view["relay"]["linksReopened"].as_u64() >= Some(1) {
            assert_eq!(view["relay"]["relayLinks"], serde_json::json!([stream.0]));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b never reopened the link: {view}\n{:#?}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    decodes(&remote, 20, "p1 decodes through the reopened link").await;
    eprintln!(
        "p1 decoded 20 frames through the reopened link {:?} after a dropped it",
        dropped.elapsed()
    );
    assert_eq!(
        relay_members(&a.url, room).await,
        [
            "node-relay-node-b".to_owned(),
            format!("node-relay-node-b-{}", stream.0)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn names_and_roles_changed_on_the_owner_reach_the_relay_nodes_players() {
    let Some(redis) = Redis::start("relayup_names_and_roles") else {
        return;
    };
    let (a, b) = two_nodes(&redis, &[], &["--relay-subscribers"]).await;
    let room = "room-names";

    let (alice, stream) = publisher(&a.url, room, "alice").await;
    let p1 = Client::new();
    let info = p1
        .join(config(&b.url, room, "p1", Role::Player))
        .await
        .expect("p1 joins at b");
    let seen = info
        .users
        .iter()
        .find(|u| u.user_id.as_str() == "alice")
        .expect("p1 sees alice");
    assert_eq!(
        (seen.user_name.as_str(), seen.role),
        ("alice", Role::Joiner)
    );

    // Bad input: a name over 256 bytes is refused at a (90000005) and
    // reaches nobody; the next name is the first change p1 hears of.
    let refused = alice.change_user_name("x".repeat(257)).await;
    assert!(
        matches!(&refused, Err(e) if e.code() == ErrorCode::InvalidParameter),
        "{refused:?}"
    );
    alice
        .change_user_name("Alice Liddell")
        .await
        .expect("rename");
    let name = event(&p1, "alice's new name", |e| match e {
        RoomEvent::RemoteUserNameChanged { user_id, user_name } if user_id.as_str() == "alice" => {
            Some(user_name.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(name, "Alice Liddell");

    // Alice becomes a player: p1 hears her stream go, then her role.
    alice
        .switch_role(
            Role::Player,
            huddle::client::Credential::AppKey {
                key: APP_KEY.into(),
                valid_for: Duration::from_secs(3600),
            },
        )
        .await
        .expect("switch to player");
    let mut order = Vec::new();
    event(&p1, "alice's new role", |e| match e {
        RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == stream => {
            order.push("stream-removed");
            None
        }
        RoomEvent::PeerRoleChanged { user_id, role } if user_id.as_str() == "alice" => {
            order.push("role");
            assert_eq!(*role, Role::Player);
            Some(())
        }
        _ => None,
    })
    .await;
    assert_eq!(order, ["stream-removed", "role"]);
    // B's room lists her as a's does.
    let users = |view: &serde_json::Value| {
        view["users"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["id"] == "alice")
            .map(|u| (u["name"].clone(), u["role"].clone()))
    };
    let on_a = room_view(&a.url, room).await.expect("the room is on a");
    let on_b = room_view(&b.url, room).await.expect("the room is on b");
    assert_eq!(
        users(&on_b),
        Some((serde_json::json!("Alice Liddell"), serde_json::json!(2)))
    );
    assert_eq!(users(&on_a), users(&on_b));
    assert!(
        on_b["streams"].as_array().expect("streams").is_empty(),
        "{on_b}"
    );
}

/// A director's raw socket in `room` at the node at `url` (§3c).
async fn director(url: &str, room: &str, user: &str) -> RawSocket {
    use huddle::auth::{Grant, sign_grant};
    let ctime = huddle::auth::now_unix() + 600;
    let signature = sign_grant(APP_KEY, APP_ID, room, user, ctime, Grant::Director);
    let mut socket = RawSocket::connect_url(url).await;
    socket
        .send(&format!(
            r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"{user}","role":2,"ctime":{ctime},"signature":"{signature}"}}"#
        ))
        .await;
    match socket.recv().await {
        ServerMessage::Reply {
            reply: Reply::Joined { director, .. },
            ..
        } => assert!(director, "{user}'s joined says director"),
        other => panic!("{user}'s join at {url}: {other:?}"),
    }
    socket
}

/// Sends request `id` (`body`: the JSON fields but the id) and returns its
/// answer: `Ok` for a reply, the code of an error.
async fn request(socket: &mut RawSocket, id: u64, body: &str) -> Result<(), ErrorCode> {
    socket.send(&format!(r#"{{"id":{id},{body}}}"#)).await;
    socket
        .recv_until(Duration::from_secs(5), "the answer", |m| match m {
            ServerMessage::Reply { id: got, .. } if got.0 == id => Some(Ok(())),
            ServerMessage::Error(e) if e.id.map(|i| i.0) == Some(id) => Some(Err(e.code)),
            _ => None,
        })
        .await
}

fn set_program(layout: &str, streams: &[StreamId]) -> String {
    let ids: Vec<String> = streams.iter().map(|s| s.0.to_string()).collect();
    format!(
        r#""type":"set-program","program":{{"layout":"{layout}","streams":[{}]}}"#,
        ids.join(",")
    )
}

fn program(
    layout: huddle::protocol::ProgramLayout,
    streams: &[StreamId],
) -> huddle::protocol::Program {
    huddle::protocol::Program {
        layout,
        streams: streams.to_vec(),
    }
}

/// The next `program-changed` of `client`: the program and who set it.
async fn program_changed(
    client: &Client,
    what: &str,
) -> (huddle::protocol::Program, Option<String>) {
    event(client, what, |e| match e {
        RoomEvent::ProgramChanged { program, by } => {
            Some((program.clone(), by.as_ref().map(|u| u.as_str().to_owned())))
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kiosk_on_the_relay_node_follows_the_program_and_hears_the_loudest() {
    use huddle::protocol::ProgramLayout;
    let Some(redis) = Redis::start("relay2_program_on_the_relay_node") else {
        return;
    };
    let (a, b) = two_nodes(&redis, &[], &["--relay-subscribers"]).await;
    let room = "room-relay2-program";

    let (_alice, s1) = publisher(&a.url, room, "alice").await;
    let bob = Client::new();
    bob.join(config(&a.url, room, "bob", Role::Joiner))
        .await
        .expect("bob joins at a");
    let s2 = bob.publish(synthetic(660.0)).await.expect("publish");
    // A director on the room's node puts alice on air.
    let mut host = director(&a.url, room, "host").await;
    assert_eq!(
        request(&mut host, 2, &set_program("single", &[s1])).await,
        Ok(())
    );

    // A kiosk reaching b is served there; `joined` carries the program.
    let kiosk = Client::new();
    let info = kiosk
        .join(config(&b.url, room, "kiosk", Role::Player))
        .await
        .expect("the kiosk joins at b");
    assert_eq!(info.program, program(ProgramLayout::Single, &[s1]));
    assert_eq!(
        room_view(&b.url, room).await.expect("the room is on b")["relay"]["ownerNode"],
        "node-a"
    );

    // The director's changes reach it, by the director.
    assert_eq!(
        request(&mut host, 3, &set_program("side-by-side", &[s1, s2])).await,
        Ok(())
    );
    assert_eq!(
        program_changed(&kiosk, "the side-by-side program").await,
        (
            program(ProgramLayout::SideBySide, &[s1, s2]),
            Some("host".to_owned())
        )
    );
    // An on-air stream goes: the kiosk hears it go, then the program
    // without it (no `by`), as the owner's players do.
    bob.unpublish(s2).await.expect("unpublish");
    let mut order = Vec::new();
    let after = event(&kiosk, "the program without bob", |e| match e {
        RoomEvent::StreamRemoved { stream_id, .. } if *stream_id == s2 => {
            order.push("stream-removed");
            None
        }
        RoomEvent::ProgramChanged { program, by } => {
            order.push("program-changed");
            Some((program.clone(), by.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(order, ["stream-removed", "program-changed"]);
    assert_eq!(after, (program(ProgramLayout::Single, &[s1]), None));

    // Bad input: a director reaching b would change b's copy only. Refused
    // with 90100001, and nothing changes.
    let mut elsewhere = director(&b.url, room, "host-b").await;
    assert_eq!(
        request(&mut elsewhere, 2, &set_program("quad", &[s1])).await,
        Err(ErrorCode::InvalidOperation)
    );
    assert_eq!(
        request(
            &mut elsewhere,
            3,
            r#""type":"remove-user","userId":"kiosk""#
        )
        .await,
        Err(ErrorCode::InvalidOperation)
    );
    assert_eq!(
        request(&mut elsewhere, 4, r#""type":"dismiss-room""#).await,
        Err(ErrorCode::InvalidOperation)
    );
    // The next program the kiosk hears is the one set on a (no duplicate
    // of the one before, nothing of b's director).
    assert_eq!(
        request(&mut host, 4, &set_program("quad", &[s1])).await,
        Ok(())
    );
    assert_eq!(
        program_changed(&kiosk, "the quad program").await,
        (program(ProgramLayout::Quad, &[s1]), Some("host".to_owned()))
    );
    let on_b = room_view(&b.url, room).await.expect("the room is on b");
    assert!(
        user_ids(&on_b).iter().any(|u| u == "kiosk"),
        "the kiosk is still in b's room: {on_b}"
    );

    // Volume indications: with top-N audio on at b, the kiosk hears who
    // talks on a, as loud as a's players do (a's hub writes the publisher's
    // levels onto b's relay link; b's top-N leg reads them).
    let _slots = kiosk
        .enable_top_three_audio_mode(true)
        .await
        .expect("top-N audio at b");
    let volumes = event(
        &kiosk,
        "a volume indication of alice talking",
        |e| match e {
            RoomEvent::VolumeIndicator(v)
                if v.iter()
                    .any(|u| u.user_id.as_str() == "alice" && u.volume > 0) =>
            {
                Some(v.clone())
            }
            _ => None,
        },
    )
    .await;
    eprintln!("the kiosk at b hears {volumes:?}");
    assert!(
        volumes.iter().all(|u| u.user_id.as_str() != "kiosk"),
        "{volumes:?}"
    );
}

/// nftables rules of one test in a table of their own, removed on drop.
struct Firewall {
    table: &'static str,
}

impl Firewall {
    /// Drops every UDP datagram from `from` to `to` (both on loopback).
    fn drop_udp(table: &'static str, from: &str, to: &str) -> Self {
        nft(&format!("delete table inet {table}")).ok(); // a leftover: fine
        nft(&format!(
            "table inet {table} {{\n chain input {{\n  type filter hook input priority -10; policy accept;\n  ip saddr {from} ip daddr {to} meta l4proto udp drop\n }}\n}}\n"
        ))
        .expect("nft rules");
        Self { table }
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        nft(&format!("delete table inet {}", self.table)).ok(); // best effort
    }
}

fn nft(script: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Root and `nft`, or `skip`.
fn nft_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip(test, "nftables rules need root");
        return false;
    }
    if Command::new("nft").arg("--version").output().is_err() {
        skip(test, "no `nft` (Debian package nftables)");
        return false;
    }
    true
}

/// `relay.<field>` of `room` on node `url`, as a number.
async fn relay_count(url: &str, room: &str, field: &str) -> u64 {
    let view = room_view(url, room).await.expect("the room is there");
    view["relay"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no relay.{field}: {view}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_link_whose_path_dies_silently_is_reopened_within_seconds() {
    const TEST: &str = "relay2_silent_path";
    if !nft_or_skip(TEST) {
        return;
    }
    let Some(redis) = Redis::start(TEST) else {
        return;
    };
    // Each node's media on an address of its own, so that a rule can cut
    // the relay link (a → b) and nothing else: alice (127.0.0.1) talks to
    // a (127.2.0.3), the players (127.0.0.1) to b (127.2.0.2).
    let (a, b) = two_nodes(
        &redis,
        &["--rtc-ip", "127.2.0.3"],
        &["--relay-subscribers", "--rtc-ip", "127.2.0.2"],
    )
    .await;
    let room = "room-relay2-silent";

    let (_alice, stream) = publisher(&a.url, room, "alice").await;
    let p1 = player(&b.url, room, "p1").await;
    let remote = p1
        .subscribe(stream, Default::default())
        .await
        .expect("subscribe at b");
    decodes(&remote, 10, "p1 decodes through b").await;
    assert_eq!(relay_count(&b.url, room, "linksSilent").await, 0);

    // Every datagram a sends b is lost from now on: no ICE or DTLS close,
    // nothing on the signalling.
    let firewall = Firewall::drop_udp("huddle_relay2_silent", "127.2.0.3", "127.2.0.2");
    let cut = Instant::now();
    let deadline = cut + Duration::from_secs(15);
    while relay_count(&b.url, room, "linksSilent").await == 0 {
        assert!(
            Instant::now() < deadline,
            "b never saw its relay link silent (ICE alone takes 30 s): {:#?}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = cut.elapsed();
    // The path comes back: b's retries get through, and p1, without doing
    // anything, decodes again.
    drop(firewall);
    let healed = Instant::now();
    let deadline = healed + Duration::from_secs(20);
    while relay_count(&b.url, room, "linksReopened").await == 0 {
        assert!(
            Instant::now() < deadline,
            "b never reopened the link: {:#?}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    decodes(&remote, 20, "p1 decodes through the reopened link").await;
    eprintln!(
        "silent relay link seen {seen:?} after the cut; p1 decoded 20 frames {:?} after the path came back",
        healed.elapsed()
    );
    // Node a serves b through one link again (the dead ones' members went).
    let want = [
        "node-relay-node-b".to_owned(),
        format!("node-relay-node-b-{}", stream.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(15);
    while relay_members(&a.url, room).await != want {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            relay_members(&a.url, room).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_lived_mirror_renews_its_node_credential() {
    let Some(redis) = Redis::start("relay2_credential_renewal") else {
        return;
    };
    // The owner warns 1 s before a signature expires; b's credential lives
    // 3 s: without renewals the owner would drop b's mirror within 3 s.
    let (a, b) = two_nodes(
        &redis,
        &["--signature-expiry-notice-secs", "1"],
        &["--relay-subscribers", "--relay-credential-secs", "3"],
    )
    .await;
    let room = "room-relay2-renewal";

    let (_alice, stream) = publisher(&a.url, room, "alice").await;
    let p1 = player(&b.url, room, "p1").await;
    let remote = p1
        .subscribe(stream, Default::default())
        .await
        .expect("subscribe at b");
    decodes(&remote, 10, "p1 decodes through b").await;
    while p1.events().try_recv().is_ok() {} // its join's events

    // Four lifetimes: p1 watches on, the mirror's member stays on a.
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        decodes(&remote, 5, "p1 decodes on").await;
        assert_eq!(
            relay_members(&a.url, room).await,
            [
                "node-relay-node-b".to_owned(),
                format!("node-relay-node-b-{}", stream.0)
            ]
        );
    }
    let renewed = relay_count(&b.url, room, "credentialsRenewed").await;
    assert!(renewed >= 4, "{renewed} renewals in 12 s");
    // p1 was never sent away nor reconnected.
    for e in p1.events().try_iter() {
        assert!(
            !matches!(
                e,
                RoomEvent::ClientBanned { .. } | RoomEvent::ConnectionStateChanged { .. }
            ),
            "{e:?}"
        );
    }
    assert_eq!(relay_count(&b.url, room, "linksReopened").await, 0);
}

/// A self-signed certificate for localhost and 127.0.0.1: its PEM and its
/// key's, written into `dir`.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("a certificate");
    std::fs::create_dir_all(dir).expect("temp dir");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let pem = certified.cert.pem();
    std::fs::write(&cert, &pem).expect("write the certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write the key");
    (cert, key, pem.into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn players_are_relayed_from_an_owner_that_speaks_tls() {
    let Some(redis) = Redis::start("relay2_tls_owner") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("huddle-relay2-tls-{}", std::process::id()));
    let (cert, key, pem) = certificate(&dir);
    let (cert, key) = (cert.to_str().expect("utf-8"), key.to_str().expect("utf-8"));
    // a serves wss:// and https:// only; b trusts its certificate, c does
    // not (the system's CAs).
    let a = Node::start("node-a", &redis, &["--tls-cert", cert, "--tls-key", key]);
    assert!(a.url.starts_with("wss://"), "{}", a.url);
    let b = Node::start(
        "node-b",
        &redis,
        &["--relay-subscribers", "--relay-ca", cert],
    );
    let c = Node::start("node-c", &redis, &["--relay-subscribers"]);
    for node in ["node-a", "node-b", "node-c"] {
        registered(&redis, node).await;
    }
    let room = "room-relay2-tls";

    let alice = Client::new();
    alice
        .set_proxy_server(huddle::client::ProxyConfig {
            url: None,
            ca_pem: Some(pem),
        })
        .await
        .expect("trust a's certificate");
    alice
        .join(config(&a.url, room, "alice", Role::Joiner))
        .await
        .expect("alice joins at a over wss");
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");

    // A player at b is served there: the mirror and the relay link speak
    // TLS to a.
    let p1 = Client::new();
    let info = p1
        .join(config(&b.url, room, "p1", Role::Player))
        .await
        .expect("p1 joins at b");
    assert!(
        info.streams.iter().any(|s| s.stream_id == stream),
        "{info:?}"
    );
    let remote = p1
        .subscribe(stream, Default::default())
        .await
        .expect("subscribe at b");
    decodes(&remote, 20, "p1 decodes alice through b").await;
    let on_b = room_view(&b.url, room).await.expect("the room is on b");
    assert_eq!(on_b["relay"]["ownerNode"], "node-a", "{on_b}");
    assert_eq!(on_b["relay"]["relayLinks"], serde_json::json!([stream.0]));

    // Bad input: c does not trust a's certificate: no mirror, the player is
    // sent to a (as when the owner cannot be reached), and nothing changes
    // for p1.
    let mut p2 = RawSocket::connect_url(&c.url).await;
    let ctime = huddle::auth::now_unix() + 600;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, room, "p2", ctime);
    p2.send(&format!(
        r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"{room}","userId":"p2","role":2,"ctime":{ctime},"signature":"{signature}"}}"#
    ))
    .await;
    match p2.recv().await {
        ServerMessage::Reply {
            reply: Reply::Redirect { node_id, url, .. },
            ..
        } => {
            assert_eq!(node_id, "node-a");
            assert_eq!(url, a.url);
        }
        other => panic!("expected a redirect to node-a, got {other:?}"),
    }
    assert!(room_view(&c.url, room).await.is_none(), "no mirror on c");
    decodes(&remote, 10, "p1 still decodes").await;
    std::fs::remove_dir_all(&dir).ok(); // best effort: a temp dir
}
