//! Issue 14 §3, seed 001 `bindScreenAudio2RelatedStream`: a screen share's
//! background audio, captured from the monitor of a null sink of its own
//! (loaded for the test, as the README suggests for the shared application)
//! where the "shared application" (`pacat`, 880 Hz) plays, goes out through
//! the audio of the same user's camera stream (a synthetic 440 Hz
//! microphone) and reaches a subscriber of the camera stream through the
//! SFU. Mixed: both tones are heard; `mute_main_stream_audio`: only 880 Hz;
//! the screen share unpublished: only 440 Hz again. Bad bindings (not a
//! screen share, a bind stream not published or itself a screen share, a
//! missing device) are refused with their codes while the subscriber keeps
//! hearing the camera's audio.
//!
//! Needs PulseAudio (`source .ci/pulse.sh`) and `pactl`.
#![cfg(feature = "client")]
#![cfg(feature = "devices")]

mod common;

use std::time::Duration;

use common::pulse_or_skip;
use huddle::client::{Client, LocalStream, RemoteStream, SubscribeOptions};
use huddle::media::{AudioProfile, ScreenProfile, SyntheticVideo, VideoProfile};
use huddle::protocol::{ErrorCode, StreamId};

const MIC_HZ: f64 = 440.0;
const SCREEN_HZ: f64 = 880.0;

/// The amplitude (0..1 of full scale) of `hz` in 48 kHz mono `pcm`
/// (Goertzel).
fn amplitude(pcm: &[i16], hz: f64) -> f64 {
    let n = pcm.len() as f64;
    let w = std::f64::consts::TAU * hz / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s = f64::from(x) / 32_768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / n
}

/// `seconds` of what the subscriber hears from now on (after 0.5 s for the
/// change to arrive), and the amplitudes of both tones in it.
async fn heard(remote: &RemoteStream, what: &str) -> (f64, f64) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    while remote.audio().try_recv().is_ok() {}
    let mut pcm: Vec<i16> = Vec::new();
    common::wait_for(Duration::from_secs(20), what, || {
        while let Ok(frame) = remote.audio().try_recv() {
            assert_eq!(frame.channels, 1, "mono");
            pcm.extend_from_slice(&frame.samples);
        }
        (pcm.len() >= 48_000).then_some(())
    })
    .await;
    let (mic, screen) = (amplitude(&pcm, MIC_HZ), amplitude(&pcm, SCREEN_HZ));
    eprintln!("{what}: 440 Hz at {mic:.3}, 880 Hz at {screen:.3}");
    (mic, screen)
}

/// A null sink for the shared application, unloaded on drop.
struct ShareSink {
    name: String,
    module: String,
}

impl ShareSink {
    fn load() -> Self {
        let name = format!("huddle_share_{}", std::process::id());
        let module = pactl(&[
            "load-module",
            "module-null-sink",
            &format!("sink_name={name}"),
            "sink_properties=device.description=HuddleScreenAudio",
        ]);
        Self { name, module }
    }

    /// Its monitor, as a capture device id.
    fn monitor(&self) -> String {
        format!("pulseaudio:{}.monitor", self.name)
    }
}

impl Drop for ShareSink {
    fn drop(&mut self) {
        pactl(&["unload-module", &self.module]);
    }
}

fn pactl(args: &[&str]) -> String {
    let out = std::process::Command::new("pactl")
        .args(args)
        .output()
        .expect("pactl runs");
    assert!(out.status.success(), "pactl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn code<T>(result: Result<T, huddle::client::ClientError>) -> Option<ErrorCode> {
    result.err().map(|e| e.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn screen_audio_reaches_subscribers_of_the_camera_stream() {
    let Some(_pulse) = pulse_or_skip("screen_audio_reaches_subscribers_of_the_camera_stream")
    else {
        return;
    };
    let sink = ShareSink::load();
    let _player = common::Pacat::play(&sink.name, SCREEN_HZ as f32, 60);
    let server = common::start_server().await;
    let (alice, _) = common::join(&server, "screen-audio", "alice").await;
    let (bob, _) = common::join(&server, "screen-audio", "bob").await;
    let camera = alice
        .publish(LocalStream::synthetic(
            VideoProfile::default(),
            AudioProfile::default(),
            MIC_HZ as f32,
        ))
        .await
        .expect("the camera publishes");
    let profile = ScreenProfile::default();
    let size = profile.video_profile();
    let screen = alice
        .publish(LocalStream::screen(
            Box::new(SyntheticVideo::new(
                size.width,
                size.height,
                size.frame_rate,
            )),
            profile,
        ))
        .await
        .expect("the screen share publishes");
    let remote = bob
        .subscribe(camera, SubscribeOptions::default())
        .await
        .expect("bob subscribes to the camera");
    let (mic, screen_tone) = heard(&remote, "before binding").await;
    assert!(mic > 0.1 && screen_tone < 0.02, "only the microphone yet");

    // Bad bindings change nothing.
    let monitor = sink.monitor();
    let open = || Client::open_screen_audio(&monitor);
    let source = open().await.expect("the monitor opens");
    assert_eq!(
        code(alice.bind_screen_audio(camera, camera, source, false).await),
        Some(ErrorCode::InvalidOperation),
        "a camera stream is not a screen share"
    );
    let source = open().await.expect("the monitor opens");
    assert_eq!(
        code(
            alice
                .bind_screen_audio(screen, StreamId(camera.0 + 1000), source, false)
                .await
        ),
        Some(ErrorCode::InvalidOperation),
        "the bind stream is not published"
    );
    let source = open().await.expect("the monitor opens");
    assert_eq!(
        code(alice.bind_screen_audio(screen, screen, source, false).await),
        Some(ErrorCode::InvalidParameter),
        "a screen share cannot carry the screen audio"
    );
    assert_eq!(
        code(Client::open_screen_audio("pulseaudio:no_such_sink.monitor").await),
        Some(ErrorCode::CaptureDeviceNotFound),
        "a missing device"
    );
    let (mic, screen_tone) = heard(&remote, "after the refusals").await;
    assert!(mic > 0.1 && screen_tone < 0.02, "still only the microphone");

    // Mixed with the microphone.
    let source = open().await.expect("the monitor opens");
    alice
        .bind_screen_audio(screen, camera, source, false)
        .await
        .expect("bound");
    let (mic, screen_tone) = heard(&remote, "mixed").await;
    assert!(mic > 0.1, "the microphone is still heard ({mic:.3})");
    assert!(
        screen_tone > 0.1,
        "the screen audio is heard ({screen_tone:.3})"
    );

    // Only the screen audio.
    let source = open().await.expect("the monitor opens");
    alice
        .bind_screen_audio(screen, camera, source, true)
        .await
        .expect("bound again, microphone muted");
    let (mic, screen_tone) = heard(&remote, "muteMainStreamAudio").await;
    assert!(
        screen_tone > 0.1,
        "the screen audio is heard ({screen_tone:.3})"
    );
    assert!(mic < 0.02, "the microphone is not ({mic:.3})");

    // The binding ends with the screen share.
    alice.unpublish(screen).await.expect("unpublish the share");
    let (mic, screen_tone) = heard(&remote, "the share stopped").await;
    assert!(
        mic > 0.1 && screen_tone < 0.02,
        "the microphone alone again"
    );
    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}
