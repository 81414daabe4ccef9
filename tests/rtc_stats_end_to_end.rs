//! Issue 12 §3, seed 001 `getTransportStats`, `getLocalAudioStats`,
//! `getLocalVideoStats`, `getRemoteAudioStats`, `getRemoteVideoStats`,
//! `enableRtcStats` and `rtc-stats`, over real links.
//!
//! * A publisher (360p_2: 480x360 at 15 fps, Opus) and a subscriber in one
//!   room. Over the same 4 s window the subscriber receives as many video
//!   packets as the publisher sent (within 10 % or 5 packets: packets in flight at either
//!   end of the window, a retransmission counted twice); the frame rates are
//!   within 15 fps ± 50 % at both ends; the sizes are the profile's; bytes,
//!   bit rates and the RTT are nonzero; `rtc-stats` comes to the subscriber
//!   (who enabled it) and never to the publisher (off by default); an
//!   interval outside 200 ms – 60 s is 90000005 and changes nothing.
//! * Under loss: the subscriber receives through a TURN relay (coturn)
//!   behind a UDP proxy that drops every RTP packet whose sequence number is
//!   a multiple of 10, retransmissions included (RTX packets too: the same
//!   injection as `rtcp_stats_under_loss_and_delay.rs`): its video loss rate is 10 % ± 3
//!   points where the clean run's is under 1 %.
//! * `network-quality` (issue 10 §4): on the clean loopback the publisher's
//!   uplink and the subscriber's downlink are 1 or 2 and the directions with
//!   no media 0; under the 10 % loss the subscriber's downlink is 3–5.
//! * `huddle bot --json --rtc-stats-ms 500` prints the same statistics
//!   (`stats` lines) and the event (`rtc-stats` lines) under the seed's
//!   names; `--rtc-stats-ms 50` is refused.
//!
//! The loss test calls `common::skip` without `turnserver` (Debian package
//! `coturn`, installed by `.ci/setup.sh`).
#![cfg(feature = "client")]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::coturn::Coturn;
use common::lossy_turn::{LossyTurnProxy, rtp_payload_type};
use common::*;
use huddle::client::{
    Client, ErrorCode, RemoteVideoStats, RoomEvent, StatsReport, SubscribeOptions, TurnConfig,
};
use huddle::link::testing::rtp_seq;
use huddle::protocol::{Role, StreamId, UserId};

const PROFILE_FPS: f64 = 15.0;
const PROFILE_SIZE: (u32, u32) = (480, 360);
const DROP_EVERY: u16 = 10;

/// The one remote video entry a subscriber sees from `publisher`.
fn remote_video(report: &StatsReport, publisher: &str) -> Option<RemoteVideoStats> {
    report
        .remote_video
        .get(&UserId(publisher.into()))
        .and_then(|all| all.main_stream.first().copied())
}

/// The next `network-quality` event of `client` that `pick` accepts, as
/// (uplink, downlink) seed codes.
async fn quality_where(client: &Client, what: &str, pick: impl Fn(u8, u8) -> bool) -> (u8, u8) {
    wait_event(client, Duration::from_secs(12), what, |e| match e {
        RoomEvent::NetworkQuality { uplink, downlink } if pick(uplink.code(), downlink.code()) => {
            Some((uplink.code(), downlink.code()))
        }
        _ => None,
    })
    .await
}

