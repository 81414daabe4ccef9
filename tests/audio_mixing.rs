//! Audio mixing (seed 001 `startAudioMixing` and family) end to end: a file
//! mixed into a silent microphone is what a subscriber hears through the
//! SFU, and seeking and pausing change what it hears; files of every
//! supported format decode (made by ffmpeg, Debian package `ffmpeg`).
#![cfg(feature = "client")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use huddle::client::{AudioMixOption, LocalStream, MixingEvent, RemoteStream, RoomEvent};
use huddle::media::audio_file::AudioFile;
use huddle::media::{
    AudioFrame, AudioProfile, AudioSource, MediaError, VideoProfile, dominant_frequency,
};

/// A 16-bit PCM WAV, mono at `rate`, of tone segments (Hz, seconds).
fn wav(rate: u32, segments: &[(f32, f32)]) -> Vec<u8> {
    let mut pcm = Vec::new();
    for &(hz, secs) in segments {
        for i in 0..(secs * rate as f32) as usize {
            let v = (std::f32::consts::TAU * hz * i as f32 / rate as f32).sin() * 0.5;
            pcm.extend_from_slice(&((v * 32767.0) as i16).to_le_bytes());
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    for field in [
        16u32.to_le_bytes().to_vec(),
        1u16.to_le_bytes().to_vec(),
        1u16.to_le_bytes().to_vec(),
    ] {
        out.extend_from_slice(&field);
    }
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(pcm.len() as u32).to_le_bytes());
    out.extend_from_slice(&pcm);
    out
}

/// A file in a fresh temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "huddle-mixing-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

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

/// The next `secs` of decoded audio of `remote`, first channel.
async fn listen(remote: &RemoteStream, secs: f32) -> Vec<i16> {
    while remote.audio().try_recv().is_ok() {} // what was heard before
    let mut pcm = Vec::new();
    let want = (48_000.0 * secs) as usize;
    wait_for(Duration::from_secs(10), "audio to listen to", || {
        while let Ok(frame) = remote.audio().try_recv() {
            let channels = usize::from(frame.channels.max(1));
            pcm.extend(frame.samples.iter().step_by(channels));
        }
        (pcm.len() >= want).then_some(())
    })
    .await;
    pcm
}

fn rms(pcm: &[i16]) -> f32 {
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len().max(1) as f64).sqrt() as f32 / 32768.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_file_is_heard_and_seek_and_pause_change_what_is_heard() {
    let dir = TempDir::new();
    // 3 s at 700 Hz, then 5 s at 1300 Hz, at 44.1 kHz (resampled). After the
    // seek to 4 s the test listens for about 2.2 s of playing time (plus what
    // is in flight): the second tone must outlast that, or the last check
    // hears the file's end (it did with 3 s, under CI load).
    let path = dir.file(
        "two-tones.wav",
        &wav(44_100, &[(700.0, 3.0), (1300.0, 5.0)]),
    );
    let server = start_server().await;
    let (alice, _) = join(&server, "room-mix", "alice").await;
    let (bob, _) = join(&server, "room-mix", "bob").await;
    let stream = LocalStream::new(
        None,
        Some(Box::new(SilentMic)),
        VideoProfile::default(),
        AudioProfile::default(),
    );
    let mixing = stream.audio_mixing().expect("a stream with audio mixes");
    let stream_id = alice.publish(stream).await.expect("publish");
    wait_event(&bob, Duration::from_secs(5), "stream-added", |e| match e {
        RoomEvent::StreamAdded(info) if info.stream_id == stream_id => Some(()),
        _ => None,
    })
    .await;
    let remote = bob
        .subscribe(stream_id, Default::default())
        .await
        .expect("subscribe");

    let before = listen(&remote, 0.5).await;
    assert!(
        rms(&before) < 0.01,
        "a silent microphone: rms {}",
        rms(&before)
    );

    mixing
        .start(AudioMixOption::new(&path))
        .expect("mixing starts");
    assert_eq!(mixing.events().try_recv(), Ok(MixingEvent::Played));
    let first = listen(&remote, 1.0).await;
    let hz = tone_frequency(&first);
    assert!((hz - 700.0).abs() < 10.0, "heard {hz} Hz, mixed 700 Hz");

    mixing
        .set_position(Duration::from_millis(4_000))
        .expect("seek");
    let after_seek = listen(&remote, 1.0).await;
    let hz = tone_frequency(&after_seek[after_seek.len() / 2..]);
    assert!(
        (hz - 1300.0).abs() < 10.0,
        "heard {hz} Hz after seeking to 4 s"
    );

    mixing.pause();
    listen(&remote, 0.3).await; // what was on its way
    let paused = listen(&remote, 0.5).await;
    assert!(rms(&paused) < 0.01, "paused: rms {}", rms(&paused));
    let at = mixing.position().expect("position");
    mixing.resume();
    let resumed = listen(&remote, 0.6).await;
    assert!(
        rms(&resumed[resumed.len() / 2..]) > 0.1,
        "resumed: tone again"
    );
    assert!(mixing.position().expect("position") > at);

    // Bad input on the live stream: refused, and the file plays on.
    let missing = mixing
        .start(AudioMixOption::new(dir.0.join("missing.mp3")))
        .expect_err("missing file");
    assert_eq!(
        missing.seed_code(),
        huddle::protocol::ErrorCode::InvalidParameter.code()
    );
    let still = listen(&remote, 0.6).await;
    assert!(
        rms(&still[still.len() / 2..]) > 0.1,
        "still mixing after a bad start"
    );
    alice.leave().await.ok();
    bob.leave().await.ok();
}

/// Makes `name` from `source` with ffmpeg, or `None` (after `skip`) when
/// ffmpeg is missing.
fn ffmpeg(test: &str, source: &Path, target: &Path, codec_args: &[&str]) -> Option<()> {
    let mut args = vec!["-v", "error", "-y", "-i"];
    let (source, target) = (source.to_str()?, target.to_str()?);
    args.push(source);
    args.extend_from_slice(codec_args);
    args.push(target);
    match std::process::Command::new("ffmpeg").args(&args).output() {
        Ok(out) if out.status.success() => Some(()),
        Ok(out) => panic!(
            "ffmpeg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            skip(test, "ffmpeg (Debian package ffmpeg) is not installed");
            None
        }
    }
}

#[test]
fn every_supported_format_decodes_at_the_right_pitch_and_length() {
    const TEST: &str = "every_supported_format_decodes_at_the_right_pitch_and_length";
    let dir = TempDir::new();
    let source = dir.file("source.wav", &wav(44_100, &[(880.0, 2.0)]));
    for (name, args) in [
        ("tone.wav", &[][..]),
        ("tone.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"][..]),
        ("tone.flac", &["-c:a", "flac"][..]),
        ("tone.ogg", &["-c:a", "libvorbis", "-q:a", "4"][..]),
        ("tone.m4a", &["-c:a", "aac", "-b:a", "128k"][..]),
    ] {
        let path = dir.0.join(name);
        if name != "tone.wav" {
            if ffmpeg(TEST, &source, &path, args).is_none() {
                return;
            }
        } else {
            std::fs::copy(&source, &path).expect("copy");
        }
        let mut file = AudioFile::open(&path, 48_000).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut pcm = Vec::new();
        while file.read(4_800, &mut pcm).expect("read") > 0 {}
        let secs = pcm.len() as f32 / 48_000.0;
        assert!((secs - 2.0).abs() < 0.1, "{name}: {secs} s decoded");
        let samples: Vec<i16> = pcm.iter().map(|s| (s * 32767.0) as i16).collect();
        let hz = dominant_frequency(&samples[4_800..52_800], 1, 48_000).expect("a tone");
        assert!((hz - 880.0).abs() < 5.0, "{name}: {hz} Hz");
    }
}

