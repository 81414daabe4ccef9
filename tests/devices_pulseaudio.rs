//! Real audio devices through a PulseAudio null sink (feature `devices`).
//!
//! Needs a PulseAudio server with the `huddle_null` sink (`source .ci/pulse.sh`,
//! see tests/README.md). Without one every test here prints why and passes,
//! so `cargo test` stays green on machines with no audio server; on CI (`CI`
//! set) they fail instead (`common::skip`).
//!
//! The null sink's `.monitor` source captures what is played into the sink,
//! so speaker → microphone is a closed loop on one machine:
//! * `playout_tone_comes_back_through_the_sink_monitor`: [`AudioPlayout`]
//!   plays a fake remote stream; [`MicrophoneSource`] on the monitor hears it.
//! * `microphone_captures_what_pacat_plays`: the mic path alone, fed by `pacat`.
//! * `publish_from_microphone_end_to_end`: a live mic published through the SFU.
//!
//! Tests share the sink, so `common::pulse_or_skip` runs them one at a time.
#![cfg(feature = "client")]
#![cfg(feature = "devices")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{SINK, pulse_or_skip};

use huddle::client::{LocalStream, RoomEvent, SubscribeOptions};
use huddle::media::devices::{
    AudioPlayout, MicrophoneSource, SPEAKING_THRESHOLD, list_microphones, list_speakers,
};
use huddle::media::{
    AudioProfile, AudioSource, MediaError, MissingDevice, ToneSource, VideoProfile, rms_level,
};

/// [`common::wait_for_level`] within 5 s.
fn wait_for_level(mic: &mut MicrophoneSource, ok: impl Fn(f32) -> bool, what: &str) -> Duration {
    common::wait_for_level(mic, ok, what, Duration::from_secs(5))
}

/// Reads `skip` then `keep` of audio from `mic`; checks every frame's format.
fn capture(mic: &mut MicrophoneSource, skip: Duration, keep: Duration) -> Vec<i16> {
    let frames = |d: Duration| (d.as_millis() / 20) as usize;
    let mut pcm = Vec::new();
    for i in 0..frames(skip) + frames(keep) {
        let frame = mic
            .next_frame()
            .expect("mic frame")
            .expect("mic is endless");
        assert_eq!(
            (frame.sample_rate, frame.channels, frame.samples.len()),
            (48_000, 1, 960),
            "frame {i}"
        );
        if i >= frames(skip) {
            pcm.extend_from_slice(&frame.samples);
        }
    }
    pcm
}

#[test]
fn lists_the_null_sink_and_its_monitor_sorted() {
    let Some(pulse) = pulse_or_skip("lists_the_null_sink_and_its_monitor_sorted") else {
        return;
    };
    let speakers = list_speakers().expect("speakers");
    let mics = list_microphones().expect("microphones");
    eprintln!("speakers: {speakers:#?}\nmicrophones: {mics:#?}");
    assert!(speakers.is_sorted() && mics.is_sorted(), "lists are sorted");
    assert!(
        pulse.speaker.id.starts_with("pulseaudio:"),
        "PulseAudio host used"
    );
    assert!(
        pulse.speaker.is_default,
        "pulse.sh makes {SINK} the default sink"
    );
    assert!(!pulse.speaker.name.is_empty());
}

#[test]
fn unknown_audio_devices_are_not_found() {
    let Some(_pulse) = pulse_or_skip("unknown_audio_devices_are_not_found") else {
        return;
    };
    for err in [
        MicrophoneSource::open(Some("no-such-mic")).err(),
        AudioPlayout::open(Some("no-such-speaker")).err(),
    ] {
        match err {
            Some(MediaError::DeviceUnavailable { kind, .. }) => {
                assert_eq!(kind, MissingDevice::NotFound);
                assert_eq!(kind.seed_code(), 90_100_019);
            }
            other => panic!("expected DeviceUnavailable(NotFound), got {other:?}"),
        }
    }
}

