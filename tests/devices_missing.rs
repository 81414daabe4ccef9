//! Missing devices fail clearly, with the seed error codes, so callers can
//! fall back to the synthetic sources. Runs everywhere: on this project's
//! machines there is no camera, and the check adapts when there is one.

use huddle::media::MissingDevice;
use huddle::protocol::ErrorCode;

#[test]
fn missing_device_codes_match_the_protocol_table() {
    for (kind, code) in [
        (
            MissingDevice::VideoInput,
            ErrorCode::NoAvailableVideoInputDevices,
        ),
        (
            MissingDevice::AudioInput,
            ErrorCode::NoAvailableAudioInputDevices,
        ),
        (
            MissingDevice::AudioOutput,
            ErrorCode::NoAvailableAudioOutputDevices,
        ),
        (MissingDevice::NotFound, ErrorCode::CaptureDeviceNotFound),
    ] {
        assert_eq!(kind.seed_code(), code.code(), "{kind:?}");
    }
}

#[cfg(feature = "devices")]
#[test]
fn no_camera_is_a_clear_error_and_synthetic_video_still_works() {
    use huddle::media::devices::{CameraConfig, CameraSource, list_cameras};
    use huddle::media::{MediaError, SyntheticVideo, VideoSource};

    let config = CameraConfig {
        width: 640,
        height: 480,
        frame_rate: 15,
    };
    let cameras = list_cameras().expect("querying cameras works without any");
    assert!(cameras.is_sorted());
    eprintln!("cameras: {cameras:?}");
    let err = CameraSource::open(Some("no-such-camera"), config).err();
    let want = if cameras.is_empty() {
        MissingDevice::VideoInput
    } else {
        MissingDevice::NotFound
    };
    match &err {
        Some(MediaError::DeviceUnavailable { kind, detail }) => {
            assert_eq!(*kind, want, "{detail}");
            eprintln!(
                "open(no-such-camera): {} (code {})",
                err.as_ref().map_or(String::new(), ToString::to_string),
                kind.seed_code()
            );
        }
        other => panic!("expected DeviceUnavailable({want:?}), got {other:?}"),
    }
    if cameras.is_empty() {
        match CameraSource::open(None, config) {
            Err(MediaError::DeviceUnavailable { kind, .. }) => {
                assert_eq!(kind.seed_code(), 90_100_004);
            }
            Err(other) => panic!("expected DeviceUnavailable, got {other}"),
            Ok(_) => panic!("opened a camera that list_cameras did not show"),
        }
        // The caller's fallback.
        let mut fallback: Box<dyn VideoSource> = Box::new(SyntheticVideo::new(640, 480, 15));
        assert!(!fallback.is_live());
        assert!(fallback.next_frame().expect("frame").is_some());
    } else {
        eprintln!("a camera is present: skipping the none-at-all case");
    }
    let zero = CameraSource::open(
        None,
        CameraConfig {
            frame_rate: 0,
            ..config
        },
    );
    assert!(matches!(zero, Err(MediaError::InvalidDimensions { .. })));
}

/// With no audio server (and, on CI, no sound card), opening the defaults
/// fails fast as `DeviceUnavailable`, the case callers fall back on. Where a
/// device does exist it opens instead; both are fine, a hang or a generic
/// error is not.
#[cfg(feature = "devices")]
#[test]
fn default_audio_devices_open_or_are_unavailable_quickly() {
    use std::time::{Duration, Instant};

    use huddle::media::MediaError;
    use huddle::media::devices::{AudioPlayout, MicrophoneSource, pulseaudio_available};

    let started = Instant::now();
    let mic = MicrophoneSource::open(None).map(|m| m.device_name().to_owned());
    let speaker = AudioPlayout::open(None).map(|p| p.device_name().to_owned());
    eprintln!(
        "pulseaudio: {}; default mic: {mic:?}; default speaker: {speaker:?}; in {:?}",
        pulseaudio_available(),
        started.elapsed()
    );
    for (what, result) in [("mic", mic), ("speaker", speaker)] {
        if let Err(e) = result {
            assert!(
                matches!(e, MediaError::DeviceUnavailable { .. }),
                "{what}: expected Ok or DeviceUnavailable, got {e:?}"
            );
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}
