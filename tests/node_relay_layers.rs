//! Issue 15 §2, simulcast over the node relay: players on a relay node
//! (`--relay-subscribers`) choose among the owner's layers as players on the
//! owner do (`resolutionId`, `auto`), and the relay node pulls one relay
//! link per layer its players watch (a WHEP play with `?layer=`), so a
//! player there gets the small layer while one on the owner gets the top,
//! switches keep one continuous stream, and a bad layer gets its numbered
//! error (two real `huddle serve` processes and a real Redis, as
//! node_relay.rs).
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::nginx::Nginx;
use common::node::{Node, config, http, pair, registered};
use common::redis::Redis;
use common::*;
use huddle::client::{Client, RemoteStream, SubscribeOptions};
use huddle::media::VideoProfile;
use huddle::protocol::{ErrorCode, Event, LayerChoice, Reply, Role, ServerMessage, StreamId};

/// 480x360 (360p_2) on top, 240x180 (180p_2) below, as simulcast_layers.rs.
fn layered() -> huddle::client::LocalStream {
    let lower = *VideoProfile::by_name("180p_2").expect("a seed profile");
    synthetic(440.0).with_lower_resolutions(vec![lower])
}

async fn joined(url: &str, room: &str, user: &str, role: Role) -> Client {
    let client = Client::new();
    client
        .join(config(url, room, user, role))
        .await
        .unwrap_or_else(|e| panic!("{user} joins at {url}: {e}"));
    client
}

/// Waits until `remote` decodes pictures of `size` and 10 more after.
async fn decodes_size(remote: &RemoteStream, size: (u32, u32), what: &str) {
    let first = wait_for(Duration::from_secs(20), what, || {
        let s = remote.stats();
        (s.last_size == Some(size)).then_some(s.frames_decoded)
    })
    .await;
    wait_for(Duration::from_secs(10), what, || {
        let s = remote.stats();
        (s.last_size == Some(size) && s.frames_decoded >= first + 10).then_some(())
    })
    .await;
}

/// `GET /rooms/{room}` on the node at `url`, as JSON.
async fn room_view(url: &str, room: &str) -> serde_json::Value {
    let (status, text) = http(url, "GET", &format!("/rooms/{room}"), "-", "").await;
    assert_eq!(status, 200, "{text}");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let start = body.find('{').expect("a JSON body");
    let end = body.rfind('}').expect("a JSON body");
    serde_json::from_str(&body[start..=end]).expect("JSON")
}

