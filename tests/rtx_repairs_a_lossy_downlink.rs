//! Issue 10 §3: NACK with retransmission on its own stream (RTX, RFC 4588),
//! end to end on the downlink.
//!
//! A publisher (synthetic video and audio) and a subscriber that receives
//! through a TURN relay (coturn) behind a UDP proxy dropping every H.264
//! packet whose sequence number is a multiple of 5 (20 %): the originals only, as
//! a repair travels on the RTX stream with a payload type and sequence
//! numbers of its own. The subscriber's SDK accepts RTX
//! (`PeerLink::subscriber`), so the server's hub resends as RTX packets, the
//! subscriber puts them back in the stream and decodes on: over a 4 s window
//! RTX repairs arrive (`rtxPacketsReceived` grows by at least half of what
//! the proxy dropped), frames keep decoding at no less than half the
//! profile's rate, and the video loss rate left after repair is under 3 %
//! (with every tenth packet and its resends dropped it is 10 % ± 3:
//! `rtc_stats_end_to_end.rs`).
//!
//! Calls `common::skip` without `turnserver` (Debian package `coturn`).
#![cfg(feature = "client")]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::coturn::Coturn;
use common::lossy_turn::{LossyTurnProxy, rtp_payload_type};
use common::*;
use huddle::client::{Client, RemoteVideoStats, RoomEvent, StatsReport, SubscribeOptions};
use huddle::link::H264_PAYLOAD_TYPE;
use huddle::link::testing::rtp_seq;
use huddle::protocol::{Role, UserId};

const DROP_EVERY: u16 = 5;

/// The originals of every fifth H.264 packet; RTX passes.
fn originals_only(rtp: &[u8]) -> bool {
    rtp_payload_type(rtp) == Some(H264_PAYLOAD_TYPE)
        && rtp_seq(rtp).is_some_and(|s| s % DROP_EVERY == 0)
}

fn remote_video(report: &StatsReport) -> RemoteVideoStats {
    report
        .remote_video
        .get(&UserId("pub".into()))
        .and_then(|all| all.main_stream.first().copied())
        .expect("remote video stats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rtx_repairs_a_lossy_downlink_and_video_decodes_on() {
    let Some(coturn) = Coturn::start("rtx_repairs_a_lossy_downlink") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(120), run(&coturn))
        .await
        .expect("test timed out");
}

async fn run(coturn: &Coturn) {
    let proxy = LossyTurnProxy::start(coturn.port, originals_only).await;
    let server = start_server().await;
    let (publisher, _) = join(&server, "rtx", "pub").await;
    let subscriber = Client::new();
    subscriber
        .set_turn_server(proxy.relay_only())
        .await
        .expect("set_turn_server");
    subscriber
        .join(join_config(&server, "rtx", "sub", Role::Joiner))
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
    wait_for(Duration::from_secs(30), "30 decoded frames", || {
        (remote.stats().frames_decoded >= 30).then_some(())
    })
    .await;

    let dropped_before = proxy.dropped.load(Ordering::Relaxed);
    let before = remote_video(&subscriber.stats_report().await.expect("stats"));
    tokio::time::sleep(Duration::from_secs(4)).await; // the measurement window
    let after = remote_video(&subscriber.stats_report().await.expect("stats"));
    let dropped = proxy.dropped.load(Ordering::Relaxed) - dropped_before;
    let rtx = after.rtx_packets_received - before.rtx_packets_received;
    let frames = after.frames_decoded - before.frames_decoded;
    eprintln!(
        "proxy dropped {dropped} originals; RTX repairs {rtx}, RTX dropped {}; \
         frames decoded {frames}; loss rate {:.3}; repaired {}; freezes {}",
        after.rtx_packets_dropped - before.rtx_packets_dropped,
        after.pkt_loss_rate,
        after.packets_repaired - before.packets_repaired,
        after.freeze_count,
    );
    assert!(dropped >= 5, "the proxy dropped {dropped} packets");
    assert!(
        rtx * 2 >= dropped,
        "{rtx} RTX repairs for {dropped} packets dropped: {after:?}"
    );
    assert!(
        after.packets_repaired > before.packets_repaired,
        "repairs reached the reorder buffer: {after:?}"
    );
    // The synthetic profile runs at 15 fps: at least half of it decodes.
    assert!(frames >= 30, "{frames} frames decoded in 4 s: {after:?}");
    assert!(
        after.pkt_loss_rate < 0.03,
        "loss left after RTX repairs: {after:?}"
    );
    publisher.leave().await.ok();
    subscriber.leave().await.ok();
}
