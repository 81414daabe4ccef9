//! Top-N audio (issue 12 §2; seed `enableTopThreeAudioMode`,
//! `setVolume4TopThree`, `muteAudio4TopThree`, `volume-indicator`) over real
//! links: five publishers at different tone levels, one subscriber in top-N
//! mode. It must hear the three loudest (their tones, one per slot, and
//! nothing of the others), see them ranked in `volume-indicator`, hear a
//! quiet one that gets loud take over, and its volume and mute must act on
//! what it hears. Bad input to the new request is refused with numbered
//! errors and the session carries on.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{RawSocket, expect_error, join, start_server, wait_for};
use huddle::client::{Client, LocalStream, RoomEvent, TopNAudio, UserVolume};
use huddle::media::{AudioProfile, SyntheticAudio, ToneLevel, ToneSource, VideoProfile};
use huddle::protocol::{ErrorCode, Reply, RequestId, ServerMessage};

/// Tones of the five talkers (Hz), far apart after Opus.
const TONES: [f32; 5] = [300.0, 500.0, 700.0, 900.0, 1100.0];
/// Their amplitudes: the first three are 20 dB and more above the last two.
const LEVELS: [f32; 5] = [0.8, 0.4, 0.2, 0.02, 0.01];

/// An audio-only stream of a tone whose level can change while it plays.
fn talker(tone_hz: f32, level: &ToneLevel) -> LocalStream {
    let profile = AudioProfile::default();
    let tone = ToneSource::new(tone_hz, profile.sample_rate, profile.channels, 0.0)
        .with_level(level.clone());
    LocalStream::new(
        None,
        Some(Box::new(SyntheticAudio::from_tone(tone))),
        VideoProfile::default(),
        profile,
    )
}

/// The latest `volume-indicator`, if any came since the last call.
fn latest_indicator(client: &Client) -> Option<Vec<UserVolume>> {
    client
        .events()
        .try_iter()
        .filter_map(|e| match e {
            RoomEvent::VolumeIndicator(v) => Some(v),
            _ => None,
        })
        .last()
}

fn users_of(indicator: &[UserVolume]) -> Vec<String> {
    indicator.iter().map(|v| v.user_id.0.clone()).collect()
}

/// Drains every slot's decoded audio; returns it per slot.
fn drain(audio: &TopNAudio) -> Vec<Vec<i16>> {
    audio
        .slots()
        .iter()
        .map(|slot| {
            slot.audio()
                .try_iter()
                .flat_map(|frame| frame.samples)
                .collect()
        })
        .collect()
}

/// Collects `span` of each slot's audio.
async fn record(audio: &TopNAudio, span: Duration) -> Vec<Vec<i16>> {
    drain(audio);
    let mut pcm = vec![Vec::new(); audio.slots().len()];
    let end = Instant::now() + span;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
        for (all, new) in pcm.iter_mut().zip(drain(audio)) {
            all.extend(new);
        }
    }
    pcm
}

/// The tone each slot carries (slots with less than 0.5 s of sound left out).
fn tones_heard(pcm: &[Vec<i16>]) -> BTreeSet<u32> {
    pcm.iter()
        .filter(|samples| samples.len() >= 24_000 && huddle::media::rms_level(samples) > 0.001)
        .map(|samples| {
            let hz = common::tone_frequency(samples);
            // Snap to the nearest published tone, reporting what was heard.
            let nearest = TONES
                .iter()
                .min_by(|a, b| (*a - hz).abs().total_cmp(&(*b - hz).abs()))
                .copied()
                .unwrap_or_default();
            assert!(
                (nearest - hz).abs() < 15.0,
                "a slot carries {hz} Hz, none of the tones"
            );
            nearest as u32
        })
        .collect()
}

