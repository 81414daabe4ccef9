//! Recording (issue 15 §3): `huddle record` writes one MP4 per stream
//! (H.264 + Opus, no re-encoding) that ffprobe/ffmpeg read back: duration,
//! codecs, frame count, the drawn frame numbers and the tone; and a loss in
//! the video drops frames until the next keyframe instead of corrupting the
//! file.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::RawSocket;
use huddle::bot;
use huddle::media::{H264Encoder, I420Frame, TestPattern, read_stamp};
use huddle::protocol::{ErrorCode, RecordedFile, Reply, ServerMessage};
use huddle::record::{Mp4Recorder, VIDEO_CLOCK_RATE};
use huddle::server::ServerConfig;

/// What ffprobe says of a file.
struct Probe {
    duration_s: f64,
    /// (codec_type, codec_name, nb_frames, width, height)
    streams: Vec<(String, String, u64, u32, u32)>,
}

/// `ffprobe` and `ffmpeg` are installed, else skip (fails on CI).
fn tools_or_skip(test: &str) -> bool {
    for tool in ["ffprobe", "ffmpeg"] {
        let found = Command::new(tool)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            common::skip(
                test,
                &format!("{tool} is not installed (Debian package ffmpeg)"),
            );
            return false;
        }
    }
    true
}

fn probe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .arg("format=duration:stream=codec_type,codec_name,nb_frames,width,height")
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let number = |v: &serde_json::Value| -> f64 {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v.as_f64())
            .unwrap_or(0.0)
    };
    Probe {
        duration_s: number(&json["format"]["duration"]),
        streams: json["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .map(|s| {
                (
                    s["codec_type"].as_str().unwrap_or_default().to_owned(),
                    s["codec_name"].as_str().unwrap_or_default().to_owned(),
                    number(&s["nb_frames"]) as u64,
                    s["width"].as_u64().unwrap_or(0) as u32,
                    s["height"].as_u64().unwrap_or(0) as u32,
                )
            })
            .collect(),
    }
}

