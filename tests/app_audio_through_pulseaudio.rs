//! The desktop app's audio on a PulseAudio null sink: it plays a remote bot's
//! tone (heard on the sink's monitor), and its microphone path publishes what
//! is played into the sink (heard by a subscriber).
//!
//! Skips, saying why, without Xvfb/ImageMagick or a PulseAudio server with the
//! `huddle_null` sink (`source .ci/pulse.sh`); fails instead on CI.
#![cfg(feature = "client")]
#![cfg(all(feature = "app", feature = "devices"))]

mod common;
mod gui;

use std::time::Duration;

use common::SINK;
use huddle::bot;
use huddle::client::{RoomEvent, SubscribeOptions};
use huddle::media::devices::MicrophoneSource;
use huddle::media::{AudioSource, rms_level};

const TEST: &str = "app_plays_remote_audio_and_publishes_its_microphone";

/// Waits until the monitor hears the tone steadily, then reads 1 s of it.
fn listen(monitor: &str) -> Vec<i16> {
    let mut mic = MicrophoneSource::open(Some(monitor)).expect("open the sink monitor");
    let heard = common::wait_for_level(
        &mut mic,
        |rms| rms > 0.1,
        "the bot's tone",
        Duration::from_secs(30),
    );
    eprintln!("the app's playout heard on the monitor after {heard:?}");
    let mut pcm = Vec::new();
    for _ in 0..50 {
        let frame = mic.next_frame().expect("frame").expect("endless");
        pcm.extend_from_slice(&frame.samples);
    }
    pcm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_plays_remote_audio_and_publishes_its_microphone() {
    if !gui::tools_or_skip(TEST) {
        return;
    }
    let Some(pulse) = common::pulse_or_skip(TEST) else {
        return;
    };
    let monitor = pulse.monitor.id.clone();
    let server = common::start_server().await;
    let (stop_bot, bot_stopped) = tokio::sync::oneshot::channel::<()>();
    let bot = tokio::spawn(bot::run(
        common::publishing_bot(&server.url, "audio-room", "tone-bot", "180p_1", 587.0),
        async {
            bot_stopped.await.ok();
        },
    ));

    // 1. The app (a joiner, default devices) plays the bot's tone.
    let display = gui::Display::start();
    let app = gui::KillOnDrop(display.launch_huddle(&[
        "--server",
        &server.url,
        "--room",
        "audio-room",
        "--user",
        "desk",
        "--app-id",
        common::APP_ID,
        "--app-key",
        common::APP_KEY,
        "--window-size",
        "640x360",
    ]));
    common::wait_for(Duration::from_secs(60), "the app to join", || {
        (server.server.metrics().users >= 2).then_some(())
    })
    .await;
    let pcm = tokio::task::spawn_blocking(move || listen(&monitor))
        .await
        .expect("listen");
    let freq = common::tone_frequency(&pcm);
    assert!(
        (freq - 587.0).abs() <= 5.0,
        "the sink played {freq} Hz, expected the bot's 587 Hz"
    );
    stop_bot.send(()).ok();
    bot.await.expect("bot task").expect("bot run");

    // 2. What is played into the sink reaches the app's microphone (the sink's
    //    monitor is the default source) and is published: a subscriber hears it.
    let _tone = common::Pacat::play(SINK, 880.0, 30);
    let (listener, info) = common::join(&server, "audio-room", "ear").await;
    let already = info
        .streams
        .iter()
        .find(|s| s.user_id.as_str() == "desk")
        .map(|s| s.stream_id);
    let stream = match already {
        Some(id) => id,
        None => {
            common::wait_event(
                &listener,
                Duration::from_secs(10),
                "the app's stream",
                |e| match e {
                    RoomEvent::StreamAdded(info) if info.user_id.as_str() == "desk" => {
                        Some(info.stream_id)
                    }
                    _ => None,
                },
            )
            .await
        }
    };
    let remote = listener
        .subscribe(
            stream,
            SubscribeOptions {
                audio: true,
                video: false,
            },
        )
        .await
        .expect("subscribe");
    // Until the subscriber hears the tone steadily (100 ms above the level),
    // past the path's start-up; then 1 s of it.
    let mut steady = 0;
    common::wait_for(
        Duration::from_secs(30),
        "the app's microphone tone at the subscriber",
        || {
            while let Ok(frame) = remote.audio().try_recv() {
                steady = if rms_level(&frame.samples) > 0.1 {
                    steady + 1
                } else {
                    0
                };
            }
            (steady >= 5).then_some(())
        },
    )
    .await;
    let mut heard = Vec::new();
    common::wait_for(Duration::from_secs(10), "1 s of the app's audio", || {
        while let Ok(frame) = remote.audio().try_recv() {
            heard.extend_from_slice(&frame.samples);
        }
        (heard.len() >= 48_000).then_some(())
    })
    .await;
    let freq = common::tone_frequency(&heard[..48_000]);
    assert!(
        (freq - 880.0).abs() <= 5.0,
        "the app published {freq} Hz, expected 880 Hz from its microphone"
    );
    drop(app);
}