fn tone_set(indices: &[usize]) -> BTreeSet<u32> {
    indices.iter().map(|&i| TONES[i] as u32).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn top_n_subscriber_hears_the_three_loudest_and_follows_a_takeover() {
    let server = start_server().await;
    let levels: Vec<ToneLevel> = LEVELS.iter().map(|&l| ToneLevel::new(l)).collect();
    let mut talkers = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let (client, _) = join(&server, "top-n", &format!("talker{i}")).await;
        client
            .publish(talker(TONES[i], level))
            .await
            .expect("publish");
        talkers.push(client);
    }
    let (listener, _) = join(&server, "top-n", "listener").await;
    let audio = listener
        .enable_top_three_audio_mode(true)
        .await
        .expect("enable top-N")
        .expect("slots");
    assert_eq!(audio.slots().len(), 3);

    // The indicator settles on the three loudest, loudest first.
    let settled = wait_for(
        Duration::from_secs(15),
        "indicator ranks talkers 0, 1, 2",
        || {
            drain(&audio);
            latest_indicator(&listener).filter(|v| users_of(v) == ["talker0", "talker1", "talker2"])
        },
    )
    .await;
    assert!(
        settled[0].volume > settled[1].volume && settled[1].volume > settled[2].volume,
        "volumes not ranked: {settled:?}"
    );
    // Each slot carries one of them; the quiet two are not heard.
    let pcm = record(&audio, Duration::from_millis(1500)).await;
    assert_eq!(
        tones_heard(&pcm),
        tone_set(&[0, 1, 2]),
        "slots carry the wrong talkers"
    );

    // Volume and mute act on what plays.
    assert!(audio.set_volume(101).is_err());
    audio.set_volume(50).expect("volume 50");
    let quieter = record(&audio, Duration::from_millis(600)).await;
    audio.mute(true);
    let muted = record(&audio, Duration::from_millis(600)).await;
    audio.mute(false);
    audio.set_volume(100).expect("volume 100");
    let loud = |pcm: &[Vec<i16>]| {
        pcm.iter()
            .map(|s| huddle::media::rms_level(s))
            .fold(0.0f32, f32::max)
    };
    let (full, half, none) = (loud(&pcm), loud(&quieter), loud(&muted));
    assert!(
        half < full * 0.7 && half > full * 0.3,
        "50 %: {half} vs {full}"
    );
    assert!(none < 1e-4, "muted slots still sound: {none}");

    // The quietest talker gets loud: it takes over from talker2.
    levels[4].set(1.0);
    let louder = Instant::now();
    let indicator = wait_for(Duration::from_secs(5), "talker4 in the indicator", || {
        drain(&audio);
        latest_indicator(&listener).filter(|v| users_of(v).contains(&"talker4".to_owned()))
    })
    .await;
    println!(
        "talker4 in the indicator {:?} after getting loud: {indicator:?}",
        louder.elapsed()
    );
    assert!(!users_of(&indicator).contains(&"talker2".to_owned()));
    // Once its smoothed level has caught up, the loudest leads.
    wait_for(Duration::from_secs(5), "talker4 ranked first", || {
        drain(&audio);
        latest_indicator(&listener).filter(|v| users_of(v) == ["talker4", "talker0", "talker1"])
    })
    .await;
    let pcm = record(&audio, Duration::from_millis(1500)).await;
    assert_eq!(
        tones_heard(&pcm),
        tone_set(&[0, 1, 4]),
        "slots did not follow"
    );

    // Off: the slots end.
    assert!(
        listener
            .enable_top_three_audio_mode(false)
            .await
            .expect("disable")
            .is_none()
    );
    assert!(audio.slots().iter().all(|s| s.is_ended()));
    for t in talkers {
        t.leave().await.ok();
    }
    listener.leave().await.ok();
}