/// Decodes every video frame with ffmpeg and reads huddle's stamp from each
/// (frame number, capture time in µs). Returns the stamps and what ffmpeg
/// printed on stderr at level `error`.
fn decoded_stamps(path: &Path, width: u32, height: u32) -> (Vec<Option<(u32, u64)>>, String) {
    let mut child = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        // Every coded frame once: no duplicates to keep a constant rate. The
        // raw output keeps the file's own time base: in the default one (a
        // frame period) two frames captured closer than a period (a
        // publisher catching up after a stall on a loaded machine) get one
        // dts, and ffmpeg reported that as an error of ours.
        .args([
            "-map",
            "0:v:0",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "-1",
        ])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut buf = vec![0u8; w * h + 2 * cw * ch];
    let mut stamps = Vec::new();
    while stdout.read_exact(&mut buf).is_ok() {
        let frame = I420Frame {
            width,
            height,
            y: buf[..w * h].to_vec(),
            u: buf[w * h..w * h + cw * ch].to_vec(),
            v: buf[w * h + cw * ch..].to_vec(),
        };
        stamps.push(read_stamp(&frame).map(|s| (s.frame_no, s.capture_time_us)));
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .ok();
    assert!(
        child.wait().expect("ffmpeg ends").success(),
        "ffmpeg: {stderr}"
    );
    (stamps, stderr)
}

/// The audio track decoded by ffmpeg to 48 kHz mono s16.
fn decoded_pcm(path: &Path) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-f", "s16le", "-ac", "1", "-ar", "48000", "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg audio: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("huddle-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok(); // a leftover from an earlier run
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn huddle_record_writes_ten_seconds_of_pattern_and_tone_that_ffmpeg_reads_back() {
    let test = "huddle_record_writes_ten_seconds_of_pattern_and_tone_that_ffmpeg_reads_back";
    if !tools_or_skip(test) {
        return;
    }
    let server = common::start_server().await;
    let (stop_bot, bot_stopped) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(bot::run(
        common::publishing_bot(&server.url, "rec", "camera", "360p_2", 440.0),
        async {
            bot_stopped.await.ok();
        },
    ));
    let out = temp_dir("record");
    // The recorder as a user runs it: the binary, its flags, 10 s.
    let recorder = tokio::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args(["record", "--server", &server.url, "--room", "rec", "--out"])
        .arg(&out)
        .args(["--duration", "10", "--app-id", common::APP_ID])
        .args(["--app-key", common::APP_KEY])
        .output();
    let output = tokio::time::timeout(Duration::from_secs(40), recorder)
        .await
        .expect("huddle record ends within 40 s")
        .expect("huddle record runs");
    stop_bot.send(()).ok();
    publisher.await.expect("bot task").expect("bot run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "huddle record failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let files: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one file per stream: {files:?} ({stdout})");
    let file = &files[0];
    assert!(
        file.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("rec-camera-"),
        "{}",
        file.display()
    );

    let probe = probe(file);
    assert!(
        (probe.duration_s - 10.0).abs() <= 0.5,
        "duration {} s, want 10 s ± 5 %",
        probe.duration_s
    );
    let video = probe
        .streams
        .iter()
        .find(|s| s.0 == "video")
        .expect("a video stream");
    let audio = probe
        .streams
        .iter()
        .find(|s| s.0 == "audio")
        .expect("an audio stream");
    assert_eq!(video.1, "h264");
    assert_eq!(audio.1, "opus");
    assert_eq!((video.3, video.4), (480, 360), "the profile's size");

    // Every frame decodes and carries the frame number the bot drew into it.
    let (stamps, errors) = decoded_stamps(file, video.3, video.4);
    assert!(errors.trim().is_empty(), "ffmpeg reported errors: {errors}");
    assert_eq!(stamps.len() as u64, video.2, "decoded frames = nb_frames");
    let numbers: Vec<u32> = stamps
        .iter()
        .map(|s| s.expect("every frame carries its drawn number").0)
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "frame numbers increase: {numbers:?}"
    );
    let (first, last) = (numbers[0], *numbers.last().unwrap());
    let drawn = f64::from(last - first + 1);
    let recorded = numbers.len() as f64;
    assert!(
        (recorded - drawn).abs() <= drawn * 0.05,
        "{recorded} frames recorded of the {drawn} drawn from #{first} to #{last}"
    );
    // 15 fps (360p_2) for 10 s, less the time to join and get a keyframe.
    let expected = 15.0 * probe.duration_s;
    assert!(
        recorded >= expected * 0.85 && recorded <= expected * 1.05,
        "{recorded} frames in {} s at 15 fps",
        probe.duration_s
    );

    // The sound is the bot's 440 Hz tone, about as long as the file.
    let pcm = decoded_pcm(file);
    let seconds = pcm.len() as f64 / 48_000.0;
    assert!(
        (seconds - 10.0).abs() <= 0.5,
        "audio lasts {seconds} s, want 10 s ± 5 %"
    );
    let tone = common::tone_frequency(&pcm[pcm.len() / 2..]);
    eprintln!(
        "recorded: {} s, {recorded} frames #{first}..#{last}, audio {seconds:.2} s, tone {tone:.1} Hz; {stdout}",
        probe.duration_s
    );
    assert!((tone - 440.0).abs() < 10.0, "tone {tone} Hz, want 440");
    std::fs::remove_dir_all(&out).ok();
}

/// A loss in the middle: the recorder drops units until the next keyframe
/// (and says it wants one), and the file decodes without an error, holding
/// the last good picture over the gap.
#[test]
fn a_video_gap_drops_frames_until_the_next_keyframe() {
    if !tools_or_skip("a_video_gap_drops_frames_until_the_next_keyframe") {
        return;
    }
    let (width, height, fps) = (320, 240, 30);
    let mut encoder =
        H264Encoder::with_keyframe_interval(width, height, fps, 500_000, 0).expect("encoder");
    let mut pattern = TestPattern::new(width, height);
    let dir = temp_dir("gap");
    let path = dir.join("gap.mp4");
    let mut recorder = Mp4Recorder::create(&path).expect("create");
    let step = u64::from(VIDEO_CLOCK_RATE / fps);
    for frame_no in 0..60u32 {
        let frame = pattern.render(frame_no, 0);
        let encoded = encoder.encode(&frame, frame_no == 40).expect("encode");
        if (20..26).contains(&frame_no) {
            // Frames 20..25 are lost on the way.
            if frame_no == 20 {
                recorder.video_lost();
                assert!(recorder.wants_keyframe(), "a loss asks for a keyframe");
            }
            continue;
        }
        recorder
            .push_video(u64::from(frame_no) * step, &encoded.data)
            .expect("push");
        if !(20..40).contains(&frame_no) {
            assert!(!recorder.wants_keyframe(), "frame {frame_no} records");
        } else {
            assert!(recorder.wants_keyframe(), "frame {frame_no} waits");
        }
    }
    let summary = recorder.finish().expect("finish");
    assert_eq!(summary.video_frames, 40, "{summary:?}");
    assert_eq!(summary.video_dropped, 14, "{summary:?}");

    let probe = probe(&path);
    let video = &probe.streams[0];
    assert_eq!((video.1.as_str(), video.2), ("h264", 40));
    // 60 frames at 30 fps: the held picture fills the gap, the time line stays.
    assert!(
        (probe.duration_s - 2.0).abs() < 0.05,
        "duration {}",
        probe.duration_s
    );
    let (stamps, errors) = decoded_stamps(&path, width, height);
    assert!(errors.trim().is_empty(), "ffmpeg reported errors: {errors}");
    let numbers: Vec<u32> = stamps.iter().map(|s| s.expect("stamp").0).collect();
    let want: Vec<u32> = (0..20).chain(40..60).collect();
    assert_eq!(numbers, want);
    std::fs::remove_dir_all(&dir).ok();
}

/// Presentation times (s) of the video frames, in order.
fn frame_times(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=pts_time", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// The reply or error to request `id`.
async fn answer(socket: &mut RawSocket, id: u64) -> ServerMessage {
    socket
        .recv_until(Duration::from_secs(15), "the answer", |m| match m {
            ServerMessage::Reply { id: rid, .. } if rid.0 == id => Some(m.clone()),
            ServerMessage::Error(e) if e.id.as_ref().is_some_and(|r| r.0 == id) => Some(m.clone()),
            _ => None,
        })
        .await
}

/// Checks one file of a server recording lasting about `seconds`; returns
/// the median of (capture time − presentation time): where its frames sit
/// on the room clock.
fn check_server_file(file: &RecordedFile, seconds: f64) -> f64 {
    let (offset, frames) = check_file(Path::new(&file.path), seconds);
    assert_eq!(frames, file.video_frames, "the reply counts the frames");
    offset
}

/// [`check_server_file`] for any recorded file; also returns its frame count.
fn check_file(path: &Path, seconds: f64) -> (f64, u64) {
    let probe = probe(path);
    assert!(
        (probe.duration_s - seconds).abs() <= seconds * 0.05,
        "{}: duration {} s, want {seconds} s ± 5 %",
        path.display(),
        probe.duration_s
    );
    let codecs: Vec<&str> = probe.streams.iter().map(|s| s.1.as_str()).collect();
    assert!(
        codecs.contains(&"h264") && codecs.contains(&"opus"),
        "{codecs:?}"
    );
    let video = probe
        .streams
        .iter()
        .find(|s| s.0 == "video")
        .expect("video");
    let (stamps, errors) = decoded_stamps(path, video.3, video.4);
    assert!(errors.trim().is_empty(), "ffmpeg reported errors: {errors}");
    let stamps: Vec<(u32, u64)> = stamps.iter().map(|s| s.expect("stamp")).collect();
    let (first, last) = (stamps[0].0, stamps.last().unwrap().0);
    let drawn = f64::from(last - first + 1);
    assert!(
        (stamps.len() as f64 - drawn).abs() <= drawn * 0.05,
        "{} frames of {drawn} drawn",
        stamps.len()
    );
    let times = frame_times(path);
    assert_eq!(times.len(), stamps.len());
    // Skip the first frame: it is held from the clock's origin.
    let mut offsets: Vec<f64> = stamps
        .iter()
        .zip(&times)
        .skip(1)
        .map(|((_, capture_us), t)| *capture_us as f64 / 1e6 - t)
        .collect();
    offsets.sort_by(f64::total_cmp);
    (offsets[offsets.len() / 2], video.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn start_recording_writes_one_file_per_stream_on_one_room_clock() {
    let test = "start_recording_writes_one_file_per_stream_on_one_room_clock";
    if !tools_or_skip(test) {
        return;
    }
    let dir = temp_dir("server-record");
    let mut config = ServerConfig::new(common::test_apps());
    config.record_dir = Some(dir.clone());
    let server = common::start_server_with(config).await;
    let mut director = RawSocket::connect(&server).await;
    director.joined("studio", "director").await;
    let (stop_bots, bots_stopped) = tokio::sync::watch::channel(false);
    let mut bots = Vec::new();
    for (user, tone) in [("cam-a", 440.0), ("cam-b", 880.0)] {
        let mut stopped = bots_stopped.clone();
        bots.push(tokio::spawn(bot::run(
            common::publishing_bot(&server.url, "studio", user, "360p_2", tone),
            async move {
                stopped.changed().await.ok();
            },
        )));
    }
    let mut added = 0;
    director
        .recv_until(Duration::from_secs(15), "two streams", |m| {
            if let ServerMessage::Event {
                event: huddle::protocol::Event::StreamAdded { .. },
            } = m
            {
                added += 1;
            }
            (added == 2).then_some(())
        })
        .await;

    director
        .send(r#"{"id":2,"type":"start-recording","recordId":42}"#)
        .await;
    match answer(&mut director, 2).await {
        ServerMessage::Reply {
            reply:
                Reply::RecordingStarted {
                    record_id,
                    stream_ids,
                },
            ..
        } => {
            assert_eq!(record_id, 42);
            assert_eq!(stream_ids.len(), 2, "the whole room");
        }
        other => panic!("start-recording: {other:?}"),
    }
    // A stream published 2 s into the recording joins it (and must line up
    // with the others on the recording's clock, not start at its own 0).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut stopped = bots_stopped.clone();
    bots.push(tokio::spawn(bot::run(
        common::publishing_bot(&server.url, "studio", "cam-c", "360p_2", 660.0),
        async move {
            stopped.changed().await.ok();
        },
    )));
    // The recording's length is the scenario.
    let seconds = 6.0;
    tokio::time::sleep(Duration::from_secs_f64(seconds - 2.0)).await;
    director
        .send(r#"{"id":3,"type":"stop-recording","recordId":42}"#)
        .await;
    let files = match answer(&mut director, 3).await {
        ServerMessage::Reply {
            reply: Reply::RecordingStopped { record_id, files },
            ..
        } => {
            assert_eq!(record_id, 42);
            files
        }
        other => panic!("stop-recording: {other:?}"),
    };
    stop_bots.send(true).ok();
    for bot in bots {
        bot.await.expect("bot task").expect("bot run");
    }
    assert_eq!(files.len(), 3, "one file per stream: {files:?}");
    let offsets: Vec<f64> = files
        .iter()
        .map(|f| check_server_file(f, seconds))
        .collect();
    // The publishers draw their capture time (one clock, one process): on
    // one room clock a frame captured at one instant plays at one instant in
    // every file, the late publisher's too.
    let spread = offsets.iter().copied().fold(f64::MIN, f64::max)
        - offsets.iter().copied().fold(f64::MAX, f64::min);
    assert!(
        spread < 0.1,
        "the files are out of sync by {spread:.3} s: {offsets:?}"
    );
    for file in &files {
        let pcm = decoded_pcm(Path::new(&file.path));
        let heard = common::tone_frequency(&pcm[pcm.len() / 2..]);
        // Files are named after the publisher; match the tone to it.
        let want = if file.path.contains("cam-a") {
            440.0
        } else if file.path.contains("cam-b") {
            880.0
        } else {
            660.0
        };
        assert!(
            (heard - want).abs() < 15.0,
            "{}: tone {heard} Hz",
            file.path
        );
    }
    eprintln!("server recording: {files:?}, capture-time offsets {offsets:?} s");
    std::fs::remove_dir_all(&dir).ok();
}

fn code_of(message: ServerMessage) -> ErrorCode {
    common::expect_error(message).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recording_requests_with_bad_input_get_numbered_errors_and_the_room_carries_on() {
    // A server without record_dir: recording is off.
    let plain = common::start_server().await;
    let mut alice = RawSocket::connect(&plain).await;
    alice.joined("off", "alice").await;
    alice.send(r#"{"id":2,"type":"start-recording"}"#).await;
    assert_eq!(
        code_of(answer(&mut alice, 2).await),
        ErrorCode::InvalidOperation
    );

    let dir = temp_dir("record-bad-input");
    let mut config = ServerConfig::new(common::test_apps());
    config.record_dir = Some(dir.clone());
    let server = common::start_server_with(config).await;
    let mut joiner = RawSocket::connect(&server).await;
    joiner.joined("room", "joiner").await;
    // Nothing published yet: nothing to record.
    joiner.send(r#"{"id":2,"type":"start-recording"}"#).await;
    assert_eq!(
        code_of(answer(&mut joiner, 2).await),
        ErrorCode::InvalidOperation
    );
    // A stream that does not exist.
    joiner
        .send(r#"{"id":3,"type":"start-recording","streamId":999}"#)
        .await;
    assert_eq!(
        code_of(answer(&mut joiner, 3).await),
        ErrorCode::InvalidSubscribedInfo
    );
    // A record id that is not an int32, and one never started.
    joiner
        .send(r#"{"id":4,"type":"start-recording","recordId":"x"}"#)
        .await;
    assert_eq!(
        code_of(answer(&mut joiner, 4).await),
        ErrorCode::InvalidParameter
    );
    joiner
        .send(r#"{"id":5,"type":"stop-recording","recordId":7}"#)
        .await;
    assert_eq!(
        code_of(answer(&mut joiner, 5).await),
        ErrorCode::InvalidParameter
    );

    // A player may not record.
    let mut player = RawSocket::connect(&server).await;
    let ctime = huddle::auth::now_unix() + 600;
    let signature = huddle::auth::sign(common::APP_KEY, common::APP_ID, "room", "viewer", ctime);
    player
        .send(&format!(
            r#"{{"id":1,"type":"join","protocolVersion":1,"appId":"{}","roomId":"room","userId":"viewer","role":2,"ctime":{ctime},"signature":"{signature}"}}"#,
            common::APP_ID
        ))
        .await;
    assert!(matches!(
        answer(&mut player, 1).await,
        ServerMessage::Reply { .. }
    ));
    player.send(r#"{"id":2,"type":"start-recording"}"#).await;
    assert_eq!(
        code_of(answer(&mut player, 2).await),
        ErrorCode::RoleNoPermission
    );

    // With a stream: one recording of it; a second one, or a taken id, is refused.
    let (stop_bot, bot_stopped) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(bot::run(
        common::publishing_bot(&server.url, "room", "cam", "360p_2", 440.0),
        async {
            bot_stopped.await.ok();
        },
    ));
    let stream_id = joiner
        .recv_until(Duration::from_secs(15), "the stream", |m| match m {
            ServerMessage::Event {
                event: huddle::protocol::Event::StreamAdded { stream },
            } => Some(stream.stream_id.0),
            _ => None,
        })
        .await;
    joiner
        .send(&format!(
            r#"{{"id":6,"type":"start-recording","streamId":{stream_id},"recordId":5}}"#
        ))
        .await;
    assert!(matches!(
        answer(&mut joiner, 6).await,
        ServerMessage::Reply {
            reply: Reply::RecordingStarted { record_id: 5, .. },
            ..
        }
    ));
    joiner.send(r#"{"id":7,"type":"start-recording"}"#).await;
    assert_eq!(
        code_of(answer(&mut joiner, 7).await),
        ErrorCode::InvalidOperation
    );
    joiner
        .send(r#"{"id":8,"type":"start-recording","recordId":5}"#)
        .await;
    assert_eq!(
        code_of(answer(&mut joiner, 8).await),
        ErrorCode::InvalidParameter
    );
    // A recording of another room cannot be stopped from there.
    let mut other = RawSocket::connect(&server).await;
    other.joined("other-room", "mallory").await;
    other
        .send(r#"{"id":9,"type":"stop-recording","recordId":5}"#)
        .await;
    assert_eq!(
        code_of(answer(&mut other, 9).await),
        ErrorCode::InvalidParameter
    );

    // The room carries on: the sessions answer, the stream still reaches a subscriber.
    joiner.ping(20).await;
    player.ping(21).await;
    let (viewer, _) = common::join(&server, "room", "late-viewer").await;
    let stream = viewer
        .subscribe(huddle::protocol::StreamId(stream_id), Default::default())
        .await
        .expect("subscribe");
    common::wait_for(Duration::from_secs(10), "frames after the errors", || {
        (stream.stats().frames_decoded >= 5).then_some(())
    })
    .await;
    joiner
        .send(r#"{"id":10,"type":"stop-recording","recordId":5}"#)
        .await;
    assert!(matches!(
        answer(&mut joiner, 10).await,
        ServerMessage::Reply {
            reply: Reply::RecordingStopped { record_id: 5, .. },
            ..
        }
    ));
    stop_bot.send(()).ok();
    publisher.await.expect("bot task").expect("bot run");
    std::fs::remove_dir_all(&dir).ok();
}

/// A recording nobody stopped is completed when the server shuts down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_shutting_down_completes_running_recordings() {
    let test = "a_server_shutting_down_completes_running_recordings";
    if !tools_or_skip(test) {
        return;
    }
    let dir = temp_dir("record-shutdown");
    let mut config = ServerConfig::new(common::test_apps());
    config.record_dir = Some(dir.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let (shut_down, shutdown) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(huddle::server::Server::new(config).run(listener, async {
        shutdown.await.ok();
    }));
    let (stop_bot, bot_stopped) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(bot::run(
        common::publishing_bot(&url, "late", "cam", "360p_2", 440.0),
        async {
            bot_stopped.await.ok();
        },
    ));
    let mut director = RawSocket::connect_url(&url).await;
    director.joined("late", "director").await;
    director
        .recv_until(Duration::from_secs(15), "the stream", |m| {
            matches!(
                m,
                ServerMessage::Event {
                    event: huddle::protocol::Event::StreamAdded { .. }
                }
            )
            .then_some(())
        })
        .await;
    director
        .send(r#"{"id":2,"type":"start-recording","recordId":3}"#)
        .await;
    assert!(matches!(
        answer(&mut director, 2).await,
        ServerMessage::Reply {
            reply: Reply::RecordingStarted { record_id: 3, .. },
            ..
        }
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    shut_down.send(()).ok();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops")
        .expect("server task")
        .expect("server run");
    stop_bot.send(()).ok();
    publisher.await.expect("bot task").ok(); // the server went away under it
    let files: Vec<PathBuf> = std::fs::read_dir(dir.join("3"))
        .expect("the recording's directory")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let probe = probe(&files[0]);
    let codecs: Vec<&str> = probe.streams.iter().map(|s| s.1.as_str()).collect();
    assert!(
        codecs.contains(&"h264") && codecs.contains(&"opus"),
        "{codecs:?}"
    );
    assert!(
        probe.duration_s > 2.5 && probe.duration_s < 4.0,
        "{} s",
        probe.duration_s
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The client recorder subscribes to streams published after it joined too,
/// and puts every file on its one clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn huddle_record_takes_later_streams_on_the_same_clock() {
    let test = "huddle_record_takes_later_streams_on_the_same_clock";
    if !tools_or_skip(test) {
        return;
    }
    let server = common::start_server().await;
    let (stop_bots, bots_stopped) = tokio::sync::watch::channel(false);
    let publish = |user: &'static str, tone: f32| {
        let mut stopped = bots_stopped.clone();
        tokio::spawn(bot::run(
            common::publishing_bot(&server.url, "live", user, "360p_2", tone),
            async move {
                stopped.changed().await.ok();
            },
        ))
    };
    let early = publish("early", 440.0);
    let mut watcher = RawSocket::connect(&server).await;
    watcher.joined("live", "watcher").await;
    let out = temp_dir("record-later");
    let seconds = 6.0;
    let recorder = tokio::spawn(bot::record::run(
        bot::record::RecordConfig {
            server_url: server.url.clone(),
            app_id: huddle::protocol::AppId(common::APP_ID.into()),
            credential: huddle::client::Credential::AppKey {
                key: common::APP_KEY.into(),
                valid_for: Duration::from_secs(600),
            },
            room_id: huddle::protocol::RoomId("live".into()),
            user_id: huddle::protocol::UserId("recorder".into()),
            out_dir: out.clone(),
            duration: Some(Duration::from_secs_f64(seconds)),
        },
        std::future::pending(),
    ));
    watcher
        .recv_until(Duration::from_secs(15), "the recorder", |m| match m {
            ServerMessage::Event {
                event: huddle::protocol::Event::PeerJoin { user },
            } if user.user_id.0 == "recorder" => Some(()),
            _ => None,
        })
        .await;
    // Published 2 s into the recording: its file must still line up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let late = publish("late", 880.0);
    let report = tokio::time::timeout(Duration::from_secs(30), recorder)
        .await
        .expect("the recorder stops")
        .expect("recorder task")
        .expect("recorder run");
    stop_bots.send(true).ok();
    for bot in [early, late] {
        bot.await.expect("bot task").expect("bot run");
    }
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.files.len(), 2, "{:?}", report.files);
    let mut offsets = Vec::new();
    for file in &report.files {
        let (offset, frames) = check_file(&file.path, seconds);
        assert_eq!(frames, file.video_frames);
        offsets.push(offset);
    }
    let spread = (offsets[0] - offsets[1]).abs();
    assert!(spread < 0.1, "the files are out of sync by {spread:.3} s");
    eprintln!(
        "client recording: {:?}, capture-time offsets {offsets:?}",
        report.files
    );
    std::fs::remove_dir_all(&out).ok();
}