#[test]
fn microphone_captures_what_pacat_plays() {
    let Some(pulse) = pulse_or_skip("microphone_captures_what_pacat_plays") else {
        return;
    };
    let mut mic = MicrophoneSource::open(Some(&pulse.monitor.id)).expect("open monitor");
    assert!(mic.is_live());
    assert_eq!((mic.sample_rate(), mic.channels()), (48_000, 1));
    let _pacat = common::Pacat::play(SINK, 880.0, 4);
    let heard = wait_for_level(&mut mic, |rms| rms > 0.2, "pacat's tone");
    eprintln!("pacat's tone first heard on the monitor after {heard:?}");
    // 0.7 s more before the analysed 1.5 s; all 2.2 s count for the pacing check.
    let started = Instant::now();
    let pcm = capture(
        &mut mic,
        Duration::from_millis(700),
        Duration::from_millis(1500),
    );
    let elapsed = started.elapsed();
    let freq = common::tone_frequency(&pcm);
    let rms = rms_level(&pcm);
    eprintln!(
        "mic on {:?} (device {} Hz): {freq:.2} Hz, rms {rms:.3}, 2.2 s of frames in {elapsed:?}, \
         {} silence frames, {} overflow samples",
        mic.device_name(),
        mic.device_rate(),
        mic.silent_frames(),
        mic.overflow_samples()
    );
    assert!((freq - 880.0).abs() <= 5.0, "dominant {freq} Hz, want 880");
    // 0.5 full-scale sine = 0.354 RMS through a sink at 100 % volume.
    assert!((rms - 0.354).abs() < 0.06, "rms {rms}");
    // Live pacing: 110 frames of 20 ms take about 2.2 s of real time.
    assert!(
        elapsed > Duration::from_millis(1800) && elapsed < Duration::from_millis(3500),
        "{elapsed:?}"
    );
}

#[test]
fn playout_tone_comes_back_through_the_sink_monitor() {
    let Some(pulse) = pulse_or_skip("playout_tone_comes_back_through_the_sink_monitor") else {
        return;
    };
    // Mic first: its low-latency record stream on the monitor makes the null
    // sink run at low latency before playback starts (see tests/README.md).
    let mut mic = MicrophoneSource::open(Some(&pulse.monitor.id)).expect("open monitor");
    let playout = AudioPlayout::open(Some(&pulse.speaker.id)).expect("open speaker");
    eprintln!(
        "playout on {:?}, device format {:?}",
        playout.device_name(),
        playout.device_format()
    );
    // A fake remote stream: 523 Hz, 20 ms frames paced like a decoder, into a
    // channel as bounded as RemoteStream's (REMOTE_AUDIO_CAPACITY = 50).
    let (tx, rx) = crossbeam_channel::bounded(50);
    playout.add_stream("alice", rx).expect("add stream");
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut tone = ToneSource::new(523.0, 48_000, 1, 0.5);
            let start = Instant::now();
            let mut n = 0u32;
            while !stop.load(Ordering::Acquire) {
                if tx.try_send(tone.next_frame()).is_err() {
                    break;
                }
                n += 1;
                let due = start + Duration::from_millis(20) * n;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        })
    };
    let heard = wait_for_level(&mut mic, |rms| rms > 0.2, "the tone");
    eprintln!("tone first heard on the monitor after {heard:?}");
    let pcm = capture(
        &mut mic,
        Duration::from_millis(200),
        Duration::from_millis(1500),
    );
    let freq = common::tone_frequency(&pcm);
    let rms = rms_level(&pcm);
    let level = playout.level("alice").unwrap_or(0.0);
    eprintln!(
        "monitor heard {freq:.2} Hz, rms {rms:.3}; meter {level:.3}, speaking {}, \
         jitter (concealed, dropped) {:?}, device underruns {}",
        playout.is_speaking("alice"),
        playout.jitter_counters("alice"),
        playout.underruns()
    );
    assert!((freq - 523.0).abs() <= 5.0, "dominant {freq} Hz, want 523");
    // 0.354 is sent; 0.352–0.354 measured at load average 9 on 2 cores. Gaps
    // (server underruns, jitter concealment) show up here first.
    assert!(rms > 0.3, "tone at unity gain (0.354 sent): rms {rms}");
    assert!(playout.is_speaking("alice") && level >= SPEAKING_THRESHOLD);
    let levels = playout.levels();
    assert_eq!(levels.len(), 1);
    assert_eq!(levels[0].id, "alice");

    // Local volume 0: the monitor goes quiet, while the meter (pre-volume) still moves.
    assert!(playout.set_volume("alice", 0.0));
    let after = wait_for_level(&mut mic, |rms| rms < 0.001, "silence after set_volume(0)");
    let quiet = capture(
        &mut mic,
        Duration::from_millis(100),
        Duration::from_millis(400),
    );
    let quiet_rms = rms_level(&quiet);
    eprintln!("set_volume(0) took effect after {after:?}: rms {quiet_rms:.4}");
    assert!(
        quiet_rms < 0.005,
        "muted stream still heard: rms {quiet_rms}"
    );
    assert!(playout.is_speaking("alice"));

    // Master volume 0.5 halves what is heard.
    playout.set_master_volume(0.5);
    assert!(playout.set_volume("alice", 1.0));
    wait_for_level(&mut mic, |rms| rms > 0.1, "the tone again");
    let half = capture(
        &mut mic,
        Duration::from_millis(200),
        Duration::from_millis(600),
    );
    let half_rms = rms_level(&half);
    eprintln!("master 0.5: rms {half_rms:.3} (unity {rms:.3})");
    assert!((half_rms / rms - 0.5).abs() < 0.1, "{half_rms} vs {rms}");

    assert!(playout.remove_stream("alice").expect("remove"));
    assert!(!playout.remove_stream("alice").expect("remove again"));
    assert_eq!(playout.level("alice"), None);
    stop.store(true, Ordering::Release);
    feeder.join().expect("feeder");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_microphone_end_to_end() {
    let Some(pulse) = pulse_or_skip("publish_from_microphone_end_to_end") else {
        return;
    };
    let mic = MicrophoneSource::open(Some(&pulse.monitor.id)).expect("open monitor");
    let _pacat = common::Pacat::play(SINK, 660.0, 8);
    let server = common::start_server().await;
    let (alice, _) = common::join(&server, "room-mic", "alice").await;
    let (bob, _) = common::join(&server, "room-mic", "bob").await;
    let stream = LocalStream::new(
        None,
        Some(Box::new(mic)),
        VideoProfile::default(),
        AudioProfile::default(),
    );
    let stream_id = alice.publish(stream).await.expect("publish");
    let added = common::wait_event(&bob, Duration::from_secs(5), "stream-added", |e| match e {
        RoomEvent::StreamAdded(info) => Some(info.clone()),
        _ => None,
    })
    .await;
    assert_eq!(added.stream_id, stream_id);
    let remote = bob
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    let mut pcm: Vec<i16> = Vec::new();
    common::wait_for(Duration::from_secs(20), "2 s of decoded audio", || {
        while let Ok(frame) = remote.audio().try_recv() {
            pcm.extend_from_slice(&frame.samples);
        }
        (pcm.len() >= 96_000).then_some(())
    })
    .await;
    let window = &pcm[24_000..72_000];
    let freq = common::tone_frequency(window);
    eprintln!("bob hears {freq:.2} Hz, rms {:.3}", rms_level(window));
    assert!((freq - 660.0).abs() <= 5.0, "dominant {freq} Hz, want 660");
    alice.leave().await.expect("leave");
    bob.leave().await.expect("leave");
}