/// Publisher and subscriber in `room`; the subscriber (with `turn`) has
/// subscribed and decoded video. Returns (publisher, subscriber, stream).
async fn room_with_video(
    server: &TestServer,
    room: &str,
    turn: Option<TurnConfig>,
    first_frames_within: Duration,
) -> (Client, Client, StreamId) {
    let (publisher, _) = join(server, room, "pub").await;
    let subscriber = Client::new();
    if let Some(turn) = turn {
        subscriber
            .set_turn_server(turn)
            .await
            .expect("set_turn_server");
    }
    subscriber
        .join(join_config(server, room, "sub", Role::Joiner))
        .await
        .expect("join");
    let stream_id = publisher.publish(synthetic(440.0)).await.expect("publish");
    wait_event(&subscriber, Duration::from_secs(10), "stream-added", |e| {
        matches!(e, RoomEvent::StreamAdded(s) if s.stream_id == stream_id).then_some(())
    })
    .await;
    let remote = subscriber
        .subscribe(stream_id, SubscribeOptions::default())
        .await
        .expect("subscribe");
    wait_for(first_frames_within, "30 decoded frames", || {
        (remote.stats().frames_decoded >= 30).then_some(())
    })
    .await;
    (publisher, subscriber, stream_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statistics_match_between_publisher_and_subscriber() {
    tokio::time::timeout(Duration::from_secs(90), clean_run())
        .await
        .expect("test timed out");
}

async fn clean_run() {
    let server = start_server().await;
    let (publisher, subscriber, stream_id) =
        room_with_video(&server, "stats", None, Duration::from_secs(20)).await;

    // network-quality: a clean loopback is excellent or good where media
    // flows, unknown where none does (the subscriber publishes nothing, the
    // publisher subscribes to nothing).
    let (up, down) = quality_where(&publisher, "the publisher's uplink", |up, _| up != 0).await;
    assert!(
        (1..=2).contains(&up) && down == 0,
        "publisher: up {up} down {down}"
    );
    let (up, down) = quality_where(&subscriber, "the subscriber's downlink", |_, down| {
        down != 0
    })
    .await;
    assert!(
        up == 0 && (1..=2).contains(&down),
        "subscriber: up {up} down {down}"
    );

    // Bad input: refused with its number, nothing changes.
    for bad in [Duration::from_millis(50), Duration::from_secs(61)] {
        let err = subscriber
            .enable_rtc_stats(true, bad)
            .await
            .expect_err("interval out of range");
        assert_eq!(err.code(), ErrorCode::InvalidParameter, "{err}");
    }
    subscriber
        .enable_rtc_stats(true, Duration::from_millis(500))
        .await
        .expect("enable rtc-stats");

    // One window, read at both ends back to back.
    let window = Duration::from_secs(4);
    let pub_before = publisher.stats_report().await.expect("publisher stats");
    let sub_before = subscriber.stats_report().await.expect("subscriber stats");
    tokio::time::sleep(window).await; // the measurement window itself
    let pub_after = publisher.stats_report().await.expect("publisher stats");
    let sub_after = subscriber.stats_report().await.expect("subscriber stats");
    eprintln!(
        "publisher: {}\nsubscriber: {}",
        serde_json::to_string(&pub_after).expect("json"),
        serde_json::to_string(&sub_after).expect("json")
    );

    let me = UserId("pub".into());
    let local_video = |r: &StatsReport| {
        r.local_video
            .get(&me)
            .and_then(|all| all.main_stream.first().copied())
            .expect("a local video entry")
    };
    let (lv0, lv1) = (local_video(&pub_before), local_video(&pub_after));
    let (rv0, rv1) = (
        remote_video(&sub_before, "pub").expect("a remote video entry"),
        remote_video(&sub_after, "pub").expect("a remote video entry"),
    );
    assert_eq!(lv1.stream_id, stream_id.0);
    assert_eq!(rv1.stream_id, stream_id.0);

    // Packets: what was sent in the window arrived in it.
    let sent = lv1.packets_sent - lv0.packets_sent;
    let received = rv1.packets_received - rv0.packets_received;
    // About one packet per frame: the synthetic pattern compresses well.
    assert!(sent >= 30, "only {sent} video packets sent in {window:?}");
    let slack = (sent / 10).max(5);
    assert!(
        received.abs_diff(sent) <= slack,
        "sent {sent} video packets, received {received} (± {slack})"
    );
    assert!(lv1.bytes_sent > lv0.bytes_sent && rv1.bytes_received > rv0.bytes_received);
    let bytes_ratio =
        (rv1.bytes_received - rv0.bytes_received) as f64 / (lv1.bytes_sent - lv0.bytes_sent) as f64;
    assert!(
        (0.8..=1.2).contains(&bytes_ratio),
        "bytes received / sent over the window: {bytes_ratio}"
    );

    // Frames and sizes: the profile's, at both ends.
    let fps = PROFILE_FPS * 0.5..=PROFILE_FPS * 1.5;
    assert!(
        fps.contains(&lv1.frame_rate),
        "sent at {} fps",
        lv1.frame_rate
    );
    assert!(
        fps.contains(&rv1.frame_rate),
        "decoded at {} fps",
        rv1.frame_rate
    );
    assert_eq!((lv1.frame_width, lv1.frame_height), PROFILE_SIZE);
    assert_eq!((rv1.frame_width, rv1.frame_height), PROFILE_SIZE);
    assert!(lv1.frames_encoded >= lv1.frames_sent && lv1.frames_sent > lv0.frames_sent);
    let decoded = rv1.frames_decoded - rv0.frames_decoded;
    assert!(
        decoded as f64 >= PROFILE_FPS * 0.5 * window.as_secs_f64(),
        "{decoded} frames decoded in {window:?}"
    );
    assert!(lv1.bitrate > 50.0 && rv1.bitrate > 50.0, "{lv1:?} {rv1:?}");
    assert!(rv1.pkt_loss_rate < 0.01, "loss on loopback: {rv1:?}");

    // Audio at both ends.
    let la = pub_after.local_audio.get(&me).expect("local audio");
    let ra = sub_after
        .remote_audio
        .get(&me)
        .expect("remote audio from pub");
    assert!(
        la.packets_sent > 0 && la.bytes_sent > 0 && la.bitrate > 0.0,
        "{la:?}"
    );
    assert!(ra.packets_received > 0 && ra.bitrate > 0.0, "{ra:?}");
    // Opus (RTP included) is tens of kbit/s, not hundreds.
    assert!((8.0..300.0).contains(&ra.bitrate), "{ra:?}");

    // Transport: bytes both ways, an RTT for the publisher (RTCP), rates.
    let t = pub_after.transport;
    assert!(
        t.bytes_sent > 0 && t.bytes_received > 0 && t.send_bitrate > 50.0,
        "{t:?}"
    );
    let rtt = t.rtt.expect("an RTT from RTCP");
    assert!((0.0..200.0).contains(&rtt), "RTT {rtt} ms on loopback");
    assert!(t.target_bitrate.is_some_and(|k| k > 0.0), "{t:?}");
    let t = sub_after.transport;
    assert!(t.bytes_received > 0 && t.recv_bitrate > 50.0, "{t:?}");

    // rtc-stats: the subscriber's carries the remote video it receives.
    let info = wait_event(
        &subscriber,
        Duration::from_secs(5),
        "rtc-stats",
        |e| match e {
            RoomEvent::RtcStats(infos) => infos
                .iter()
                .find(|i| i.is_remote && i.media_type == huddle::client::MediaType::Video)
                .cloned(),
            _ => None,
        },
    )
    .await;
    assert_eq!(info.user_id, me);
    assert_eq!(info.user_name, "pub (test)");
    assert!(
        info.bitrate > 0.0 && fps.contains(&info.frame_rate),
        "{info:?}"
    );
    // Off by default: the publisher never enabled it.
    while let Ok(event) = publisher.events().try_recv() {
        assert!(
            !matches!(event, RoomEvent::RtcStats(_)),
            "rtc-stats without enableRtcStats"
        );
    }
    // And off again when disabled.
    subscriber
        .enable_rtc_stats(false, Duration::ZERO)
        .await
        .expect("disable");
    while subscriber.events().try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(1200)).await; // over two intervals
    while let Ok(event) = subscriber.events().try_recv() {
        assert!(
            !matches!(event, RoomEvent::RtcStats(_)),
            "rtc-stats after disabling"
        );
    }
    publisher.leave().await.ok();
    subscriber.leave().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loss_between_the_server_and_a_subscriber_shows_in_its_loss_rate() {
    let Some(coturn) = Coturn::start("rtc_stats_end_to_end") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(120), lossy_run(&coturn))
        .await
        .expect("test timed out");
}

async fn lossy_run(coturn: &Coturn) {
    let proxy = LossyTurnProxy::start(coturn.port, lossy).await;
    let server = start_server().await;
    let turn = proxy.relay_only();
    let (publisher, subscriber, _) = room_with_video(
        &server,
        "lossy",
        Some(turn),
        // Every 10th packet lost, resends included: the first keyframes
        // need several rounds of NACKs and PLIs, and the first 30 frames
        // took from about 5 s to over 20 s in repeated runs (a slow start
        // under loss, issue 10 §3). What this test checks is the loss
        // rate once video flows.
        Duration::from_secs(60),
    )
    .await;
    // network-quality: 10 % loss is graded poor or worse (4, "bad", by the
    // table in `client::network_quality`) on the subscriber's downlink.
    let (_, down) = quality_where(&subscriber, "a lossy downlink", |_, down| down != 0).await;
    let (_, down_next) = quality_where(&subscriber, "a lossy downlink", |_, down| down != 0).await;
    eprintln!("lossy downlink quality: {down}, then {down_next}");
    assert!(
        (3..=5).contains(&down_next),
        "downlink {down_next} under 10 % loss"
    );
    let before = subscriber.stats_report().await.expect("stats");
    tokio::time::sleep(Duration::from_secs(4)).await; // the measurement window
    let after = subscriber.stats_report().await.expect("stats");
    let rv0 = remote_video(&before, "pub").expect("remote video");
    let rv = remote_video(&after, "pub").expect("remote video");
    eprintln!(
        "subscriber: {}\nproxy dropped {} RTP packets",
        serde_json::to_string(&after).expect("json"),
        proxy.dropped.load(Ordering::Relaxed)
    );
    assert!(
        proxy.dropped.load(Ordering::Relaxed) > 0,
        "the proxy dropped nothing"
    );
    assert!(
        (0.07..=0.13).contains(&rv.pkt_loss_rate),
        "video loss rate {} with 1 packet in {DROP_EVERY} dropped",
        rv.pkt_loss_rate
    );
    assert!(rv.packets_lost > rv0.packets_lost, "{rv0:?} -> {rv:?}");
    let ra = after
        .remote_audio
        .get(&UserId("pub".into()))
        .expect("audio");
    assert!((0.07..=0.13).contains(&ra.pkt_loss_rate), "{ra:?}");
    // The event says the same.
    subscriber
        .enable_rtc_stats(true, Duration::from_millis(500))
        .await
        .expect("enable");
    let info = wait_event(
        &subscriber,
        Duration::from_secs(5),
        "rtc-stats",
        |e| match e {
            RoomEvent::RtcStats(infos) => infos
                .iter()
                .find(|i| i.is_remote && i.media_type == huddle::client::MediaType::Video)
                .cloned(),
            _ => None,
        },
    )
    .await;
    assert!(info.pkt_loss_rate >= 0.07, "{info:?}");
    publisher.leave().await.ok();
    subscriber.leave().await.ok();
}

/// The loss injected on the subscriber's relayed downlink: every RTP packet
/// whose sequence number is a multiple of [`DROP_EVERY`] and, so that its
/// retransmissions are lost too, every RTX packet (RFC 4588: a resend on its
/// own stream, whose original sequence number is encrypted).
fn lossy(rtp: &[u8]) -> bool {
    rtp_seq(rtp).is_some_and(|s| s % DROP_EVERY == 0)
        || rtp_payload_type(rtp) == Some(huddle::link::rtx::RTX_PAYLOAD_TYPE)
}

/// `huddle bot --subscribe --json --rtc-stats-ms 500`: its `stats` lines
/// carry the SDK's statistics under the seed's names, and its `rtc-stats`
/// lines the event; an interval out of range is refused at the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bot_prints_the_seed_statistics() {
    tokio::time::timeout(Duration::from_secs(90), bot_run())
        .await
        .expect("test timed out");
}

