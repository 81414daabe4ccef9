//! The desktop app's audio on a PulseAudio null sink: it plays a remote bot's
//! tone (heard on the sink's monitor), and its microphone path publishes what
//! is played into the sink (heard by a subscriber).
//!
//! Skips, saying why, without Xvfb/ImageMagick or a PulseAudio server with the
//! `huddle_null` sink (`source .ci/pulse.sh`).
#![cfg(all(feature = "app", feature = "devices"))]

mod common;
mod gui;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use huddle::bot::{self, BotConfig};
use huddle::client::{Credential, RoomEvent, SubscribeOptions};
use huddle::media::devices::{MicrophoneSource, list_microphones, pulseaudio_available};
use huddle::media::{AudioProfile, AudioSource, VideoProfile, dominant_frequency};
use huddle::protocol::{AppId, RoomId};

const SINK: &str = "huddle_null";

fn monitor_or_skip() -> Option<String> {
    if let Some(reason) = gui::skip_reason() {
        eprintln!("SKIP: {reason}");
        return None;
    }
    if !pulseaudio_available() {
        eprintln!("SKIP: no PulseAudio server reachable; run `source .ci/pulse.sh`");
        return None;
    }
    let mics = list_microphones().ok()?;
    let monitor = mics
        .into_iter()
        .find(|d| d.id.ends_with(&format!(":{SINK}.monitor")));
    if monitor.is_none() {
        eprintln!("SKIP: PulseAudio has no {SINK} sink; run `source .ci/pulse.sh`");
    }
    monitor.map(|d| d.id)
}

/// Reads 1 s from the monitor after skipping `skip`.
fn listen(monitor: &str, skip: Duration) -> Vec<i16> {
    let mut mic = MicrophoneSource::open(Some(monitor)).expect("open the sink monitor");
    let frames = |d: Duration| (d.as_millis() / 20) as usize;
    let mut pcm = Vec::new();
    for i in 0..frames(skip) + 50 {
        let frame = mic.next_frame().expect("frame").expect("endless");
        if i >= frames(skip) {
            pcm.extend_from_slice(&frame.samples);
        }
    }
    pcm
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_plays_remote_audio_and_publishes_its_microphone() {
    let Some(monitor) = monitor_or_skip() else {
        return;
    };
    let server = common::start_server().await;
    let (stop_bot, bot_stopped) = tokio::sync::oneshot::channel::<()>();
    let bot = tokio::spawn(bot::run(
        BotConfig {
            server_url: server.url.clone(),
            app_id: AppId(common::APP_ID.into()),
            credential: Credential::AppKey {
                key: common::APP_KEY.into(),
                valid_for: Duration::from_secs(3600),
            },
            room_id: RoomId("audio-room".into()),
            user_id: "tone-bot".into(),
            publish: true,
            subscribe: false,
            count: 1,
            duration: None,
            json: false,
            print: false,
            video_profile: *VideoProfile::by_name("180p_1").expect("profile"),
            audio_profile: AudioProfile::default(),
            tone_hz: 587.0,
            measure: Default::default(),
        },
        async {
            bot_stopped.await.ok();
        },
    ));

    // 1. The app (a joiner, default devices) plays the bot's tone.
    let display = gui::Display::start(7);
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.server.metrics().users < 2 {
        assert!(Instant::now() < deadline, "the app never joined");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let monitor_id = monitor.clone();
    let pcm = tokio::task::spawn_blocking(move || listen(&monitor_id, Duration::from_secs(3)))
        .await
        .expect("listen");
    let freq = dominant_frequency(&pcm, 1, 48_000).unwrap_or(0.0);
    assert!(
        (freq - 587.0).abs() <= 5.0,
        "the sink played {freq} Hz, expected the bot's 587 Hz"
    );
    stop_bot.send(()).ok();
    bot.await.expect("bot task").expect("bot run");

    // 2. What is played into the sink reaches the app's microphone (the sink's
    //    monitor is the default source) and is published: a subscriber hears it.
    let _tone = KillOnDrop(
        Command::new("pacat")
            .args([
                "--playback",
                "--raw",
                "--format=s16le",
                "--rate=48000",
                "--channels=1",
            ])
            .arg(format!("--device={SINK}"))
            .stdin(Stdio::piped())
            .spawn()
            .map(|mut child| {
                let mut stdin = child.stdin.take().expect("stdin");
                std::thread::spawn(move || {
                    use std::io::Write;
                    let mut phase = 0.0f32;
                    let step = 2.0 * std::f32::consts::PI * 880.0 / 48_000.0;
                    let mut buf = Vec::with_capacity(1920);
                    for _ in 0..(48_000 * 30 / 960) {
                        buf.clear();
                        for _ in 0..960 {
                            let s = (phase.sin() * 0.4 * f32::from(i16::MAX)) as i16;
                            buf.extend_from_slice(&s.to_le_bytes());
                            phase = (phase + step) % (2.0 * std::f32::consts::PI);
                        }
                        if stdin.write_all(&buf).is_err() {
                            break;
                        }
                    }
                });
                child
            })
            .expect("pacat (pulseaudio-utils)"),
    );
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
    tokio::time::sleep(Duration::from_secs(2)).await;
    while remote.audio().try_recv().is_ok() {}
    let mut heard = Vec::new();
    common::wait_for(Duration::from_secs(10), "1 s of the app's audio", || {
        while let Ok(frame) = remote.audio().try_recv() {
            heard.extend_from_slice(&frame.samples);
        }
        (heard.len() >= 48_000).then_some(())
    })
    .await;
    let freq = dominant_frequency(&heard[..48_000], 1, 48_000).unwrap_or(0.0);
    assert!(
        (freq - 880.0).abs() <= 5.0,
        "the app published {freq} Hz, expected 880 Hz from its microphone"
    );
    drop(app);
}