/// Hot-plug: a speaker (a second null sink) plugged in while the watcher
/// runs is reported added, with its monitor as a new microphone; unplugged,
/// both are reported removed. Other sinks are not reported.
#[test]
fn plugging_a_speaker_in_and_out_is_reported() {
    use huddle::media::devices::{DeviceKind, DeviceState, DeviceWatcher, WatchConfig};
    let Some(_pulse) = pulse_or_skip("plugging_a_speaker_in_and_out_is_reported") else {
        return;
    };
    let (watcher, changes) = DeviceWatcher::start(WatchConfig {
        interval: Duration::from_millis(200),
        cameras: false,
        audio: true,
    })
    .expect("watcher");
    // The watcher's baseline listing is taken before the new sink exists.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !watcher.is_watching() {
        assert!(Instant::now() < deadline, "the watcher never listed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pactl = |args: &[&str]| {
        let out = std::process::Command::new("pactl")
            .args(args)
            .output()
            .expect("pactl runs");
        assert!(out.status.success(), "pactl {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let module = pactl(&[
        "load-module",
        "module-null-sink",
        "sink_name=huddle_hotplug",
        "sink_properties=device.description=HuddleHotplug",
    ]);
    let mut seen = Vec::new();
    let mut until = |want: &[(DeviceKind, DeviceState)]| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !want.iter().all(|w| seen.contains(w)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let change = changes
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("only {seen:?} by the deadline, wanted {want:?}"));
            assert!(
                change.device.id.contains("huddle_hotplug"),
                "a change of another device: {change:?}"
            );
            seen.push((change.kind, change.state));
        }
    };
    until(&[
        (DeviceKind::Speaker, DeviceState::Added),
        (DeviceKind::Microphone, DeviceState::Added),
    ]);
    pactl(&["unload-module", &module]);
    until(&[
        (DeviceKind::Speaker, DeviceState::Removed),
        (DeviceKind::Microphone, DeviceState::Removed),
    ]);
}
