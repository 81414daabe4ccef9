//! `GET /rooms` and `GET /rooms/{id}` (issue 14 §1): the server's view of a
//! live room, guarded by the `/signature` token. A real publisher and a real
//! subscriber; the counters must grow between two reads.
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use huddle::client::{RoomEvent, SubscribeOptions};
use huddle::server::ServerConfig;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "rooms-api-s3cret";

async fn server_with_token() -> TestServer {
    let mut config = ServerConfig::new(test_apps());
    config.signature_token = Some(TOKEN.to_owned());
    start_server_with(config).await
}

/// One GET with an optional `X-AUTH-TOKEN`; returns the status and the JSON body.
async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    let addr = server.url.trim_start_matches("ws://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let token = token
        .map(|t| format!("X-AUTH-TOKEN: {t}\r\n"))
        .unwrap_or_default();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{token}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("send");
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response))
        .await
        .expect("a response")
        .expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    assert!(
        head.to_lowercase().contains("cache-control: no-store"),
        "{path}: {head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, json)
}

/// The link of `kind` in a room view.
fn link<'a>(room: &'a Value, kind: &str) -> &'a Value {
    room["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} link in {room}"))
}

/// Reads the room until `check` holds (10 s at most).
async fn room_until(
    server: &TestServer,
    room: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, json) = get(server, &format!("/rooms/{room}"), Some(TOKEN)).await;
        assert_eq!(status, 200, "{json}");
        if check(&json) {
            return json;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {json}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn counter(link: &Value, name: &str) -> u64 {
    link[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {link}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_view_shows_users_stream_and_growing_link_counters() {
    let server = server_with_token().await;
    let (publisher, _) = join(&server, "room-api", "alice").await;
    let stream_id = publisher.publish(synthetic(440.0)).await.expect("publish");
    let (subscriber, _) = join(&server, "room-api", "bob").await;
    let _remote = subscriber
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_event(
        &subscriber,
        Duration::from_secs(10),
        "stream-subscribed",
        |e| {
            matches!(e, RoomEvent::StreamSubscribed { stream_id: s, .. } if *s == stream_id)
                .then_some(())
        },
    )
    .await;

    let (status, list) = get(&server, "/rooms", Some(TOKEN)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list,
        serde_json::json!({"rooms": [{"id": "room-api", "users": 2, "streams": 1}]})
    );

    let first = room_until(&server, "room-api", "media on both links", |room| {
        room["links"].as_array().is_some_and(|l| l.len() == 2)
            && counter(link(room, "publish"), "packets") > 0
            && counter(link(room, "subscription"), "packets") > 0
    })
    .await;
    assert_eq!(first["id"], "room-api");
    let users: Vec<_> = first["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap().to_owned(),
                u["name"].clone(),
                u["role"].clone(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("alice".to_owned(), "alice (test)".into(), 0.into()),
            ("bob".to_owned(), "bob (test)".into(), 0.into()),
        ]
    );
    let streams = first["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 1, "{first}");
    assert_eq!(streams[0]["id"], stream_id.0);
    assert_eq!(streams[0]["publisher"], "alice");
    assert_eq!(streams[0]["audio"], true);
    assert!(streams[0]["video"].is_object(), "{first}");
    assert_eq!(streams[0]["audioMuted"], false);
    let publish = link(&first, "publish");
    assert_eq!(publish["userId"], "alice");
    assert_eq!(publish["streamId"], stream_id.0);
    // The SDK publishes with RTX (retransmissions and probe padding on a
    // stream of their own) and the server's answer keeps it; on a clean
    // loopback nothing needed repairing and nothing was probed.
    assert_eq!(publish["rtx"], true, "{first}");
    assert_eq!(counter(publish, "rtxRepaired"), 0, "{first}");
    assert_eq!(counter(publish, "rtxUnrequested"), 0, "{first}");
    let subscription = link(&first, "subscription");
    assert_eq!(subscription["userId"], "bob");
    assert_eq!(subscription["streamId"], stream_id.0);
    assert_eq!(subscription["state"], "connected");
    assert!(counter(subscription, "bytes") > counter(subscription, "packets") * 12);
    let second = room_until(
        &server,
        "room-api",
        "both links' counters to grow",
        |room| {
            ["publish", "subscription"].iter().all(|kind| {
                let (now, then) = (link(room, kind), link(&first, kind));
                counter(now, "packets") > counter(then, "packets")
                    && counter(now, "bytes") > counter(then, "bytes")
            })
        },
    )
    .await;
    assert_eq!(second["users"], first["users"]);
    // The SDK's subscription returns transport-wide feedback for what the
    // hub numbers (issue 10 §2), all of it well formed.
    let fed = room_until(
        &server,
        "room-api",
        "TWCC feedback from the subscriber",
        |room| counter(link(room, "subscription"), "twccFeedback") > 0,
    )
    .await;
    assert_eq!(
        counter(link(&fed, "subscription"), "twccMalformed"),
        0,
        "{fed}"
    );
    assert_eq!(counter(link(&fed, "publish"), "twccFeedback"), 0, "{fed}");
    // Copies of packets NACKed again are a part of the resends.
    for kind in ["publish", "subscription"] {
        let link = link(&fed, kind);
        assert!(
            counter(link, "retransmittedAgain") <= counter(link, "retransmitted"),
            "{fed}"
        );
    }
    // A subscriber's keyframe request reaches the publisher as a PLI that
    // the publish link counts (as do the server's metrics: one stream here).
    let mut carol = RawSocket::connect(&server).await;
    carol.joined("room-api", "carol").await;
    carol.subscribe_offer(1, stream_id).await;
    carol
        .send(&format!(
            r#"{{"id":2,"type":"request-keyframe","streamId":{}}}"#,
            stream_id.0
        ))
        .await;
    let third = room_until(&server, "room-api", "a PLI sent to the publisher", |room| {
        counter(link(room, "publish"), "plis") > 0
    })
    .await;
    let plis = counter(link(&third, "publish"), "plis");
    assert!(plis <= server.server.metrics().keyframe_requests, "{plis}");
    assert_eq!(third["users"].as_array().map(Vec::len), Some(3), "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_api_refuses_missing_or_wrong_tokens_and_bad_room_ids() {
    let server = server_with_token().await;
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-guarded", "alice").await;

    // No token or a wrong one: 401 before anything else is looked at.
    for path in ["/rooms", "/rooms/room-guarded", "/rooms/nope", "/rooms/a.b"] {
        for token in [None, Some("wrong"), Some("")] {
            let (status, json) = get(&server, path, token).await;
            assert_eq!(status, 401, "{path} {token:?}: {json}");
            assert_eq!(json["code"], 90000005, "{path}");
            assert!(
                json["message"].as_str().unwrap().contains("X-AUTH-TOKEN"),
                "{json}"
            );
            assert!(json.get("rooms").is_none() && json.get("users").is_none());
        }
    }

    let (status, json) = get(&server, "/rooms/no-such-room", Some(TOKEN)).await;
    assert_eq!(status, 404, "{json}");
    assert_eq!(json["code"], 90000005);
    assert!(
        json["message"].as_str().unwrap().contains("no-such-room"),
        "{json}"
    );

    let too_long = "r".repeat(65);
    for bad in [too_long.as_str(), "a.b", "a%20b", "caf%C3%A9", "a%2Fb"] {
        let (status, json) = get(&server, &format!("/rooms/{bad}"), Some(TOKEN)).await;
        assert_eq!(status, 400, "{bad}: {json}");
        assert_eq!(json["code"], 90000005, "{bad}");
        assert!(
            json["message"].as_str().unwrap().contains("room id"),
            "{json}"
        );
    }

    // Nothing was lost: the room and its member carry on.
    let (status, json) = get(&server, "/rooms/room-guarded", Some(TOKEN)).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["users"][0]["id"], "alice");
    assert_eq!(json["links"], serde_json::json!([]));
    alice.ping(7).await;
}