/// `huddle bot --publish --mix-file`: a file that plays is mixed in (a
/// subscriber hears it, not the bot's tone); one that does not exist ends
/// the bot with 90000005.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_mixes_a_file_and_refuses_a_missing_one() {
    let dir = TempDir::new();
    let path = dir.file("music.wav", &wav(48_000, &[(1100.0, 20.0)]));
    let server = start_server().await;
    let missing = huddle::bot::run(
        huddle::bot::BotConfig {
            mix: Some(AudioMixOption::new(dir.0.join("nothing.wav"))),
            duration: Some(Duration::from_secs(5)),
            ..publishing_bot(&server.url, "room-bot-mix", "dj", "360p_2", 440.0)
        },
        std::future::pending(),
    )
    .await
    .expect_err("a missing file ends the bot");
    assert_eq!(
        missing.code(),
        huddle::protocol::ErrorCode::InvalidParameter,
        "{missing}"
    );

    let (bob, _) = join(&server, "room-bot-mix", "bob").await;
    let mut option = AudioMixOption::new(&path);
    option.replace = true;
    let bot = tokio::spawn(huddle::bot::run(
        huddle::bot::BotConfig {
            mix: Some(option),
            duration: Some(Duration::from_secs(15)),
            ..publishing_bot(&server.url, "room-bot-mix", "dj", "360p_2", 440.0)
        },
        std::future::pending(),
    ));
    let stream_id = wait_event(
        &bob,
        Duration::from_secs(10),
        "the bot's stream",
        |e| match e {
            RoomEvent::StreamAdded(info) => Some(info.stream_id),
            _ => None,
        },
    )
    .await;
    let remote = bob
        .subscribe(stream_id, Default::default())
        .await
        .expect("subscribe");
    let heard = listen(&remote, 1.0).await;
    let hz = tone_frequency(&heard);
    assert!(
        (hz - 1100.0).abs() < 10.0,
        "heard {hz} Hz: the file replaces the 440 Hz tone"
    );
    bot.abort();
    bob.leave().await.ok();
}
