//! `pause-subscription` (protocol.md §3c, issue 14 §4): a paused subscription
//! keeps its link but the server forwards nothing on it; resumed, it flows
//! again on the same link from a keyframe captured after the resume. Bad
//! input gets numbered errors and everyone's media carries on.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{DropReason, FrameOutcome, FrameRecord, RoomEvent, SubscribeOptions};
use huddle::media::{now_us, read_stamp};
use huddle::protocol::{ErrorCode, RequestId, StreamId};

/// `user`'s subscription legs at the server: (stream, link id, bytes sent).
async fn legs(server: &TestServer, room: &str, user: &str) -> Vec<(u64, u64, u64)> {
    let (status, body) = http_get_json(server, &format!("/rooms/{room}")).await;
    assert_eq!(status, 200, "{body}");
    body["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter(|l| l["kind"] == "subscription" && l["userId"] == user)
        .map(|l| {
            (
                l["streamId"].as_u64().expect("stream"),
                l["linkId"].as_u64().expect("link"),
                l["bytes"].as_u64().expect("bytes"),
            )
        })
        .collect()
}

async fn subscribed_event(client: &huddle::client::Client, id: StreamId) -> (bool, bool) {
    wait_event(
        client,
        Duration::from_secs(10),
        "stream-subscribed",
        |e| match e {
            RoomEvent::StreamSubscribed {
                stream_id,
                audio,
                video,
            } if *stream_id == id => Some((*audio, *video)),
            _ => None,
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_subscription_forwards_nothing_and_resumes_on_its_link_from_a_fresh_keyframe() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-standby", "alice").await;
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let (bob, _) = join(&server, "room-standby", "bob").await;
    // Which frames decoded, and which were keyframes.
    bob.frame_logs().set_enabled(true);
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    assert_eq!(subscribed_event(&bob, stream_id).await, (true, true));
    wait_for(Duration::from_secs(15), "media flowing", || {
        let s = remote.stats();
        (s.frames_decoded >= 10 && s.audio_frames_decoded >= 25).then_some(())
    })
    .await;
    let link = legs(&server, "room-standby", "bob").await;
    assert_eq!(link.len(), 1);

    bob.pause_subscription(stream_id).await.expect("pause");
    assert_eq!(
        subscribed_event(&bob, stream_id).await,
        (false, false),
        "nothing is forwarded while paused"
    );
    // Pausing again changes nothing.
    bob.pause_subscription(stream_id)
        .await
        .expect("pause again");
    // Packets in flight at the pause land first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (sent, got) = (
        legs(&server, "room-standby", "bob").await[0].2,
        remote.stats().bytes,
    );
    let frames = remote.stats().frames_decoded;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = legs(&server, "room-standby", "bob").await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].1, link[0].1, "the same link");
    let (sent, got) = (after[0].2 - sent, remote.stats().bytes - got);
    eprintln!("paused for 2 s: the server sent {sent} B, bob received {got} B");
    assert_eq!(sent, 0, "the server forwards nothing while paused");
    assert_eq!(got, 0, "bob receives nothing while paused");
    assert_eq!(remote.stats().frames_decoded, frames);

    // Resume while the publisher's keyframe requests are held back (one per
    // 500 ms, `KEYFRAME_MIN_INTERVAL`): one asked for now has passed by the
    // resume, so delta frames come first and the resume's keyframe later.
    bob.send_raw_frame(format!(
        r#"{{"id":9000,"type":"request-keyframe","streamId":{}}}"#,
        stream_id.0
    ))
    .await
    .expect("request-keyframe");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let resumed_us = now_us();
    let generation = remote.video().generation();
    let before_resume = remote
        .frame_log()
        .snapshot()
        .last()
        .map_or(0, |f| f.index + 1);
    bob.resume_subscription(stream_id).await.expect("resume");
    assert_eq!(subscribed_event(&bob, stream_id).await, (true, true));
    let captured = wait_for(
        Duration::from_secs(10),
        "a picture after the resume",
        || {
            (remote.video().generation() > generation)
                .then(|| remote.video().with_latest(|f| f.and_then(read_stamp)))
                .flatten()
        },
    )
    .await
    .capture_time_us;
    assert!(
        captured >= resumed_us,
        "the first picture after the resume was captured {} ms before it",
        (resumed_us - captured) / 1000
    );
    wait_for(Duration::from_secs(10), "video and audio again", || {
        let s = remote.stats();
        (s.frames_decoded >= frames + 10).then_some(())
    })
    .await;
    // The first picture decoded after the resume is a keyframe: what came
    // before it referred to pictures from before the pause and was dropped.
    let after: Vec<FrameRecord> = remote
        .frame_log()
        .snapshot()
        .into_iter()
        .filter(|f| f.index >= before_resume)
        .collect();
    let first = after
        .iter()
        .position(|f| f.outcome == FrameOutcome::Decoded)
        .expect("a decoded frame");
    assert!(
        after[first].keyframe,
        "the first frame decoded after the resume is a delta frame: {:?}",
        &after[..=first]
            .iter()
            .map(|f| (f.keyframe, f.outcome))
            .collect::<Vec<_>>()
    );
    // They never reached the decoder (which may refuse them, or may not:
    // error concealment would paint them over the stale reference).
    assert!(
        after[..first]
            .iter()
            .all(|f| f.outcome == FrameOutcome::Dropped(DropReason::BeforeKeyframe)),
        "{:?}",
        after[..first].iter().map(|f| f.outcome).collect::<Vec<_>>()
    );
    eprintln!(
        "after the resume: {first} frame(s) dropped before the keyframe ({:?}), \
         the keyframe {} ms after the resume",
        after[..first].iter().map(|f| f.outcome).collect::<Vec<_>>(),
        (captured.saturating_sub(resumed_us)) / 1000
    );
    let after = legs(&server, "room-standby", "bob").await;
    assert_eq!(
        (after.len(), after[0].1),
        (1, link[0].1),
        "resumed on the link it kept"
    );
    // Unsubscribing a subscription that was paused ends it as usual.
    bob.pause_subscription(stream_id).await.expect("pause");
    bob.unsubscribe(
        stream_id,
        SubscribeOptions {
            audio: false,
            video: true,
        },
    )
    .await
    .expect("stop video");
    assert_eq!(
        legs(&server, "room-standby", "bob").await.len(),
        1,
        "audio kept"
    );
    bob.unsubscribe(
        stream_id,
        SubscribeOptions {
            audio: true,
            video: true,
        },
    )
    .await
    .expect("unsubscribe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pause_subscription_requests_get_numbered_errors_and_media_carries_on() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-standby-bad", "alice").await;
    let stream_id = alice.publish(synthetic(440.0)).await.expect("publish");
    let (bob, _) = join(&server, "room-standby-bad", "bob").await;
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(15), "media flowing", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;

    let mut mallory = RawSocket::connect(&server).await;
    let id = stream_id.0;
    mallory
        .send(&format!(
            r#"{{"id":2,"type":"pause-subscription","streamId":{id},"paused":true}}"#
        ))
        .await;
    assert_eq!(
        expect_error(mallory.recv().await),
        (Some(RequestId(2)), ErrorCode::InvalidOperation),
        "not joined"
    );
    mallory.joined("room-standby-bad", "mallory").await;
    let cases = [
        // Not subscribed to it (someone else is).
        (
            format!(r#"{{"id":10,"type":"pause-subscription","streamId":{id},"paused":true}}"#),
            10,
        ),
        // No such stream.
        (
            r#"{"id":11,"type":"pause-subscription","streamId":99999,"paused":false}"#.into(),
            11,
        ),
        // `paused` missing, or not a bool.
        (
            format!(r#"{{"id":12,"type":"pause-subscription","streamId":{id}}}"#),
            12,
        ),
        (
            format!(r#"{{"id":13,"type":"pause-subscription","streamId":{id},"paused":"yes"}}"#),
            13,
        ),
    ];
    let frames = remote.stats().frames_decoded;
    for (text, request) in cases {
        mallory.send(&text).await;
        assert_eq!(
            expect_error(mallory.recv().await),
            (Some(RequestId(request)), ErrorCode::InvalidParameter),
            "{text}"
        );
    }
    mallory.ping(20).await;
    // Bob's subscription was not touched: it still flows.
    wait_for(Duration::from_secs(10), "bob's media carrying on", || {
        (remote.stats().frames_decoded >= frames + 10).then_some(())
    })
    .await;
    assert_eq!(legs(&server, "room-standby-bad", "bob").await.len(), 1);
}
