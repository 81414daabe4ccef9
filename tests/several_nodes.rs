//! Issue 15 §2: several `huddle serve` nodes coordinated through a real
//! Redis. Users who connect to different nodes for one room end up in one
//! room (a join for a room held elsewhere is redirected) and see and hear
//! each other; killing the room's node (`kill -9`) moves the room to another
//! node and its users' SDKs get back by themselves; Redis going away refuses
//! new rooms with 90100211 while a call in progress carries on, and the node
//! registers again when Redis is back.
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::node::{Node, TTL_SECS, http, owner, registered};
use common::redis::Redis;
use common::*;
use huddle::client::{Client, ConnectionState, JoinConfig, RemoteStream, RoomEvent};
use huddle::protocol::{ErrorCode, Reply, Role, ServerMessage, StreamId};

fn config(url: &str, room: &str, user: &str) -> JoinConfig {
    common::node::config(url, room, user, Role::Joiner)
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
async fn nodes_listed(url: &str, room: &str, user: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut socket = RawSocket::connect_url(url).await;
        match socket.join(room, user).await {
            ServerMessage::Reply {
                reply: Reply::Joined { nodes, .. },
                ..
            } if nodes.len() >= count => return nodes,
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

/// Waits until `remote` decoded `frames` more video frames and audio frames.
async fn decodes(remote: &RemoteStream, frames: u64, what: &str) {
    let start = remote.stats();
    wait_for(Duration::from_secs(20), what, || {
        let now = remote.stats();
        (now.frames_decoded >= start.frames_decoded + frames
            && now.audio_frames_decoded >= start.audio_frames_decoded + frames)
            .then_some(())
    })
    .await;
}

/// The stream `publisher` has in `client`'s room now (from its events).
async fn stream_of(client: &Client, publisher: &str) -> StreamId {
    wait_event(
        client,
        Duration::from_secs(20),
        "the other's stream",
        |e| match e {
            RoomEvent::StreamAdded(info) if info.user_id.as_str() == publisher => {
                Some(info.stream_id)
            }
            _ => None,
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_on_two_nodes_meet_in_one_room_and_see_and_hear_each_other() {
    let Some(redis) = Redis::start("users_on_two_nodes_meet_in_one_room") else {
        return;
    };
    let a = Node::start("node-a", &redis, &[]);
    let b = Node::start("node-b", &redis, &[]);
    registered(&redis, "node-a").await;
    registered(&redis, "node-b").await;

    // Alice creates the room on node a; Bob asks node b for it.
    let alice = Client::new();
    alice
        .join(config(&a.url, "room-two", "alice"))
        .await
        .expect("alice joins at a");
    assert_eq!(owner(&redis, "room-two").as_deref(), Some("node-a"));
    let alice_stream = alice.publish(synthetic(440.0)).await.expect("publish");
    let bob = Client::new();
    let info = bob
        .join(config(&b.url, "room-two", "bob"))
        .await
        .expect("bob joins through b");
    // In the same room: he sees her and her stream.
    assert_eq!(
        info.users
            .iter()
            .map(|u| u.user_id.as_str())
            .collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(info.streams.iter().any(|s| s.stream_id == alice_stream));
    let bob_stream = bob.publish(synthetic(660.0)).await.expect("publish");
    assert_eq!(stream_of(&alice, "bob").await, bob_stream);

    let bob_sees = bob
        .subscribe(alice_stream, Default::default())
        .await
        .expect("bob subscribes");
    let alice_sees = alice
        .subscribe(bob_stream, Default::default())
        .await
        .expect("alice subscribes");
    decodes(&bob_sees, 20, "bob decodes alice").await;
    decodes(&alice_sees, 20, "alice decodes bob").await;

    // On the wire: node b answers a join for the room with a redirect to a.
    let mut raw = RawSocket::connect_url(&b.url).await;
    match raw.join("room-two", "carol").await {
        ServerMessage::Reply {
            reply: Reply::Redirect { node_id, url, .. },
            ..
        } => {
            assert_eq!(node_id, "node-a");
            assert_eq!(url, a.url);
        }
        other => panic!("expected a redirect to node-a, got {other:?}"),
    }
    // Not joined there: room requests are refused, the connection stays.
    raw.send(r#"{"id":2,"type":"unpublish","streamId":1}"#)
        .await;
    assert_eq!(
        expect_error(raw.recv().await),
        (
            Some(huddle::protocol::RequestId(2)),
            ErrorCode::InvalidOperation
        )
    );
    // Bad input is refused before any routing: a bad signature at b is
    // 90100031, not a redirect.
    let mut forged = RawSocket::connect_url(&b.url).await;
    forged
        .send(&format!(
            r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{APP_ID}","roomId":"room-two","userId":"mallory","ctime":{},"signature":"{}"}}"#,
            huddle::auth::now_unix() + 600,
            "0".repeat(64)
        ))
        .await;
    assert_eq!(
        expect_error(forged.recv().await).1,
        ErrorCode::SignatureInvalid
    );
    // WHIP at b for the room: 307 to the same request at a (RFC 9725
    // §4.5), after the bearer is checked (a bad one is 401, not a hint).
    let ctime = huddle::auth::now_unix() + 600;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, "room-two", "wendy", ctime);
    let path = format!("/whip/room-two?userid=wendy&ctime={ctime}");
    let (status, head) = http(&b.url, "POST", &path, &signature, "v=0\r\n").await;
    assert_eq!(status, 307, "{head}");
    let location = format!("location: {}{path}", a.url.replacen("ws://", "http://", 1));
    assert!(
        head.to_ascii_lowercase()
            .contains(&location.to_ascii_lowercase()),
        "{head}"
    );
    let (status, _) = http(&b.url, "POST", &path, &"0".repeat(64), "v=0\r\n").await;
    assert_eq!(status, 401);
    // The joined reply lists both nodes.
    let nodes = nodes_listed(&a.url, "room-list", "dave", 2).await;
    assert!(
        nodes.contains(&a.url) && nodes.contains(&b.url),
        "{nodes:?}"
    );
    // And media still flows both ways.
    decodes(&bob_sees, 10, "bob still decodes alice").await;
    decodes(&alice_sees, 10, "alice still decodes bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_rooms_node_moves_the_room_and_its_users_recover() {
    sdk_log();
    let Some(redis) = Redis::start("killing_the_rooms_node_moves_the_room") else {
        return;
    };
    let a = Node::start("node-a", &redis, &[]);
    let mut b = Node::start("node-b", &redis, &[]);
    registered(&redis, "node-a").await;
    registered(&redis, "node-b").await;
    // Node b knows node a (its `joined` lists both): Bob, who only knows b,
    // has somewhere to go.
    nodes_listed(&b.url, "room-probe", "probe", 2).await;

    // The room lives on b; Bob connects to b, Alice to a (redirected).
    let bob = Client::new();
    bob.join(config(&b.url, "room-move", "bob"))
        .await
        .expect("bob joins at b");
    let alice = Client::new();
    alice
        .join(config(&a.url, "room-move", "alice"))
        .await
        .expect("alice joins through a");
    assert_eq!(owner(&redis, "room-move").as_deref(), Some("node-b"));
    let old_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let old_remote = bob
        .subscribe(old_id, Default::default())
        .await
        .expect("subscribe");
    decodes(&old_remote, 10, "frames before the kill").await;
    while bob.events().try_recv().is_ok() {}
    while alice.events().try_recv().is_ok() {}

    b.kill();
    let killed = Instant::now();
    // Alice publishes again on the room's new node, under a new id.
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
    let mut states = Vec::new();
    wait_for(Duration::from_secs(30), "bob sees the new stream", || {
        while let Ok(event) = bob.events().try_recv() {
            match event {
                RoomEvent::ConnectionStateChanged { current, .. } => states.push(current),
                RoomEvent::StreamAdded(info) if info.stream_id == new_id => return Some(()),
                _ => {}
            }
        }
        None
    })
    .await;
    assert_eq!(states.first(), Some(&ConnectionState::Reconnecting));
    assert_eq!(bob.connection_state(), ConnectionState::Connected);
    assert_eq!(alice.connection_state(), ConnectionState::Connected);
    // The SDK subscribed again by itself; it decodes on node a.
    let remote = bob
        .subscribe(new_id, Default::default())
        .await
        .expect("the restored subscription");
    decodes(&remote, 10, "frames after the move").await;
    eprintln!(
        "room moved and bob decodes again {:?} after kill -9 (ttl {TTL_SECS} s)",
        killed.elapsed()
    );
    assert_eq!(
        owner(&redis, "room-move").as_deref(),
        Some("node-a"),
        "node a log: {:#?}",
        a.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_new_rooms_are_refused_while_calls_go_on() {
    let Some(mut redis) = Redis::start("without_redis_new_rooms_are_refused") else {
        return;
    };
    let a = Node::start("node-a", &redis, &[]);
    registered(&redis, "node-a").await;
    let alice = Client::new();
    alice
        .join(config(&a.url, "room-stay", "alice"))
        .await
        .expect("alice joins");
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    let bob = Client::new();
    bob.join(config(&a.url, "room-stay", "bob"))
        .await
        .expect("bob joins");
    let remote = bob
        .subscribe(stream, Default::default())
        .await
        .expect("subscribe");
    decodes(&remote, 10, "frames before Redis goes").await;

    redis.stop();
    // A new room: refused with the numbered error (at once, or once the
    // node noticed; the connection stays usable).
    let refused = Instant::now();
    let code = loop {
        let mut socket = RawSocket::connect_url(&a.url).await;
        match socket.join("room-new", "carol").await {
            ServerMessage::Error(e) => break e.code,
            ServerMessage::Reply { .. } => {
                assert!(
                    refused.elapsed() < Duration::from_secs(5),
                    "node a still creates rooms 5 s after Redis went"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, ErrorCode::SaveRoomError);
    // The room in progress takes a newcomer, and its media goes on.
    let mut dave = RawSocket::connect_url(&a.url).await;
    dave.joined("room-stay", "dave").await;
    decodes(&remote, 30, "frames without Redis").await;
    assert_eq!(bob.connection_state(), ConnectionState::Connected);

    // Redis is back (empty): the node registers and claims its room again,
    // and new rooms are made again.
    redis.restart();
    registered(&redis, "node-a").await;
    wait_for(Duration::from_secs(10), "room-stay claimed again", || {
        (owner(&redis, "room-stay").as_deref() == Some("node-a")).then_some(())
    })
    .await;
    let mut carol = RawSocket::connect_url(&a.url).await;
    carol.joined("room-new", "carol").await;
    decodes(&remote, 10, "frames after Redis is back").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_cleanly_frees_its_rooms_at_once() {
    let Some(redis) = Redis::start("a_node_stopped_cleanly_frees_its_rooms") else {
        return;
    };
    let mut a = Node::start("node-a", &redis, &[]);
    registered(&redis, "node-a").await;
    let mut alice = RawSocket::connect_url(&a.url).await;
    alice.joined("room-free", "alice").await;
    assert_eq!(owner(&redis, "room-free").as_deref(), Some("node-a"));

    let pid = libc::pid_t::try_from(a.child.id()).expect("pid fits");
    // SAFETY: kill(2) with the pid of our own child, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    alice.until_shutdown_goodbye("alice").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "node a did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Gone from Redis as it exits, not a TTL later (the claim and the record
    // were refreshed at most a heartbeat ago: they would live 2 s more).
    assert_eq!(owner(&redis, "room-free"), None);
    assert_eq!(
        redis.command(&["EXISTS", "huddle:node:node-a"]).as_deref(),
        Some(":0")
    );
    assert_eq!(
        redis
            .command(&["SISMEMBER", "huddle:nodes", "node-a"])
            .as_deref(),
        Some(":0")
    );
    a.lines
        .wait_for("\"left the cluster\"", Duration::from_secs(5), |line| {
            line.contains("left the cluster").then_some(())
        });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_learns_of_a_node_started_later_and_moves_there() {
    sdk_log();
    let Some(redis) = Redis::start("a_client_learns_of_a_node_started_later") else {
        return;
    };
    let mut a = Node::start("node-a", &redis, &[]);
    registered(&redis, "node-a").await;
    // Bob joins while node a is alone: `joined` lists only a.
    let bob = Client::new();
    bob.join(config(&a.url, "room-late", "bob"))
        .await
        .expect("bob joins at a");
    let mut watcher = RawSocket::connect_url(&a.url).await;
    watcher.joined("room-watch", "watcher").await;

    let b = Node::start("node-b", &redis, &[]);
    registered(&redis, "node-b").await;
    // Every session on a is told of b within a heartbeat.
    let nodes = watcher
        .recv_until(Duration::from_secs(10), "nodes-changed", |m| match m {
            ServerMessage::Event {
                event: huddle::protocol::Event::NodesChanged { nodes },
            } => Some(nodes.clone()),
            _ => None,
        })
        .await;
    let mut expected = vec![a.url.clone(), b.url.clone()];
    expected.sort();
    assert_eq!(nodes, expected);

    // Bob's SDK has read the event too once a round trip after it is back
    // (a node killed with unread data resets the connection, and the
    // client's unread bytes are lost with it).
    bob.change_user_name("bob (moving)")
        .await
        .expect("a round trip");
    // Node a dies: Bob's SDK knows b only from that event, and gets there.
    while bob.events().try_recv().is_ok() {}
    a.kill();
    let mut states = Vec::new();
    wait_for(Duration::from_secs(30), "bob back, on node b", || {
        while let Ok(event) = bob.events().try_recv() {
            if let RoomEvent::ConnectionStateChanged { current, .. } = event {
                states.push(current);
            }
        }
        (states.last() == Some(&ConnectionState::Connected)).then_some(())
    })
    .await;
    assert_eq!(states.first(), Some(&ConnectionState::Reconnecting));
    assert_eq!(owner(&redis, "room-late").as_deref(), Some("node-b"));
    // The room works there: a newcomer at b sees Bob.
    let carol = Client::new();
    let info = carol
        .join(config(&b.url, "room-late", "carol"))
        .await
        .expect("carol joins at b");
    assert_eq!(
        info.users
            .iter()
            .map(|u| u.user_id.as_str())
            .collect::<Vec<_>>(),
        ["bob"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_client_follows_a_redirect_to_the_rooms_node() {
    const TEST: &str = "the_web_client_follows_a_redirect_to_the_rooms_node";
    let Some(redis) = Redis::start(TEST) else {
        return;
    };
    let Some(mut browser) = common::chromium::Chromium::start_or_skip(TEST, &[]).await else {
        return;
    };
    let a = Node::start("node-a", &redis, &[]);
    let b = Node::start("node-b", &redis, &[]);
    registered(&redis, "node-a").await;
    registered(&redis, "node-b").await;
    let native = Client::new();
    native
        .join(config(&a.url, "room-web", "native"))
        .await
        .expect("native joins at a");

    // The page comes from node b and joins there: redirected to a.
    let ctime = huddle::auth::now_unix() + 600;
    let signature = huddle::auth::sign(APP_KEY, APP_ID, "room-web", "web", ctime);
    let page_url = format!(
        "{}/?app={APP_ID}&room=room-web&user=web&signature={signature}&ctime={ctime}&camera=none&mic=none&autojoin=1",
        b.url.replacen("ws://", "http://", 1)
    );
    let page = browser.open(&page_url).await;
    browser
        .wait_for(
            &page,
            Duration::from_secs(15),
            "the page joined",
            "window.huddle ? huddle.summary() : null",
            |s| (s["state"] == "joined").then_some(()),
        )
        .await;
    wait_event(
        &native,
        Duration::from_secs(10),
        "the page's join",
        |e| match e {
            RoomEvent::PeerJoin(u) if u.user_id.as_str() == "web" => Some(()),
            _ => None,
        },
    )
    .await;
    assert_eq!(owner(&redis, "room-web").as_deref(), Some("node-a"));
}

/// Node `id`'s registered user count (its record in Redis).
fn users_registered(redis: &Redis, id: &str) -> Option<u64> {
    let record = redis.command(&["GET", &format!("huddle:node:{id}")])?;
    let record: serde_json::Value = serde_json::from_str(&record).ok()?;
    record["users"].as_u64()
}

/// `--balance-margin`: a new room goes to the node with the fewest users
/// when the node the join reached has more than the margin more; the
/// client's SDK follows the redirect there. A room that exists stays where
/// it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_rooms_go_to_the_least_loaded_node() {
    let Some(redis) = Redis::start("new_rooms_go_to_the_least_loaded_node") else {
        return;
    };
    let a = Node::start("node-a", &redis, &["--balance-margin", "1"]);
    let b = Node::start("node-b", &redis, &["--balance-margin", "1"]);
    registered(&redis, "node-a").await;
    registered(&redis, "node-b").await;

    // Equal (empty) nodes: the room stays where its first join arrived.
    let alice = Client::new();
    alice
        .join(config(&a.url, "busy", "alice"))
        .await
        .expect("alice joins at a");
    assert_eq!(owner(&redis, "busy").as_deref(), Some("node-a"));
    let bob = Client::new();
    bob.join(config(&b.url, "busy", "bob"))
        .await
        .expect("bob joins busy through b");
    // a registers its 2 users at its next heartbeat (a third of the TTL).
    wait_for(
        Duration::from_secs(10),
        "node-a registering 2 users",
        || (users_registered(&redis, "node-a")? >= 2).then_some(()),
    )
    .await;
    let b_users = users_registered(&redis, "node-b").expect("b's record");
    assert_eq!(b_users, 0, "b holds no room yet");

    // 2 users on a, 0 on b: more than the margin apart, so a new room asked
    // of a goes to b, and carol ends up there.
    let carol = Client::new();
    carol
        .join(config(&a.url, "fresh", "carol"))
        .await
        .expect("carol joins fresh through a");
    assert_eq!(
        owner(&redis, "fresh").as_deref(),
        Some("node-b"),
        "node-a log: {:?}",
        a.log()
    );
    let dave = Client::new();
    dave.join(config(&b.url, "fresh", "dave"))
        .await
        .expect("dave joins fresh at b");
    let publisher = carol.publish(synthetic(330.0)).await.expect("publish");
    assert_eq!(stream_of(&dave, "carol").await, publisher);

    // Now 2 on a and 2 on b: within the margin, a keeps its next new room.
    // b's record counts carol at once when she is placed, but b's own
    // heartbeat rewrites it with the users it holds, which can be 0 for the
    // moment before carol's redirected join arrives; wait for the heartbeat
    // that counts both.
    wait_for(
        Duration::from_secs(10),
        "node-b registering 2 users",
        || (users_registered(&redis, "node-b")? >= 2).then_some(()),
    )
    .await;
    let erin = Client::new();
    erin.join(config(&a.url, "fresh-2", "erin"))
        .await
        .expect("erin joins fresh-2 at a");
    assert_eq!(owner(&redis, "fresh-2").as_deref(), Some("node-a"));
    for client in [alice, bob, carol, dave, erin] {
        client.leave().await.ok(); // a failed leave changes nothing here
    }
}

/// The claim script itself, against records written by hand: rooms go to
/// the node with the fewest users, each placement counts at once (a burst
/// does not all land on one node), an unreadable record is skipped, a room
/// a live node holds never moves, and without a margin it stays here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_script_places_rooms_by_users() {
    use huddle::server::cluster::keys::{CLAIM, NODE_PREFIX, NODES, Placement, room_key};
    let Some(redis) = Redis::start("the_claim_script_places_rooms_by_users") else {
        return;
    };
    let client = ::redis::Client::open(redis.url()).expect("url");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    for (id, record) in [
        ("a", r#"{"url":"ws://a","rooms":3,"users":5}"#),
        ("b", r#"{"url":"ws://b","rooms":0,"users":0}"#),
        ("c", r#"{"url":"ws://c","rooms":1,"users":3}"#),
        ("d", "{"),
    ] {
        redis.command(&["SET", &format!("{NODE_PREFIX}{id}"), record, "PX", "60000"]);
        redis.command(&["SADD", NODES, id]);
    }
    let claim = |room: &'static str, me: &'static str, placement: Placement| {
        let mut conn = conn.clone();
        async move {
            let script = ::redis::Script::new(CLAIM);
            let mut invocation = script.key(room_key(&huddle::protocol::RoomId(room.into())));
            invocation
                .key(NODES)
                .arg(me)
                .arg(60_000)
                .arg(NODE_PREFIX)
                .arg(placement.margin_arg());
            let (owner, _record): (String, Option<String>) = invocation
                .invoke_async(&mut conn)
                .await
                .expect("the claim script runs");
            owner
        }
    };
    let least = Placement::LeastUsers { margin: 0 };
    // b (0 users) takes three rooms in a row: it counts 1, 2, 3, each below
    // c's 3 until the last.
    for room in ["r1", "r2", "r3"] {
        assert_eq!(claim(room, "a", least).await, "b", "{room}");
    }
    assert_eq!(users_registered(&redis, "b"), Some(3));
    // b asking, tied with c at 3: nobody has fewer, it stays (b counts 4).
    assert_eq!(claim("r4", "b", least).await, "b");
    // a asking: c (3) now has the fewest.
    assert_eq!(claim("r5", "a", least).await, "c");
    assert_eq!(users_registered(&redis, "c"), Some(4));
    // A room b holds stays on b, whoever asks.
    assert_eq!(claim("r1", "c", least).await, "b");
    // Here: the node that asked, and nothing is counted.
    assert_eq!(claim("r6", "a", Placement::Here).await, "a");
    assert_eq!(users_registered(&redis, "a"), Some(5));
    // A margin of 5: a (5) is not more than 5 above b or c (4).
    assert_eq!(
        claim("r7", "a", Placement::LeastUsers { margin: 5 }).await,
        "a"
    );
    // d's unreadable record was skipped every time, and is untouched.
    assert_eq!(
        redis
            .command(&["GET", &format!("{NODE_PREFIX}d")])
            .as_deref(),
        Some("{")
    );
}
