//! A publishes the synthetic pattern and a tone; B subscribes and gets real
//! decoded video and audio through the SFU.
#![cfg(feature = "client")]

mod common;

use std::time::Duration;

use common::*;
use huddle::client::{RoomEvent, SubscribeOptions};
use huddle::media::dominant_frequency;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_decodes_video_in_order_and_hears_the_tone() {
    let server = start_server().await;
    let (alice, _) = join(&server, "room-e2e", "alice").await;
    let (bob, _) = join(&server, "room-e2e", "bob").await;
    let stream_id = alice.publish(synthetic(523.0)).await.expect("publish");

    let added = wait_event(&bob, Duration::from_secs(5), "stream-added", |e| match e {
        RoomEvent::StreamAdded(info) => Some(info.clone()),
        _ => None,
    })
    .await;
    assert_eq!(added.stream_id, stream_id);
    assert_eq!(added.user_id.as_str(), "alice");
    let video = added.video.expect("stream has video");
    assert_eq!((video.width, video.height), (480, 360));

    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");

    // Audio: collect one second of decoded PCM after the stream settles.
    let mut pcm: Vec<i16> = Vec::new();
    let mut sample_rate = 48_000;
    wait_for(
        Duration::from_secs(20),
        "60 decoded frames and 1.5 s of audio",
        || {
            while let Ok(frame) = remote.audio().try_recv() {
                sample_rate = frame.sample_rate;
                pcm.extend_from_slice(&frame.samples);
            }
            let stats = remote.stats();
            (stats.frames_decoded >= 60 && pcm.len() >= sample_rate as usize * 3 / 2).then_some(())
        },
    )
    .await;

    let stats = remote.stats();
    assert_eq!(
        stats.last_size,
        Some((480, 360)),
        "decoded at the published size"
    );
    assert_eq!(
        stats.out_of_order_frames, 0,
        "frame numbers read back must strictly increase"
    );
    let last = stats.last_frame_no.expect("stamps were read back");
    assert!(last >= 59, "frame number {last} after 60 decoded frames");
    let latency = stats.latency().expect("latency samples");
    assert!(latency.samples >= 60);

    // Skip the first 0.5 s (codec start-up), analyse the next second.
    let start = sample_rate as usize / 2;
    let window = &pcm[start..start + sample_rate as usize];
    let freq = dominant_frequency(window, 1, sample_rate).expect("a tone");
    assert!(
        (freq - 523.0).abs() <= 5.0,
        "dominant frequency {freq} Hz, expected 523 Hz"
    );

    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}
