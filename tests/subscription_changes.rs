//! One publisher, three subscribers: each new subscription is confirmed with
//! `stream-subscribed` once its link is up; then one of them stops video but
//! keeps audio, and the others keep both.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{RoomEvent, StreamStats, SubscribeOptions};

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

    // Video already on its way may still be decoded. Drained: s1 decodes
    // 0.5 s of audio (25 frames) without a video packet or frame arriving.
    let mut drain_from = s1_remote.stats();
    wait_for(
        Duration::from_secs(10),
        "s1 to stop receiving video (0.5 s of audio without any)",
        || {
            let now = s1_remote.stats();
            if (now.video_packets, now.frames_decoded)
                != (drain_from.video_packets, drain_from.frames_decoded)
            {
                drain_from = now;
                return None;
            }
            (now.audio_frames_decoded >= drain_from.audio_frames_decoded + 25).then_some(())
        },
    )
    .await;

    // Then until everyone got a second's worth of what they subscribed to.
    let before: Vec<_> = subscribers.iter().map(|(_, r)| r.stats()).collect();
    let video_delta =
        |i: usize, now: &[StreamStats]| now[i].frames_decoded - before[i].frames_decoded;
    let audio_delta = |i: usize, now: &[StreamStats]| {
        now[i].audio_frames_decoded - before[i].audio_frames_decoded
    };
    let after = wait_for(
        Duration::from_secs(20),
        "50 audio frames at every subscriber and 15 video frames at s2 and s3",
        || {
            let now: Vec<_> = subscribers.iter().map(|(_, r)| r.stats()).collect();
            ((0..3).all(|i| audio_delta(i, &now) >= 50)
                && (1..3).all(|i| video_delta(i, &now) >= 15))
            .then_some(now)
        },
    )
    .await;
    assert_eq!(video_delta(0, &after), 0, "s1 must get no more video");
    for i in 0..3 {
        eprintln!(
            "s{}: {} video and {} audio frames",
            i + 1,
            video_delta(i, &after),
            audio_delta(i, &after)
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
