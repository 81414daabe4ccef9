//! Issue 12 §4, "optionally play it locally too": a file mixed into the
//! published audio with `AudioMixOption::play_locally` also plays on this
//! machine's speaker, through the same playout that plays remote streams
//! (`media::devices::AudioPlayout`), and only then.
//!
//! A publisher with a silent microphone publishes to a real server; the
//! playout plays `AudioMixing::local_playback` on the PulseAudio null sink
//! and a microphone on the sink's monitor listens:
//! * without the option (the default) the file is published but the
//!   monitor stays silent;
//! * with it the monitor hears the file's 660 Hz;
//! * paused, the monitor goes silent again.
//!
//! Needs PulseAudio with the `huddle_null` sink (`source .ci/pulse.sh`);
//! without it `common::skip` (fails on CI).
#![cfg(feature = "client")]
#![cfg(feature = "devices")]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use huddle::client::{AudioMixOption, LocalStream};
use huddle::media::devices::{AudioPlayout, MicrophoneSource};
use huddle::media::{AudioFrame, AudioProfile, AudioSource, MediaError, VideoProfile};

const TEST: &str = "a_file_plays_locally_only_when_asked";
const TONE_HZ: f32 = 660.0;

/// A microphone that hears nothing.
struct SilentMic;

impl AudioSource for SilentMic {
    fn sample_rate(&self) -> u32 {
        48_000
    }
    fn channels(&self) -> u16 {
        1
    }
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, MediaError> {
        Ok(Some(AudioFrame::silence(48_000, 1)))
    }
}

/// A 16-bit mono WAV at 48 kHz: `secs` of `hz` at half of full scale.
fn tone_wav(hz: f32, secs: f32) -> Vec<u8> {
    let rate = 48_000u32;
    let pcm: Vec<u8> = (0..(secs * rate as f32) as usize)
        .flat_map(|i| {
            let v = (std::f32::consts::TAU * hz * i as f32 / rate as f32).sin() * 0.5;
            ((v * 32767.0) as i16).to_le_bytes()
        })
        .collect();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(&pcm);
    out
}

/// The next `frames` 20 ms frames the monitor hears.
fn capture(mic: &mut MicrophoneSource, frames: usize) -> Vec<i16> {
    (0..frames)
        .flat_map(|_| {
            mic.next_frame()
                .expect("mic frame")
                .expect("mic is endless")
                .samples
        })
        .collect()
}

#[test]
fn a_file_plays_locally_only_when_asked() {
    let Some(pulse) = pulse_or_skip(TEST) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let file: PathBuf = std::env::temp_dir().join(format!(
        "huddle-local-mix-{}-{}.wav",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&file, tone_wav(TONE_HZ, 30.0)).expect("write the file");

    // Mic first (see devices_pulseaudio.rs): the monitor at low latency.
    let mut mic = MicrophoneSource::open(Some(&pulse.monitor.id)).expect("open monitor");
    let playout = AudioPlayout::open(Some(&pulse.speaker.id)).expect("open speaker");
    let stream = LocalStream::new(
        None,
        Some(Box::new(SilentMic)),
        VideoProfile::default(),
        AudioProfile::default(),
    );
    let mixing = stream.audio_mixing().expect("a stream with audio mixes");
    playout
        .add_stream("music", mixing.local_playback())
        .expect("add the local playback to the speaker");
    let (_server, publisher) = rt.block_on(async {
        let server = start_server().await;
        let (publisher, _) = join(&server, "local-mix", "dj").await;
        publisher.publish(stream).await.expect("publish");
        (server, publisher)
    });

    // The default: published, not played here.
    mixing
        .start(AudioMixOption::new(&file))
        .expect("start mixing");
    let quiet = capture(&mut mic, 50);
    let rms = huddle::media::rms_level(&quiet);
    assert!(mixing.is_playing());
    assert!(
        rms < 0.01,
        "the speaker played the file without play_locally: rms {rms}"
    );

    // Asked for: the speaker plays it.
    let option = AudioMixOption {
        play_locally: true,
        ..AudioMixOption::new(&file)
    };
    mixing.start(option).expect("start mixing, played locally");
    let heard = wait_for_level(
        &mut mic,
        |rms| rms > 0.1,
        "the file",
        Duration::from_secs(10),
    );
    eprintln!("the file was heard on the monitor {heard:?} after starting");
    let pcm = capture(&mut mic, 50);
    let freq = tone_frequency(&pcm);
    let rms = huddle::media::rms_level(&pcm);
    eprintln!("monitor: {freq:.1} Hz, rms {rms:.3}");
    assert!(
        (freq - TONE_HZ).abs() <= 5.0,
        "heard {freq} Hz, want {TONE_HZ}"
    );
    // Half of full scale: rms 0.354 (less any gap the live path dropped).
    assert!(rms > 0.25, "rms {rms}");

    // Paused: silent again.
    mixing.pause();
    wait_for_level(
        &mut mic,
        |rms| rms < 0.01,
        "silence after pause",
        Duration::from_secs(10),
    );

    rt.block_on(async { publisher.leave().await.ok() });
    std::fs::remove_file(file).ok(); // a temp file
}
