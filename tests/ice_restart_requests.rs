//! Issue 11 §1, `restart-ice` on the wire: a client restarts ICE on its own
//! publish link (its restart offer, the server's answer with new
//! credentials) and subscription link (the server's new offer, answered with
//! `answer`), and every bad request gets its numbered error while the room,
//! the other users' links and their media carry on.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{RoomEvent, SubscribeOptions};
use huddle::link::{PeerLink, ice_ufrag};
use huddle::protocol::{ErrorCode, LinkId, Reply, RequestId, ServerMessage};

/// Sends `text` and returns the reply or error to request `id`.
async fn ask(socket: &mut RawSocket, id: u64, text: &str) -> ServerMessage {
    socket.send(text).await;
    socket
        .recv_until(Duration::from_secs(10), "a reply", |m| match m {
            ServerMessage::Reply { id: got, .. } if *got == RequestId(id) => Some(m.clone()),
            ServerMessage::Error(e) if e.id == Some(RequestId(id)) || e.id.is_none() => {
                Some(m.clone())
            }
            _ => None,
        })
        .await
}

fn restarted(message: ServerMessage) -> String {
    match message {
        ServerMessage::Reply {
            reply: Reply::IceRestarted { sdp, .. },
            ..
        } => sdp,
        other => panic!("expected ice-restarted, got {other:?}"),
    }
}