/// Waits until node b's links of the room are the layers `layers` of `stream`.
async fn layer_links_become(url: &str, room: &str, stream: StreamId, layers: &[&str]) {
    let want: Vec<_> = layers
        .iter()
        .map(|l| serde_json::json!({"streamId": stream.0, "resolutionId": l}))
        .collect();
    let want = serde_json::Value::Array(want);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let view = room_view(url, room).await;
        if view["relay"]["layerLinks"] == want {
            assert_eq!(view["relay"]["relayLinks"], serde_json::json!([stream.0]));
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "layer links never became {want}: {}",
            view["relay"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The owner's users whose id starts with `prefix`.
async fn members(url: &str, room: &str, prefix: &str) -> Vec<String> {
    let view = room_view(url, room).await;
    let mut users: Vec<String> = view["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .filter(|u| u.starts_with(prefix))
        .collect();
    users.sort();
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn players_on_a_relay_node_choose_layers_as_on_the_owner() {
    let Some(redis) = Redis::start("relaysim_layers_over_the_relay") else {
        return;
    };
    let (a, b) = pair(
        &redis,
        ("relaysim-a", &[]),
        ("relaysim-b", &["--relay-subscribers"]),
    )
    .await;
    let room = "room-relaysim-layers";

    // Alice publishes two layers on node a; Ann watches the top there.
    let alice = joined(&a.url, room, "alice", Role::Joiner).await;
    let stream = alice.publish(layered()).await.expect("publish");
    let ann = joined(&a.url, room, "ann", Role::Player).await;
    let ann_sees = ann
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("ann subscribes");
    decodes_size(&ann_sees, (480, 360), "ann decodes the top layer on a").await;

    // Bob, a player on node b, sees the owner's layers and asks for the
    // small one: b pulls that layer alone.
    let bob = Client::new();
    let info = bob
        .join(config(&b.url, room, "bob", Role::Player))
        .await
        .expect("bob joins at b");
    let listed: Vec<_> = info.streams[0]
        .resolutions
        .iter()
        .map(|r| r.resolution_id.as_str())
        .collect();
    assert_eq!(listed, ["360p_2", "180p_2"], "b lists the owner's layers");
    let bob_sees = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("bob subscribes at b");
    decodes_size(
        &bob_sees,
        (480, 360),
        "bob decodes the top layer by default",
    )
    .await;
    let dropped_at_start = bob_sees.stats().frames_dropped;
    let mut before = bob_sees.stats().last_frame_no.expect("stamped frames");
    bob.set_resolution(stream, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect("bob switches to the small layer");
    decodes_size(&bob_sees, (240, 180), "bob decodes the small layer on b").await;
    layer_links_become(&b.url, room, stream, &["180p_2"]).await;
    assert_eq!(
        members(&a.url, room, "node-relay-relaysim-b-").await,
        [format!("node-relay-relaysim-b-{}-l1", stream.0)],
        "a serves b one link, of the small layer"
    );
    // Meanwhile Ann still gets the top.
    decodes_size(&ann_sees, (480, 360), "ann still decodes the top layer").await;

    // Switching on b keeps one continuous stream, through the link of each
    // layer in turn.
    for (choice, size) in [
        ("360p_2", (480, 360)),
        ("180p_2", (240, 180)),
        ("360p_2", (480, 360)),
    ] {
        bob.set_resolution(stream, LayerChoice::Fixed(choice.into()))
            .await
            .expect("switch");
        decodes_size(&bob_sees, size, choice).await;
        let s = bob_sees.stats();
        let now = s.last_frame_no.expect("stamped frames");
        assert!(
            now > before,
            "frame numbers go on after switching to {choice}"
        );
        before = now;
        assert_eq!(s.out_of_order_frames, 0, "no frame number went back: {s:?}");
        assert_eq!(
            s.frames_dropped, dropped_at_start,
            "no decoder error, no lost frame: {s:?}"
        );
        layer_links_become(&b.url, room, stream, &[choice]).await;
    }

    // Bad layers get their numbered error and change nothing: on b's
    // signalling, and on the owner's WHEP endpoint (`?layer=`).
    let err = bob
        .set_resolution(stream, LayerChoice::Fixed("1080p_1".into()))
        .await
        .expect_err("no such layer");
    assert_eq!(err.code(), ErrorCode::UnknownResolution);
    let ctime = huddle::auth::now_unix() + 600;
    let user = "whep-bad-layer";
    let signature = huddle::auth::sign(APP_KEY, APP_ID, room, user, ctime);
    let path = format!(
        "/whep/{room}/{}?userid={user}&ctime={ctime}&role=2&layer=1080p_1",
        stream.0
    );
    let (status, text) = http(&a.url, "POST", &path, &signature, "v=0\r\n").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("91000102"), "{text}");
    assert!(
        members(&a.url, room, user).await.is_empty(),
        "the refused play left no member"
    );
    decodes_size(&bob_sees, (480, 360), "bob still decodes").await;
    decodes_size(&ann_sees, (480, 360), "ann still decodes").await;
    layer_links_become(&b.url, room, stream, &["360p_2"]).await;
    assert_eq!(bob_sees.stats().frames_dropped, dropped_at_start);

    // The publisher stops the small layer while Bob watches it on b: he
    // moves up, as a player on a would; once it is sent again he can
    // choose it again.
    bob.set_resolution(stream, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect("switch");
    decodes_size(&bob_sees, (240, 180), "bob on the small layer again").await;
    alice
        .remove_resolution(stream, "180p_2")
        .await
        .expect("remove");
    decodes_size(&bob_sees, (480, 360), "bob moved up on b").await;
    layer_links_become(&b.url, room, stream, &["360p_2"]).await;
    let err = bob
        .set_resolution(stream, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect_err("a removed layer cannot be chosen on b");
    assert_eq!(err.code(), ErrorCode::UnknownResolution);
    alice
        .add_resolution(stream, "180p_2")
        .await
        .expect("add back");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Err(e) = bob
        .set_resolution(stream, LayerChoice::Fixed("180p_2".into()))
        .await
    {
        assert_eq!(e.code(), ErrorCode::UnknownResolution);
        assert!(
            std::time::Instant::now() < deadline,
            "b never listed the layer added back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    decodes_size(&bob_sees, (240, 180), "bob on the layer added back").await;
    layer_links_become(&b.url, room, stream, &["180p_2"]).await;
    assert_eq!(bob_sees.stats().frames_dropped, dropped_at_start);
}

/// `auto` on the relay node: b pulls every layer (its downlink estimate
/// chooses among what it measures), and the player decodes the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_on_a_relay_node_pulls_every_layer_and_plays() {
    let Some(redis) = Redis::start("relaysim_auto_over_the_relay") else {
        return;
    };
    let (a, b) = pair(
        &redis,
        ("relaysim-c", &[]),
        ("relaysim-d", &["--relay-subscribers"]),
    )
    .await;
    let room = "room-relaysim-auto";
    let alice = joined(&a.url, room, "alice", Role::Joiner).await;
    let stream = alice.publish(layered()).await.expect("publish");
    let bob = joined(&b.url, room, "bob", Role::Player).await;
    let bob_sees = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("bob subscribes at b");
    bob.set_resolution(stream, LayerChoice::Auto)
        .await
        .expect("auto");
    layer_links_become(&b.url, room, stream, &["360p_2", "180p_2"]).await;
    // A loopback downlink carries the top layer.
    decodes_size(&bob_sees, (480, 360), "bob decodes with auto on b").await;
    // Both links carry the audio, one link's is forwarded: Bob hears it
    // once (a 20 ms packet each 20 ms), not once per link.
    let (start, before) = (std::time::Instant::now(), bob_sees.stats().audio_packets);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let heard = bob_sees.stats().audio_packets - before;
    let once = start.elapsed().as_millis() as u64 / 20;
    assert!(
        heard <= once * 3 / 2,
        "{heard} audio packets in {:?}: some came twice",
        start.elapsed()
    );
    assert!(heard >= once / 2, "the audio stopped: {heard}");
    layer_links_become(&b.url, room, stream, &["360p_2", "180p_2"]).await;
    // Back to a fixed layer: the other layer's link closes.
    bob.set_resolution(stream, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect("fixed");
    decodes_size(&bob_sees, (240, 180), "bob decodes the small layer").await;
    layer_links_become(&b.url, room, stream, &["180p_2"]).await;
}

/// nginx passing `http://127.0.0.1:<port>/huddle/…` on to `upstream` as
/// `/…` (WebSocket upgrades too).
fn prefix_proxy(test: &str, upstream: &str) -> Option<Nginx> {
    Nginx::start(
        test,
        |_| {},
        |port, _| {
            format!(
                r#"    server {{
        listen 127.0.0.1:{port};
        location /huddle/ {{
            proxy_pass http://{upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 3600s;
        }}
    }}"#
            )
        },
    )
}

/// The owner node is reached through a proxy whose URL has a path
/// (`ws://127.0.0.1:<port>/huddle/` is its `--public-url`): the relay
/// node's mirror and its WHEP requests (`POST`, then `DELETE` when the
/// player leaves) keep the prefix, and the player decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_behind_a_proxy_with_a_path_is_relayed_under_that_path() {
    let test = "an_owner_behind_a_proxy_with_a_path_is_relayed_under_that_path";
    let Some(redis) = Redis::start("relaysim_owner_behind_a_prefix") else {
        return;
    };
    // The owner's port first, then its public URL through the proxy.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let Some(proxy) = prefix_proxy(test, &format!("127.0.0.1:{port}")) else {
        return;
    };
    let public = format!("ws://127.0.0.1:{}/huddle/", proxy.port);
    let listen = format!("127.0.0.1:{port}");
    let a = Node::start_on("relaysim-e", &redis, &listen, &["--public-url", &public]);
    let b = Node::start("relaysim-f", &redis, &["--relay-subscribers"]);
    registered(&redis, "relaysim-e").await;
    registered(&redis, "relaysim-f").await;
    let room = "room-relaysim-prefix";
    let alice = joined(&a.url, room, "alice", Role::Joiner).await;
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
    let bob = joined(&b.url, room, "bob", Role::Player).await;
    let bob_sees = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("bob subscribes at b");
    decodes_size(&bob_sees, (480, 360), "bob decodes through the proxy").await;
    let view = room_view(&b.url, room).await;
    assert_eq!(view["relay"]["relayLinks"], serde_json::json!([stream.0]));
    bob.leave().await.expect("leave");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let log = loop {
        let log = proxy.requests();
        if log.contains("DELETE /huddle/whep/") {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no DELETE under the prefix: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(log.contains("POST /huddle/whep/"), "{log}");
    assert!(
        log.contains("GET /huddle/ "),
        "the mirror's WebSocket: {log}"
    );
    assert!(!log.contains("\"POST /whep/"), "{log}");
}

/// The next `layers-wanted` the raw publisher gets.
async fn layers_wanted(publisher: &mut RawSocket, what: &str) -> Vec<String> {
    publisher
        .recv_until(Duration::from_secs(15), what, |m| match m {
            ServerMessage::Event {
                event: Event::LayersWanted { resolution_ids, .. },
            } => Some(resolution_ids.clone()),
            _ => None,
        })
        .await
}

/// A layer only a relay node's player watches is encoded: the owner counts
/// the node's relay link of that layer as its watcher (`layers-wanted` to
/// the publisher), and stops counting it when the link closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owner_encodes_a_layer_only_a_relay_nodes_player_watches() {
    let Some(redis) = Redis::start("relaysim_layers_wanted_over_the_relay") else {
        return;
    };
    let (a, b) = pair(
        &redis,
        ("relaysim-g", &[]),
        ("relaysim-h", &["--relay-subscribers"]),
    )
    .await;
    let room = "room-relaysim-wanted";
    // A publisher of two layers that reads its events (no media is
    // needed: what is wanted follows the subscriptions).
    let mut alice = RawSocket::connect_url(&a.url).await;
    alice.joined(room, "alice").await;
    let (_link, offer) = publish_offer(false, true).await;
    alice
        .send(&format!(
            r#"{{"id":2,"type":"publish","audio":false,"video":{{"width":480,"height":360,"frameRate":15}},"sdp":{},"resolutions":[{{"resolutionId":"360p_2","width":480,"height":360,"frameRate":15}},{{"resolutionId":"180p_2","width":240,"height":180,"frameRate":15}}]}}"#,
            json_string(&offer)
        ))
        .await;
    let stream = alice
        .recv_until(Duration::from_secs(10), "the publish answer", |m| match m {
            ServerMessage::Reply {
                reply: Reply::Published { stream_id, .. },
                ..
            } => Some(*stream_id),
            ServerMessage::Error(e) => panic!("publish refused: {e:?}"),
            _ => None,
        })
        .await;
    // Nobody watches the small layer: it is dropped.
    assert_eq!(
        layers_wanted(&mut alice, "the small layer unwanted").await,
        ["360p_2"]
    );
    // Bob, on b, chooses it: b's link of that layer makes it wanted.
    let bob = joined(&b.url, room, "bob", Role::Player).await;
    let _bob_sees = bob
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("bob subscribes at b");
    bob.set_resolution(stream, LayerChoice::Fixed("180p_2".into()))
        .await
        .expect("the small layer");
    assert_eq!(
        layers_wanted(&mut alice, "the small layer wanted for b").await,
        ["360p_2", "180p_2"]
    );
    // Nothing forwarded yet: the leg is on the small layer at once, and b
    // pulls that one alone.
    layer_links_become(&b.url, room, stream, &["180p_2"]).await;
    // Bob leaves: b's links close, and the layer is unwanted again.
    bob.leave().await.expect("leave");
    assert_eq!(
        layers_wanted(&mut alice, "the small layer unwanted again").await,
        ["360p_2"]
    );
}
