//! One publisher, three subscribers: each new subscription is confirmed with
//! `stream-subscribed` once its link is up; then one of them stops video but
//! keeps audio, and the others keep both.

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{RoomEvent, SubscribeOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_video_keeps_audio_and_leaves_others_untouched() {
    let server = start_server().await;
    let (publisher, _) = join(&server, "room-fan", "pub").await;
    let stream_id = publisher.publish(synthetic(440.0)).await.expect("publish");

    let mut subscribers = Vec::new();
    for name in ["s1", "s2", "s3"] {
        let (client, info) = join(&server, "room-fan", name).await;
        assert_eq!(info.streams.len(), 1, "the stream is listed on join");
        let remote = client
            .subscribe(stream_id, SubscribeOptions::default())
            .await
            .expect("subscribe");
        subscribers.push((client, remote));
    }
    // Issue 9, item 1: each new subscription is confirmed once its link is up.
    for (client, _) in &subscribers {
        let confirmed = wait_event(
            client,
            Duration::from_secs(10),
            "stream-subscribed for the new subscription",
            |e| match e {
                RoomEvent::StreamSubscribed {
                    stream_id: s,
                    audio,
                    video,
                } if *s == stream_id => Some((*audio, *video)),
                _ => None,
            },
        )
        .await;
        assert_eq!(confirmed, (true, true), "both media are forwarded");
    }
    for (_, remote) in &subscribers {
        wait_for(
            Duration::from_secs(15),
            "video and audio at every subscriber",
            || {
                let s = remote.stats();
                (s.frames_decoded >= 10 && s.audio_frames_decoded >= 25).then_some(())
            },
        )
        .await;
    }

    let (s1, s1_remote) = &subscribers[0];
    s1.unsubscribe(
        stream_id,
        SubscribeOptions {
            audio: false,
            video: true,
        },
    )
    .await
    .expect("unsubscribe video");
    let (audio, video) = wait_event(
        s1,
        Duration::from_secs(5),
        "stream-subscribed after unsubscribe",
        |e| match e {
            RoomEvent::StreamSubscribed { audio, video, .. } => Some((*audio, *video)),
            _ => None,
        },
    )
    .await;
    assert!(audio && !video, "s1 now gets audio only");

    // Let in-flight frames drain, then measure two seconds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: Vec<_> = subscribers.iter().map(|(_, r)| r.stats()).collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<_> = subscribers.iter().map(|(_, r)| r.stats()).collect();

    let video_delta = |i: usize| after[i].frames_decoded - before[i].frames_decoded;
    let audio_delta = |i: usize| after[i].audio_frames_decoded - before[i].audio_frames_decoded;
    assert_eq!(video_delta(0), 0, "s1 must get no more video");
    assert!(
        audio_delta(0) >= 50,
        "s1 keeps audio: {} frames in 2 s",
        audio_delta(0)
    );
    for i in 1..3 {
        assert!(
            video_delta(i) >= 15,
            "s{} keeps video: {} frames in 2 s",
            i + 1,
            video_delta(i)
        );
        assert!(
            audio_delta(i) >= 50,
            "s{} keeps audio: {} frames in 2 s",
            i + 1,
            audio_delta(i)
        );
    }
    assert!(!s1_remote.is_ended());

    // Re-enabling video resumes it (the SFU asks the publisher for a keyframe).
    s1.subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("resubscribe video");
    let resumed_from = s1_remote.stats().frames_decoded;
    wait_for(Duration::from_secs(5), "video to resume at s1", || {
        (s1_remote.stats().frames_decoded >= resumed_from + 10).then_some(())
    })
    .await;
    assert_eq!(s1_remote.stats().out_of_order_frames, 0);
}
