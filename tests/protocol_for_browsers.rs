//! What independent WebRTC stacks (browsers, aiortc) read in what the server
//! sends: the directions of its subscription offers and the fields of its
//! candidate events, spelled as docs/protocol.md says.

#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::{RawSocket, json_string, publish_offer, start_server};
use huddle::protocol::{Event, Reply, ServerMessage};

/// Alice publishes audio and video from a real peer connection; returns the
/// link (keep it while the stream is used) and the stream and link ids.
async fn publish(
    alice: &mut RawSocket,
) -> (
    huddle::link::PeerLink,
    huddle::protocol::StreamId,
    huddle::protocol::LinkId,
    String,
) {
    let (link, offer) = publish_offer(true, true).await;
    alice
        .send(&format!(
            r#"{{"id":2,"type":"publish","audio":true,"video":{{"width":480,"height":360,"frameRate":15}},"sdp":{}}}"#,
            json_string(&offer)
        ))
        .await;
    let (stream_id, link_id, answer) = alice
        .recv_until(Duration::from_secs(10), "published", |m| match m {
            ServerMessage::Reply {
                reply:
                    Reply::Published {
                        stream_id,
                        link_id,
                        sdp,
                    },
                ..
            } => Some((*stream_id, *link_id, sdp.clone())),
            ServerMessage::Error(e) => panic!("publish refused: {e:?}"),
            _ => None,
        })
        .await;
    (link, stream_id, link_id, answer)
}

/// The server only sends on a subscription: each section of its offer is
/// `sendonly` (a `sendrecv` offer made browsers expect media from the
/// subscriber), and the offer carries the server's candidate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_offers_are_sendonly() {
    let server = start_server().await;
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-dir", "alice").await;
    let (link, stream_id, _, _) = publish(&mut alice).await;
    let mut bob = RawSocket::connect(&server).await;
    bob.joined("room-dir", "bob").await;
    let (_, offer) = bob.subscribe_offer(2, stream_id).await;
    let sections: Vec<&str> = offer.split("\r\nm=").skip(1).collect();
    assert_eq!(sections.len(), 2, "audio and video sections: {offer}");
    for section in sections {
        assert!(
            section.contains("\r\na=sendonly"),
            "not sendonly: m={section}"
        );
        assert!(!section.contains("a=sendrecv"), "sendrecv: m={section}");
    }
    assert!(offer.contains("typ host"), "the offer carries a candidate");
    link.close().await;
}

/// A `candidate` event never carries an empty `sdpMid` (no peer can find a
/// section called ""): media is bundled, so it names section index 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_events_name_a_section_a_peer_can_find() {
    let server = start_server().await;
    let mut alice = RawSocket::connect(&server).await;
    alice.joined("room-cand", "alice").await;
    let (link, _, link_id, answer) = publish(&mut alice).await;
    link.apply_answer(answer).await.expect("answer applies");
    let candidate = alice
        .recv_until(Duration::from_secs(10), "candidate event", |m| match m {
            ServerMessage::Event {
                event:
                    Event::Candidate {
                        link_id: l,
                        candidate,
                    },
            } if *l == link_id => Some(candidate.clone()),
            _ => None,
        })
        .await;
    assert_ne!(candidate.sdp_mid.as_deref(), Some(""), "{candidate:?}");
    if candidate.sdp_mid.is_none() {
        assert_eq!(candidate.sdp_mline_index, Some(0), "{candidate:?}");
    }
    assert!(candidate.candidate.contains("typ host"), "{candidate:?}");
    link.close().await;
}
