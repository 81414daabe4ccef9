//! Issue 15 §2, "a room larger than one node can carry": with
//! `--relay-subscribers`, players who reach a node that does not own the room
//! are served there, and each stream they watch comes from the owner node
//! over ONE relay link for that node, however many players watch it (two
//! real `huddle serve` processes and a real Redis, as in several_nodes.rs).
#![cfg(feature = "client")]

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::redis::Redis;
use common::*;
use huddle::client::{Client, JoinConfig, RemoteStream};
use huddle::protocol::{ErrorCode, Reply, Role, ServerMessage};

/// One `huddle serve --redis` process; killed on drop.
struct Node {
    child: Child,
    url: String,
    /// Its stderr lines, drained by a thread (a full pipe would block it).
    lines: mpsc::Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.child.kill().ok(); // already gone: fine
        self.child.wait().ok();
    }
}

impl Node {
    /// Starts node `id` (with `extra` flags) and waits for its listening line.
    fn start(id: &str, redis: &Redis, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_huddle"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--app-id",
                APP_ID,
                "--app-key",
                APP_KEY,
                "--redis",
                &redis.url(),
                "--node-id",
                id,
                "--cluster-ttl-secs",
                "3",
                "--log-level",
                "info",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start huddle serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("node {id} printed no listening line"));
            if let Some((_, url)) = line.split_once("listening on ") {
                break url.trim().to_owned();
            }
        };
        Self { child, url, lines }
    }

    /// Its stderr so far (for failure messages).
    fn log(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

fn config(url: &str, room: &str, user: &str, role: Role) -> JoinConfig {
    JoinConfig {
        server_url: url.to_owned(),
        app_id: huddle::protocol::AppId(APP_ID.into()),
        room_id: huddle::protocol::RoomId(room.into()),
        user_id: huddle::protocol::UserId(user.into()),
        user_name: user.into(),
        role,
        credential: huddle::client::Credential::AppKey {
            key: APP_KEY.into(),
            valid_for: Duration::from_secs(3600),
        },
        decode: true,
        reconnect_window: Duration::from_secs(30),
    }
}

async fn registered(redis: &Redis, id: &str) {
    let key = format!("huddle:node:{id}");
    wait_for(Duration::from_secs(10), "the node's registration", || {
        (redis.command(&["EXISTS", &key]).as_deref() == Some(":1")).then_some(())
    })
    .await;
}

/// One HTTP/1.1 request to the node at `url`: status, head and body.
async fn http(url: &str, method: &str, path: &str, bearer: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/sdp\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut raw))
        .await
        .expect("a reply within 10 s")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, text)
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
    let a = Node::start("node-a", &redis, &[]);
    let b = Node::start("node-b", &redis, &["--relay-subscribers"]);
    registered(&redis, "node-a").await;
    registered(&redis, "node-b").await;
    let room = "room-relay";

    // Alice publishes on node a, which owns the room; Ann watches there.
    let alice = Client::new();
    alice
        .join(config(&a.url, room, "alice", Role::Joiner))
        .await
        .expect("alice joins at a");
    let stream = alice.publish(synthetic(440.0)).await.expect("publish");
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
