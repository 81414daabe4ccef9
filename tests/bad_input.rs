//! Bad input gets a numbered error reply; the connection, the room and everyone
//! else's media carry on.
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use huddle::client::SubscribeOptions;
use huddle::protocol::{ErrorCode, Event, MAX_MESSAGE_BYTES, Reply, RequestId, ServerMessage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_error_replies_and_media_keeps_flowing() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-bad", "alice").await;
    let (bob, _) = join(&server, "room-bad", "bob").await;
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(10), "media flowing", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;

    let mut mallory = RawSocket::connect(&server).await;

    // Before joining, anything but join is refused.
    mallory.send(r#"{"id":1,"type":"ping"}"#).await;
    assert!(matches!(
        mallory.recv().await,
        ServerMessage::Reply {
            reply: Reply::Pong,
            ..
        }
    ));
    mallory
        .send(r#"{"id":2,"type":"unpublish","streamId":1}"#)
        .await;
    assert_eq!(
        expect_error(mallory.recv().await),
        (Some(RequestId(2)), ErrorCode::InvalidOperation)
    );

    mallory.joined("room-bad", "mallory").await;
    let frames_before = remote.stats().frames_decoded;

    let cases: Vec<(String, Option<u64>, ErrorCode)> = vec![
        ("{not json".into(), None, ErrorCode::InvalidRequestBody),
        ("[1,2,3]".into(), None, ErrorCode::InvalidRequestBody),
        (r#"{"id":10,"type":"teleport"}"#.into(), Some(10), ErrorCode::InvalidRequest),
        (r#"{"id":11,"type":"subscribe","streamId":"x"}"#.into(), Some(11), ErrorCode::InvalidParameter),
        (
            format!(r#"{{"id":12,"type":"ping","pad":"{}"}}"#, "x".repeat(MAX_MESSAGE_BYTES)),
            None,
            ErrorCode::InvalidRequestBody,
        ),
        (
            r#"{"id":13,"type":"subscribe","streamId":999999,"audio":true,"video":true}"#.into(),
            Some(13),
            ErrorCode::InvalidSubscribedInfo,
        ),
        (
            r#"{"id":14,"type":"unpublish","streamId":999999}"#.into(),
            Some(14),
            ErrorCode::InvalidSubscribedInfo,
        ),
        (
            format!(r#"{{"id":15,"type":"unpublish","streamId":{}}}"#, stream_id.0),
            Some(15),
            ErrorCode::InvalidOperation,
        ),
        (
            r#"{"id":16,"type":"publish","audio":true,"video":null,"sdp":"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nnot sdp"}"#.into(),
            Some(16),
            ErrorCode::InvalidPushed,
        ),
        (
            r#"{"id":19,"type":"publish","audio":true,"video":{"width":640,"height":360,"frameRate":15},"sdp":"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}"#.into(),
            Some(19),
            ErrorCode::InvalidParameter,
        ),
        (
            r#"{"id":20,"type":"publish","audio":false,"video":{"width":640,"height":360,"frameRate":0},"sdp":"m=video 9 UDP/TLS/RTP/SAVPF 102\r\n"}"#.into(),
            Some(20),
            ErrorCode::InvalidParameter,
        ),
        (
            r#"{"id":17,"type":"answer","linkId":4242,"sdp":"v=0"}"#.into(),
            Some(17),
            ErrorCode::InvalidParameter,
        ),
        (
            r#"{"id":18,"type":"join","protocolVersion":1,"appId":"a","roomId":"r","userId":"u","ctime":1,"signature":"s"}"#.into(),
            Some(18),
            ErrorCode::AlreadyJoined,
        ),
    ];
    for (text, id, code) in cases {
        mallory.send(&text).await;
        let (got_id, got_code) = expect_error(mallory.recv().await);
        assert_eq!(got_code, code, "for {}", &text[..text.len().min(80)]);
        assert_eq!(
            got_id,
            id.map(RequestId),
            "for {}",
            &text[..text.len().min(80)]
        );
    }

    // Mallory's connection still works...
    mallory.send(r#"{"id":30,"type":"ping"}"#).await;
    assert!(matches!(
        mallory.recv().await,
        ServerMessage::Reply {
            reply: Reply::Pong,
            ..
        }
    ));
    // ...the room still has everyone, and Alice's stream still reaches Bob.
    assert_eq!(server.server.metrics().users, 3);
    wait_for(Duration::from_secs(5), "more frames at bob", || {
        (remote.stats().frames_decoded >= frames_before + 15).then_some(())
    })
    .await;
    assert_eq!(remote.stats().out_of_order_frames, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_floods_are_refused_with_90100108_and_the_connection_survives() {
    let mut config = huddle::server::ServerConfig::new(test_apps());
    config.limits.requests_per_second = 5;
    config.limits.request_burst = 10;
    let server = start_server_with(config).await;
    let mut client = RawSocket::connect(&server).await;
    let flood = Instant::now();
    for i in 0..30 {
        client.send(&format!(r#"{{"id":{i},"type":"ping"}}"#)).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..30 {
        match client.recv().await {
            ServerMessage::Reply {
                reply: Reply::Pong, ..
            } => pongs += 1,
            ServerMessage::Error(e) => {
                assert_eq!(e.code, ErrorCode::RequestFrequently);
                // Issue 9, item 3: the refused request's id is echoed.
                let id = e.id.expect("a rate-limited request keeps its id").0;
                assert!(
                    (10..30).contains(&id),
                    "id {id} of a request past the burst"
                );
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // The burst, plus what refilled (5/s) while the requests were on their
    // way, which is at most as long as sending them and reading the replies.
    let took = flood.elapsed();
    let refill = (5.0 * took.as_secs_f64()).floor() as usize;
    assert!(
        (10..=10 + refill).contains(&pongs),
        "{pongs} pongs: the burst (10), plus at most {refill} refilled in {took:?}"
    );
    assert_eq!(pongs + limited, 30);
    // Refills 2 tokens. The limiter reads std::time::Instant, so tokio's
    // paused clock cannot stand in; sleeping longer only adds tokens.
    tokio::time::sleep(Duration::from_millis(400)).await;
    client.send(r#"{"id":99,"type":"ping"}"#).await;
    assert!(matches!(
        client.recv().await,
        ServerMessage::Reply {
            reply: Reply::Pong,
            ..
        }
    ));
}

/// The offer with `edit` applied to each line of its first `m=<kind>` section
/// (the `m=` line included); `edit` returns the replacement lines.
fn edit_section(sdp: &str, kind: &str, mut edit: impl FnMut(&str) -> Vec<String>) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    let mut done = false;
    for line in sdp.lines() {
        if line.starts_with("m=") {
            inside = !done && line.starts_with(&format!("m={kind} "));
            done |= inside;
        }
        if inside {
            out.extend(edit(line));
        } else {
            out.push(line.to_owned());
        }
    }
    out.join("\r\n") + "\r\n"
}

fn publish_frame(id: u64, sdp: &str) -> String {
    format!(
        r#"{{"id":{id},"type":"publish","audio":true,"video":{{"width":480,"height":360,"frameRate":15}},"sdp":{}}}"#,
        json_string(sdp)
    )
}

/// Issue 9, item 7: an offer that can never carry media is refused with
/// 90100214 naming the problem, before anything is created or announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_offers_that_cannot_carry_media_are_refused_before_anyone_hears_of_them() {
    let server = start_server().await;
    let mut bob = RawSocket::connect(&server).await;
    bob.joined("room-offer", "bob").await;
    let mut mallory = RawSocket::connect(&server).await;
    mallory.joined("room-offer", "mallory").await;
    let (link, offer) = publish_offer(true, true).await;
    assert!(offer.contains("a=fingerprint:sha-256 "), "{offer}");

    let set_direction = |direction: &'static str| {
        move |l: &str| {
            if ["a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"].contains(&l) {
                vec![format!("a={direction}")]
            } else {
                vec![l.to_owned()]
            }
        }
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "garbage fingerprint",
            offer
                .lines()
                .map(|l| {
                    if l.starts_with("a=fingerprint:") {
                        "a=fingerprint:sha-256 not-a-fingerprint".to_owned()
                    } else {
                        l.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\r\n")
                + "\r\n",
            "fingerprint",
        ),
        (
            "no fingerprint",
            offer
                .lines()
                .filter(|l| !l.starts_with("a=fingerprint:"))
                .collect::<Vec<_>>()
                .join("\r\n")
                + "\r\n",
            "fingerprint",
        ),
        (
            "recvonly video",
            edit_section(&offer, "video", set_direction("recvonly")),
            "recvonly",
        ),
        (
            "inactive audio",
            edit_section(&offer, "audio", set_direction("inactive")),
            "inactive",
        ),
        (
            "audio without rtpmap",
            edit_section(&offer, "audio", |l| {
                if l.starts_with("a=rtpmap:") || l.starts_with("a=fmtp:") {
                    vec![]
                } else {
                    vec![l.to_owned()]
                }
            }),
            "audio",
        ),
        (
            "RTP/AVP",
            edit_section(&offer, "video", |l| {
                vec![l.replace("UDP/TLS/RTP/SAVPF", "RTP/AVP")]
            }),
            "UDP/TLS/RTP/SAVPF",
        ),
        (
            "VP8-only video",
            edit_section(&offer, "video", |l| {
                if l.starts_with("a=fmtp:") {
                    vec![]
                } else {
                    vec![l.replace("H264/90000", "VP8/90000")]
                }
            }),
            "H264",
        ),
    ];
    for (i, (what, sdp, named)) in cases.iter().enumerate() {
        assert_ne!(sdp, &offer, "case {what} changed nothing");
        let id = 10 + i as u64;
        mallory.send(&publish_frame(id, sdp)).await;
        match mallory.recv().await {
            ServerMessage::Error(e) => {
                assert_eq!(
                    (e.id, e.code),
                    (Some(RequestId(id)), ErrorCode::InvalidPushed),
                    "{what}: {e:?}"
                );
                assert!(
                    e.message.contains(named),
                    "{what}: the message should name {named:?}: {}",
                    e.message
                );
            }
            other => panic!("{what}: expected 90100214, got {other:?}"),
        }
    }
    assert_eq!(
        server.server.metrics().peer_connections,
        0,
        "no link was made"
    );

    // Nobody heard of the refused streams...
    bob.send(r#"{"id":2,"type":"ping"}"#).await;
    bob.recv_until(Duration::from_secs(5), "pong", |m| match m {
        ServerMessage::Event {
            event: Event::StreamAdded { .. },
        } => panic!("a refused stream was announced: {m:?}"),
        ServerMessage::Reply {
            reply: Reply::Pong, ..
        } => Some(()),
        _ => None,
    })
    .await;
    // ...and the untouched offer still publishes, and is announced.
    mallory.send(&publish_frame(30, &offer)).await;
    mallory
        .recv_until(Duration::from_secs(10), "published", |m| match m {
            ServerMessage::Reply {
                reply: Reply::Published { .. },
                ..
            } => Some(()),
            ServerMessage::Error(e) => panic!("the untouched offer was refused: {e:?}"),
            _ => None,
        })
        .await;
    bob.recv_until(Duration::from_secs(5), "stream-added", |m| match m {
        ServerMessage::Event {
            event: Event::StreamAdded { .. },
        } => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(server.server.metrics().users, 2);
    link.close().await;
}

/// Issue 9, item 8: a trickled candidate the server could never use is refused
/// with 90000005 before it reaches the link, and the session carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_trickled_candidates_are_refused_with_90000005() {
    let server = start_server().await;
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-cand", "alice").await;
    let (link, offer) = publish_offer(true, false).await;
    alice
        .send(&format!(
            r#"{{"id":2,"type":"publish","audio":true,"video":null,"sdp":{}}}"#,
            json_string(&offer)
        ))
        .await;
    let link_id = alice
        .recv_until(Duration::from_secs(10), "published", |m| match m {
            ServerMessage::Reply {
                reply: Reply::Published { link_id, .. },
                ..
            } => Some(*link_id),
            ServerMessage::Error(e) => panic!("publish refused: {e:?}"),
            _ => None,
        })
        .await;
    let candidate = |id: u64, text: &str| {
        format!(
            r#"{{"id":{id},"type":"candidate","linkId":{},"candidate":{{"candidate":{},"sdpMid":"0","sdpMLineIndex":0}}}}"#,
            link_id.0,
            json_string(text)
        )
    };
    let bad = [
        "candidate:1 1 udp 2130706431 127.0.0.1 0 typ host",
        "candidate:1 1 udp 2130706431 0.0.0.0 50000 typ host",
        "candidate:1 1 udp 2130706431 224.0.0.1 50000 typ host",
        "candidate:1 1 udp 2130706431 :: 50000 typ host",
        "candidate:1 1 tcp 2130706431 127.0.0.1 50000 typ host tcptype passive",
        "candidate:1 1 udp 2130706431 127.0.0.1 port typ host",
        "not a candidate at all",
    ];
    for (i, text) in bad.iter().enumerate() {
        let id = 10 + i as u64;
        alice.send(&candidate(id, text)).await;
        let (got_id, code) = expect_error(
            alice
                .recv_until(Duration::from_secs(5), "a reply", |m| match m {
                    ServerMessage::Event { .. } => None,
                    other => Some(other.clone()),
                })
                .await,
        );
        assert_eq!(
            (got_id, code),
            (Some(RequestId(id)), ErrorCode::InvalidParameter),
            "{text}"
        );
    }
    // A usable candidate is still taken, and the session carries on.
    alice
        .send(&candidate(
            30,
            "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
        ))
        .await;
    let id = alice
        .recv_until(Duration::from_secs(5), "ok", |m| match m {
            ServerMessage::Reply {
                reply: Reply::Ok,
                id,
            } => Some(*id),
            ServerMessage::Error(e) => panic!("a usable candidate was refused: {e:?}"),
            _ => None,
        })
        .await;
    assert_eq!(id, RequestId(30));
    alice.ping(31).await;
    link.close().await;
}