#[tokio::test]
async fn bad_top_n_requests_are_refused_and_the_session_goes_on() {
    let server = start_server().await;
    let mut socket = RawSocket::connect(&server).await;
    // Before joining.
    socket
        .send(r#"{"id":2,"type":"enable-top-n-audio","enable":true}"#)
        .await;
    assert_eq!(
        expect_error(socket.recv().await),
        (Some(RequestId(2)), ErrorCode::InvalidOperation)
    );
    socket.joined("top-n-bad", "u").await;
    for (text, id, code) in [
        (
            r#"{"id":3,"type":"enable-top-n-audio","enable":"yes"}"#,
            3,
            ErrorCode::InvalidParameter,
        ),
        (
            r#"{"id":4,"type":"enable-top-n-audio"}"#,
            4,
            ErrorCode::InvalidParameter,
        ),
    ] {
        socket.send(text).await;
        assert_eq!(
            expect_error(socket.recv().await),
            (Some(RequestId(id)), code),
            "{text}"
        );
    }
    // Off while off: nothing to do.
    socket
        .send(r#"{"id":5,"type":"enable-top-n-audio","enable":false}"#)
        .await;
    assert!(matches!(
        socket.recv().await,
        ServerMessage::Reply {
            reply: Reply::Ok,
            ..
        }
    ));
    socket
        .send(r#"{"id":6,"type":"enable-top-n-audio","enable":true}"#)
        .await;
    let link_id = socket
        .recv_until(Duration::from_secs(10), "top-n-offer", |m| match m {
            ServerMessage::Reply {
                reply: Reply::TopNOffer { link_id, sdp },
                ..
            } => {
                assert_eq!(sdp.matches("m=audio").count(), 3, "three slots offered");
                Some(*link_id)
            }
            ServerMessage::Error(e) => panic!("enable refused: {e:?}"),
            _ => None,
        })
        .await;
    // Twice.
    socket
        .send(r#"{"id":7,"type":"enable-top-n-audio","enable":true}"#)
        .await;
    assert_eq!(
        expect_error(socket.recv().await),
        (Some(RequestId(7)), ErrorCode::InvalidOperation)
    );
    // A garbage answer to the top-N link.
    socket
        .send(&format!(
            r#"{{"id":8,"type":"answer","linkId":{},"sdp":"v=0 nonsense"}}"#,
            link_id.0
        ))
        .await;
    let (id, code) = expect_error(socket.recv().await);
    assert_eq!(id, Some(RequestId(8)));
    assert_ne!(
        code,
        ErrorCode::InvalidOperation,
        "the answer reached the link"
    );
    // The session carries on and can switch it off.
    socket.ping(9).await;
    socket
        .send(r#"{"id":10,"type":"enable-top-n-audio","enable":false}"#)
        .await;
    assert!(matches!(
        socket.recv().await,
        ServerMessage::Reply {
            reply: Reply::Ok,
            ..
        }
    ));
}

/// A port on 127.0.0.1 held for the whole test, for two servers in turn
/// (as in `sdk_reconnects.rs`: `SO_REUSEADDR`, never listening).
fn reserve_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("local addr");
    (socket, addr)
}

struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        self.0.kill().ok(); // already gone: fine
        self.0.wait().ok();
    }
}

/// `huddle serve` on `addr`, once it accepts connections.
async fn serve(addr: std::net::SocketAddr) -> Serve {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_huddle"))
        .args([
            "serve",
            "--listen",
            &addr.to_string(),
            "--app-id",
            common::APP_ID,
            "--app-key",
            common::APP_KEY,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start huddle serve");
    let serve = Serve(child);
    wait_for(Duration::from_secs(30), "huddle serve listening", || {
        std::net::TcpStream::connect(addr).ok().map(|_| ())
    })
    .await;
    serve
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn top_n_audio_comes_back_on_the_same_slots_after_a_server_restart() {
    let (_port, addr) = reserve_port();
    let url = format!("ws://{addr}");
    let mut server = serve(addr).await;
    let config = |user: &str| huddle::client::JoinConfig {
        server_url: url.clone(),
        app_id: huddle::protocol::AppId(common::APP_ID.into()),
        room_id: huddle::protocol::RoomId("top-n-restart".into()),
        user_id: huddle::protocol::UserId(user.into()),
        user_name: String::new(),
        role: huddle::protocol::Role::Joiner,
        credential: huddle::client::Credential::AppKey {
            key: common::APP_KEY.into(),
            valid_for: Duration::from_secs(3600),
        },
        decode: true,
        reconnect_window: Duration::from_secs(30),
    };
    let level = ToneLevel::new(0.5);
    let talker_client = Client::new();
    talker_client.join(config("talker")).await.expect("join");
    talker_client
        .publish(talker(TONES[1], &level))
        .await
        .expect("publish");
    let listener = Client::new();
    listener.join(config("listener")).await.expect("join");
    let audio = listener
        .enable_top_three_audio_mode(true)
        .await
        .expect("enable")
        .expect("slots");
    let pcm = record(&audio, Duration::from_millis(1500)).await;
    assert_eq!(tones_heard(&pcm), tone_set(&[1]), "before the restart");

    server.0.kill().expect("kill -9 the server");
    server.0.wait().ok();
    tokio::time::sleep(Duration::from_secs(1)).await; // down for a while
    // Indicators from before the kill do not count.
    while listener.events().try_recv().is_ok() {}
    server = serve(addr).await;
    // The same slots carry the talker again, and the indicator is back.
    wait_for(
        Duration::from_secs(30),
        "the indicator after the restart",
        || {
            drain(&audio);
            latest_indicator(&listener).filter(|v| users_of(v) == ["talker"])
        },
    )
    .await;
    let pcm = record(&audio, Duration::from_millis(1500)).await;
    assert_eq!(tones_heard(&pcm), tone_set(&[1]), "after the restart");
    assert!(audio.slots().iter().all(|s| !s.is_ended()));
    drop(server);
}
