//! A link that fails (here: ICE, because the client's candidates never
//! answer) is dropped, and its owner hears about it: an unsolicited error
//! 90100226 naming the link (docs/protocol.md §8). Issue 9, item 2.
//!
//! Each test waits for the ICE agent's own timeouts (about 30 s).
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::protocol::{ErrorCode, ErrorReply, Event, Reply, ServerMessage};

/// How long ICE takes to give up on a link that never gets an answer to its
/// checks: the ICE agent's disconnected (5 s) plus failed (25 s) timeouts,
/// with room to spare.
const ICE_GIVES_UP: Duration = Duration::from_secs(45);

/// A UDP socket that receives and never answers, and `sdp` with every
/// candidate pointing at it: the server's ICE checks go unanswered.
async fn unreachable(sdp: &str) -> (tokio::net::UdpSocket, String) {
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let sdp = huddle::link::testing::with_candidate_port(sdp, port);
    (silent, sdp)
}

/// A server that keeps the (silent) raw clients longer than ICE takes.
async fn start() -> TestServer {
    let mut config = huddle::server::ServerConfig::new(test_apps());
    config.limits.idle_timeout = ICE_GIVES_UP * 2;
    start_server_with(config).await
}

fn unsolicited_error(message: &ServerMessage) -> Option<ErrorReply> {
    match message {
        ServerMessage::Error(e) if e.id.is_none() => Some(e.clone()),
        _ => None,
    }
}

/// Waits for the unsolicited 90100226 that names `link_id`.
async fn expect_link_failed(socket: &mut RawSocket, link_id: huddle::protocol::LinkId) {
    let error = socket
        .recv_until(ICE_GIVES_UP, "error 90100226", unsolicited_error)
        .await;
    assert_eq!(
        error.code,
        ErrorCode::SubscribedUserConnectError,
        "{error:?}"
    );
    assert!(
        error.message.contains(&format!("link {link_id}")),
        "the message names the link: {}",
        error.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_link_is_reported_to_its_owner_and_unpublished() {
    let server = start().await;
    let mut bob = RawSocket::connect(&server).await;
    bob.joined("room-fail", "bob").await;
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-fail", "alice").await;

    let (link, offer) = publish_offer(true, true).await;
    let (_silent, offer) = unreachable(&offer).await;
    alice
        .send(&format!(
            r#"{{"id":2,"type":"publish","audio":true,"video":{{"width":480,"height":360,"frameRate":15}},"sdp":{}}}"#,
            json_string(&offer)
        ))
        .await;
    let (stream_id, link_id) = alice
        .recv_until(Duration::from_secs(10), "published", |m| match m {
            ServerMessage::Reply {
                reply:
                    Reply::Published {
                        stream_id, link_id, ..
                    },
                ..
            } => Some((*stream_id, *link_id)),
            ServerMessage::Error(e) => panic!("publish refused: {e:?}"),
            _ => None,
        })
        .await;
    // The client never applies the answer: nothing answers the server.
    expect_link_failed(&mut alice, link_id).await;
    bob.recv_until(Duration::from_secs(5), "stream-removed", |m| match m {
        ServerMessage::Event {
            event: Event::StreamRemoved { stream_id: s, .. },
        } if *s == stream_id => Some(()),
        _ => None,
    })
    .await;
    wait_for(Duration::from_secs(5), "no peer connection left", || {
        (server.server.metrics().peer_connections == 0).then_some(())
    })
    .await;
    // The owner's session carries on.
    alice.ping(3).await;
    link.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_subscription_link_is_reported_to_its_owner_and_ends_the_subscription() {
    let server = start().await;
    let (alice, _) = join(&server, "room-fail-sub", "alice").await;
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let mut bob = RawSocket::connect(&server).await;
    bob.joined("room-fail-sub", "bob").await;

    let (link_id, offer) = bob.subscribe_offer(2, stream_id).await;
    let (link, _signals) = huddle::link::PeerLink::new([127, 0, 0, 1].into())
        .await
        .expect("peer connection");
    let answer = link.answer(offer).await.expect("answer");
    // Without a client behind the answer: its checks would reach the server.
    link.close().await;
    let (_silent, answer) = unreachable(&answer).await;
    bob.send(&format!(
        r#"{{"id":3,"type":"answer","linkId":{},"sdp":{}}}"#,
        link_id.0,
        json_string(&answer)
    ))
    .await;
    expect_link_failed(&mut bob, link_id).await;
    // The subscription is gone: asking for a keyframe on it is refused.
    bob.send(&format!(
        r#"{{"id":4,"type":"request-keyframe","streamId":{}}}"#,
        stream_id.0
    ))
    .await;
    let code = bob
        .recv_until(
            Duration::from_secs(5),
            "reply to request-keyframe",
            |m| match m {
                ServerMessage::Error(e) if e.id.is_some() => Some(e.code),
                ServerMessage::Reply { .. } => panic!("the subscription should be gone"),
                _ => None,
            },
        )
        .await;
    assert_eq!(code, ErrorCode::InvalidParameter);
    wait_for(Duration::from_secs(5), "only the publish link left", || {
        (server.server.metrics().peer_connections == 1).then_some(())
    })
    .await;
    alice.leave().await.expect("leave");
}
