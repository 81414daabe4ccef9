//! Stream state detection (seed 001 `enableStreamStateDetection`,
//! `stream-interrupted`, `stream-recovered`) and the mute events made from
//! `stream-updated` (`mute-audio` … `unmute-video`), issue 11 §3.
//!
//! A publisher whose camera stalls (its pictures paused with
//! `LocalStream::frame_pause`, the stream still published and unmuted) is
//! reported interrupted to a subscriber that detects stream state, and
//! recovered when pictures come again; a muted camera is not "interrupted".
#![cfg(feature = "client")]

mod common;

use std::time::{Duration, Instant};

use common::*;
use huddle::client::{
    Client, ClientError, MediaStatusAction, MediaStatusReason, RemoteStream, RoomEvent,
    SubscribeOptions,
};
use huddle::protocol::{RoomId, StreamId, UserId};

const INTERVAL: Duration = Duration::from_secs(1);

async fn subscribed_with_frames(client: &Client, stream: StreamId) -> RemoteStream {
    let remote = client
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(Duration::from_secs(15), "first frames", || {
        (remote.stats().frames_decoded >= 5).then_some(())
    })
    .await;
    remote
}

/// Every event that came so far.
fn drain(client: &Client) -> Vec<RoomEvent> {
    client.events().try_iter().collect()
}

fn interruptions(events: &[RoomEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, RoomEvent::StreamInterrupted { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_camera_is_interrupted_within_the_interval_then_recovered() {
    let server = start_server().await;
    let (bob, _) = join(&server, "room-stall", "bob").await;
    let local = synthetic(440.0);
    let pause = local.frame_pause();
    let stream = bob.publish(local).await.expect("publish");

    let (alice, _) = join(&server, "room-stall", "alice").await;
    alice
        .enable_stream_state_detection(true, INTERVAL)
        .await
        .expect("enable detection");
    // Carol does not detect stream state: she hears of nothing.
    let (carol, _) = join(&server, "room-stall", "carol").await;
    let alices = subscribed_with_frames(&alice, stream).await;
    let _carols = subscribed_with_frames(&carol, stream).await;
    assert_eq!(
        interruptions(&drain(&alice)),
        0,
        "frames are flowing: no interruption yet"
    );

    pause.set_paused(true);
    let paused_at = Instant::now();
    let (user_id, is_screen) = wait_event(
        &alice,
        Duration::from_secs(10),
        "stream-interrupted",
        |e| match e {
            RoomEvent::StreamInterrupted {
                stream_id,
                user_id,
                is_screen,
            } if *stream_id == stream => Some((user_id.clone(), *is_screen)),
            _ => None,
        },
    )
    .await;
    let took = paused_at.elapsed();
    println!("stream-interrupted {took:?} after the pause (interval {INTERVAL:?})");
    assert_eq!(user_id, UserId("bob".into()));
    assert!(!is_screen);
    let frozen = alices.stats().frames_decoded;

    pause.set_paused(false);
    wait_event(&alice, Duration::from_secs(10), "stream-recovered", |e| {
        matches!(e, RoomEvent::StreamRecovered { stream_id, .. } if *stream_id == stream)
            .then_some(())
    })
    .await;
    assert!(
        alices.stats().frames_decoded > frozen,
        "recovered means frames again"
    );
    assert!(
        !drain(&carol).iter().any(|e| matches!(
            e,
            RoomEvent::StreamInterrupted { .. } | RoomEvent::StreamRecovered { .. }
        )),
        "detection is off unless enabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_camera_is_not_interrupted_and_mutes_come_as_the_seeds_events() {
    let server = start_server().await;
    let (bob, _) = join(&server, "room-mute", "bob").await;
    let stream = bob.publish(synthetic(440.0)).await.expect("publish");
    let (alice, _) = join(&server, "room-mute", "alice").await;
    alice
        .enable_stream_state_detection(true, INTERVAL)
        .await
        .expect("enable detection");
    let alices = subscribed_with_frames(&alice, stream).await;
    drain(&alice);

    bob.set_muted(stream, false, true)
        .await
        .expect("mute video");
    let info = wait_event(&alice, Duration::from_secs(5), "mute-video", |e| match e {
        RoomEvent::MuteVideo(info) => Some(info.clone()),
        _ => None,
    })
    .await;
    assert_eq!(info.room_id, RoomId("room-mute".into()));
    assert_eq!(info.user_id, UserId("bob".into()));
    assert_eq!(info.stream_id, stream);
    assert_eq!(info.status, MediaStatusAction::Unavailable);
    assert_eq!(info.reason, MediaStatusReason::Muted);

    // Muted for three intervals: no frames, and no interruption either. (The
    // one wait on time itself: what is checked is that nothing happens.)
    let frames = alices.stats().frames_decoded;
    tokio::time::sleep(INTERVAL * 3).await;
    let during = drain(&alice);
    assert_eq!(
        interruptions(&during),
        0,
        "a muted video is not interrupted: {during:?}"
    );
    assert!(
        alices.stats().frames_decoded <= frames + 10,
        "muted, the video stopped (only frames in flight decode)"
    );

    bob.set_muted(stream, true, false)
        .await
        .expect("unmute video, mute audio");
    let mut seen = Vec::new();
    wait_event(
        &alice,
        Duration::from_secs(5),
        "mute-audio and unmute-video",
        |e| {
            match e {
                RoomEvent::MuteAudio(i) => seen.push(("mute-audio", i.status, i.reason)),
                RoomEvent::UnmuteVideo(i) => seen.push(("unmute-video", i.status, i.reason)),
                RoomEvent::UnmuteAudio(_) | RoomEvent::MuteVideo(_) => {
                    panic!("not a change: {e:?}")
                }
                _ => {}
            }
            (seen.len() == 2).then_some(())
        },
    )
    .await;
    assert_eq!(
        seen,
        [
            (
                "mute-audio",
                MediaStatusAction::Unavailable,
                MediaStatusReason::Muted
            ),
            (
                "unmute-video",
                MediaStatusAction::Available,
                MediaStatusReason::NotMuted
            ),
        ],
        "audio first, then video"
    );
    bob.set_muted(stream, false, false)
        .await
        .expect("unmute audio");
    wait_event(&alice, Duration::from_secs(5), "unmute-audio", |e| {
        matches!(e, RoomEvent::UnmuteAudio(i) if i.status == MediaStatusAction::Available)
            .then_some(())
    })
    .await;
    // The unmuted video flows again, and was never reported interrupted.
    let frames = alices.stats().frames_decoded;
    wait_for(Duration::from_secs(10), "frames after unmuting", || {
        (alices.stats().frames_decoded >= frames + 10).then_some(())
    })
    .await;
    assert_eq!(interruptions(&drain(&alice)), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detection_interval_outside_1_to_60_s_is_refused() {
    let alice = Client::new();
    for interval in [
        Duration::ZERO,
        Duration::from_millis(999),
        Duration::from_secs(61),
    ] {
        assert!(
            matches!(
                alice.enable_stream_state_detection(true, interval).await,
                Err(ClientError::InvalidParameter(_))
            ),
            "{interval:?}"
        );
    }
    // Turning it off takes any interval; on with a good one works.
    alice
        .enable_stream_state_detection(false, Duration::ZERO)
        .await
        .expect("off");
    alice
        .enable_stream_state_detection(true, Duration::from_secs(3))
        .await
        .expect("on");
}