/// Publishes over `socket` with a real link; returns it and the link id.
async fn publish(socket: &mut RawSocket, id: u64) -> (PeerLink, LinkId, String) {
    let (link, offer) = publish_offer(true, true).await;
    let reply = ask(
        socket,
        id,
        &format!(
            r#"{{"id":{id},"type":"publish","audio":true,"video":{{"width":320,"height":240,"frameRate":15}},"sdp":{}}}"#,
            json_string(&offer)
        ),
    )
    .await;
    let ServerMessage::Reply {
        reply: Reply::Published { link_id, sdp, .. },
        ..
    } = reply
    else {
        panic!("publish refused: {reply:?}");
    };
    link.apply_answer(sdp.clone())
        .await
        .expect("answer applies");
    (link, link_id, offer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_ice_renews_credentials_and_bad_requests_get_their_codes() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-restart", "alice").await;
    let (bob, _) = join(&server, "room-restart", "bob").await;
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(10), "media flowing", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;

    // Before joining: refused like any request.
    let mut stranger = RawSocket::connect(&server).await;
    let reply = ask(
        &mut stranger,
        1,
        r#"{"id":1,"type":"restart-ice","linkId":1}"#,
    )
    .await;
    assert_eq!(
        expect_error(reply),
        (Some(RequestId(1)), ErrorCode::InvalidOperation)
    );

    let mut carol = RawSocket::connect(&server).await;
    carol.joined("room-restart", "carol").await;
    let (_carol_link, carol_link_id, _) = publish(&mut carol, 2).await;

    let mut mallory = RawSocket::connect(&server).await;
    mallory.joined("room-restart", "mallory").await;
    let (pub_link, pub_link_id, first_offer) = publish(&mut mallory, 2).await;
    let (sub_link_id, sub_offer) = mallory.subscribe_offer(3, stream_id).await;
    let frames_before = remote.stats().frames_decoded;

    let cases: Vec<(String, u64, ErrorCode)> = vec![
        // Malformed.
        (
            r#"{"id":10,"type":"restart-ice"}"#.into(),
            10,
            ErrorCode::InvalidParameter,
        ),
        (
            r#"{"id":11,"type":"restart-ice","linkId":"x"}"#.into(),
            11,
            ErrorCode::InvalidParameter,
        ),
        (
            format!(
                r#"{{"id":12,"type":"restart-ice","linkId":{},"sdp":5}}"#,
                pub_link_id.0
            ),
            12,
            ErrorCode::InvalidParameter,
        ),
        // Unknown link, and another user's.
        (
            r#"{"id":13,"type":"restart-ice","linkId":999999}"#.into(),
            13,
            ErrorCode::InvalidParameter,
        ),
        (
            format!(
                r#"{{"id":14,"type":"restart-ice","linkId":{},"sdp":{}}}"#,
                carol_link_id.0,
                json_string(&first_offer)
            ),
            14,
            ErrorCode::InvalidParameter,
        ),
        // A publish link needs the client's restart offer...
        (
            format!(
                r#"{{"id":15,"type":"restart-ice","linkId":{}}}"#,
                pub_link_id.0
            ),
            15,
            ErrorCode::InvalidParameter,
        ),
        // ... one that restarts ICE (new credentials), and SDP at all.
        (
            format!(
                r#"{{"id":16,"type":"restart-ice","linkId":{},"sdp":{}}}"#,
                pub_link_id.0,
                json_string(&first_offer)
            ),
            16,
            ErrorCode::InvalidPushed,
        ),
        (
            format!(
                r#"{{"id":17,"type":"restart-ice","linkId":{},"sdp":"v=0 not sdp"}}"#,
                pub_link_id.0
            ),
            17,
            ErrorCode::InvalidPushed,
        ),
        // A subscription link's restart is offered by the server...
        (
            format!(
                r#"{{"id":18,"type":"restart-ice","linkId":{},"sdp":{}}}"#,
                sub_link_id.0,
                json_string(&first_offer)
            ),
            18,
            ErrorCode::InvalidParameter,
        ),
        // ... and only once its first offer is answered.
        (
            format!(
                r#"{{"id":19,"type":"restart-ice","linkId":{}}}"#,
                sub_link_id.0
            ),
            19,
            ErrorCode::InvalidOperation,
        ),
    ];
    for (text, id, code) in cases {
        let reply = ask(&mut mallory, id, &text).await;
        assert_eq!(expect_error(reply), (Some(RequestId(id)), code), "{text}");
    }
    mallory.ping(20).await;

    // The publish link restarts: the server answers with new credentials.
    let first_answer_ufrag = pub_link
        .pc()
        .remote_description()
        .await
        .map(|d| ice_ufrag(&d.sdp).map(str::to_owned))
        .expect("answer applied");
    let offer = pub_link.restart_offer().await.expect("restart offer");
    assert_ne!(
        ice_ufrag(&offer),
        ice_ufrag(&first_offer),
        "new local credentials"
    );
    let answer = restarted(
        ask(
            &mut mallory,
            21,
            &format!(
                r#"{{"id":21,"type":"restart-ice","linkId":{},"sdp":{}}}"#,
                pub_link_id.0,
                json_string(&offer)
            ),
        )
        .await,
    );
    assert_ne!(
        ice_ufrag(&answer).map(str::to_owned),
        first_answer_ufrag,
        "the server's side restarted too"
    );
    pub_link
        .apply_answer(answer)
        .await
        .expect("restart answer applies");

    // The subscription link restarts once answered: a new offer, new ufrag.
    let (sub, _signals) = PeerLink::new([127, 0, 0, 1].into()).await.expect("link");
    let answer = sub.answer(sub_offer.clone()).await.expect("answer");
    let reply = ask(
        &mut mallory,
        22,
        &format!(
            r#"{{"id":22,"type":"answer","linkId":{},"sdp":{}}}"#,
            sub_link_id.0,
            json_string(&answer)
        ),
    )
    .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Reply {
                reply: Reply::Ok,
                ..
            }
        ),
        "{reply:?}"
    );
    let new_offer = restarted(
        ask(
            &mut mallory,
            23,
            &format!(
                r#"{{"id":23,"type":"restart-ice","linkId":{}}}"#,
                sub_link_id.0
            ),
        )
        .await,
    );
    assert_ne!(
        ice_ufrag(&new_offer),
        ice_ufrag(&sub_offer),
        "new server credentials"
    );
    let answer = sub.answer(new_offer).await.expect("restart answer");
    let reply = ask(
        &mut mallory,
        24,
        &format!(
            r#"{{"id":24,"type":"answer","linkId":{},"sdp":{}}}"#,
            sub_link_id.0,
            json_string(&answer)
        ),
    )
    .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Reply {
                reply: Reply::Ok,
                ..
            }
        ),
        "{reply:?}"
    );

    // Carol's link was not touched: she restarts it herself.
    let reply = ask(
        &mut carol,
        25,
        &format!(
            r#"{{"id":25,"type":"restart-ice","linkId":{}}}"#,
            carol_link_id.0
        ),
    )
    .await;
    assert_eq!(
        expect_error(reply),
        (Some(RequestId(25)), ErrorCode::InvalidParameter),
        "without sdp: her link is still a publish link"
    );

    // Everyone else's media carried on; nobody left.
    wait_for(Duration::from_secs(10), "media still flowing", || {
        (remote.stats().frames_decoded >= frames_before + 15).then_some(())
    })
    .await;
    for client in [&alice, &bob] {
        while let Ok(event) = client.events().try_recv() {
            assert!(
                !matches!(
                    event,
                    RoomEvent::PeerLeave { .. } | RoomEvent::StreamRemoved { .. }
                ),
                "{event:?}"
            );
        }
    }
    sub.close().await;
    pub_link.close().await;
}