async fn bot_run() {
    let huddle = env!("CARGO_BIN_EXE_huddle");
    let bad = tokio::process::Command::new(huddle)
        .args(["bot", "--room", "r", "--user", "u", "--app-id", APP_ID])
        .args(["--app-key", APP_KEY, "--subscribe", "--rtc-stats-ms", "50"])
        .output()
        .await
        .expect("run huddle bot");
    assert!(!bad.status.success(), "--rtc-stats-ms 50 accepted");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("--rtc-stats-ms"), "{stderr}");

    let server = start_server().await;
    let (publisher, _) = join(&server, "bot-stats", "pub").await;
    publisher.publish(synthetic(440.0)).await.expect("publish");
    let out = tokio::process::Command::new(huddle)
        .args([
            "bot",
            "--server",
            &server.url,
            "--room",
            "bot-stats",
            "--user",
            "watcher",
        ])
        .args(["--app-id", APP_ID, "--app-key", APP_KEY])
        .args([
            "--subscribe",
            "--json",
            "--rtc-stats-ms",
            "500",
            "--duration",
            "6",
        ])
        .output()
        .await
        .expect("run huddle bot");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bot failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last_stats = lines
        .iter()
        .rev()
        .find(|l| l["event"] == "stats")
        .unwrap_or_else(|| panic!("no stats line in {stdout}"));
    let video = &last_stats["remoteVideo"]["pub"]["mainStream"][0];
    assert!(
        video["packetsReceived"].as_u64().unwrap_or(0) > 0,
        "{last_stats}"
    );
    assert!(
        video["framesDecoded"].as_u64().unwrap_or(0) > 0,
        "{last_stats}"
    );
    assert_eq!(video["frameWidth"], 480, "{last_stats}");
    assert_eq!(video["frameHeight"], 360, "{last_stats}");
    for key in [
        "bytesReceived",
        "packetsLost",
        "pktLossRate",
        "frameRate",
        "bitrate",
    ] {
        assert!(video.get(key).is_some(), "{key} missing: {last_stats}");
    }
    let audio = &last_stats["remoteAudio"]["pub"];
    assert!(
        audio["packetsReceived"].as_u64().unwrap_or(0) > 0,
        "{last_stats}"
    );
    let transport = &last_stats["transport"];
    assert!(
        transport["bytesReceived"].as_u64().unwrap_or(0) > 0,
        "{last_stats}"
    );
    assert!(transport.get("recvBitrate").is_some(), "{last_stats}");
    let rtc = lines
        .iter()
        .filter(|l| l["event"] == "rtc-stats")
        .flat_map(|l| l["stats"].as_array().cloned().unwrap_or_default())
        .find(|s| {
            s["isRemote"] == true
                && s["mediaType"] == "video"
                && s["frameRate"].as_f64().unwrap_or(0.0) > 0.0
        })
        .unwrap_or_else(|| panic!("no rtc-stats line with remote video in {stdout}"));
    assert_eq!(rtc["userId"], "pub");
    let quality = lines
        .iter()
        .rev()
        .find(|l| l["event"] == "network-quality" && l["downlinkNetworkQuality"] != 0)
        .unwrap_or_else(|| panic!("no network-quality line with a known downlink in {stdout}"));
    assert_eq!(quality["uplinkNetworkQuality"], 0, "{quality}");
    let down = quality["downlinkNetworkQuality"].as_u64().unwrap_or(0);
    assert!((1..=2).contains(&down), "{quality}");
    assert_eq!(rtc["streamType"], "main");
    assert!(
        rtc.get("pktLossRate").is_some() && rtc.get("jitter").is_some(),
        "{rtc}"
    );
    publisher.leave().await.ok();
}
