//! Issue 10 §3: the publisher's Opus in-band FEC follows its subscribers'
//! loss (`downlink-loss`, docs/protocol.md §6), over real links.
//!
//! A publisher (synthetic 440 Hz tone, Opus) and a clean subscriber on
//! loopback: the publisher's `audio_expected_loss_percent` (SendRateStats)
//! stays at or under the fixed default (10 %). A second subscriber receives
//! through a TURN relay (coturn) behind a UDP proxy that drops every relayed
//! RTP packet whose sequence number is a multiple of 5, resends included
//! (20 % of its audio): the worst subscriber's loss reaches the publisher and
//! its expected loss rises to 15 % or more. When that subscriber leaves, its
//! reports go stale and the expected loss falls back to 10 % or less. The
//! bounds for absurd values (a `downlink-loss` of 255, NaN uplink loss) are
//! unit tests in `client::audio_fec`.
//!
//! Calls `common::skip` without `turnserver` (Debian package `coturn`).
#![cfg(feature = "client")]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::coturn::Coturn;
use common::lossy_turn::LossyTurnProxy;
use common::*;
use huddle::client::{Client, RoomEvent, SubscribeOptions};
use huddle::link::testing::rtp_seq;
use huddle::protocol::{Role, StreamId};

/// One relayed RTP packet in this many is dropped (20 %).
const DROP_EVERY: u16 = 5;

/// Polls the publisher's expected loss until `pick` accepts it.
async fn expected_loss_where(
    publisher: &Client,
    stream: StreamId,
    within: Duration,
    what: &str,
    pick: impl Fn(u8) -> bool,
) -> u8 {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let rate = publisher.send_rate(stream).await.expect("send_rate");
        let loss = rate.audio_expected_loss_percent;
        if seen.last() != Some(&loss) {
            seen.push(loss);
        }
        if pick(loss) {
            return loss;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; expected loss went {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn subscribe(subscriber: &Client, stream: StreamId) {
    subscriber
        .subscribe(stream, SubscribeOptions::default())
        .await
        .expect("subscribe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lossy_subscriber_raises_the_publishers_opus_expected_loss() {
    let Some(coturn) = Coturn::start("opus_fec_follows_subscriber_loss") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(120), run(&coturn))
        .await
        .expect("test timed out");
}

async fn run(coturn: &Coturn) {
    let proxy = LossyTurnProxy::start(coturn.port, every_fifth).await;
    let server = start_server().await;
    let (publisher, _) = join(&server, "fec", "pub").await;
    let (clean, _) = join(&server, "fec", "clean").await;
    let stream = publisher.publish(synthetic(440.0)).await.expect("publish");
    wait_event(&clean, Duration::from_secs(10), "stream-added", |e| {
        matches!(e, RoomEvent::StreamAdded(s) if s.stream_id == stream).then_some(())
    })
    .await;
    subscribe(&clean, stream).await;
    // A clean path: nothing raises it (receiver reports come about once a
    // second; give several).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let clean_loss =
        expected_loss_where(&publisher, stream, Duration::from_secs(1), "", |_| true).await;
    eprintln!("expected loss with a clean subscriber: {clean_loss} %");
    assert!(clean_loss <= 10, "clean subscriber: {clean_loss} %");

    let lossy = Client::new();
    lossy
        .set_turn_server(proxy.relay_only())
        .await
        .expect("set_turn_server");
    lossy
        .join(join_config(&server, "fec", "lossy", Role::Joiner))
        .await
        .expect("join");
    subscribe(&lossy, stream).await;
    let raised = expected_loss_where(
        &publisher,
        stream,
        Duration::from_secs(30),
        "the lossy subscriber's 20 % to reach the publisher",
        |l| l >= 15,
    )
    .await;
    eprintln!(
        "expected loss with a subscriber behind 20 % loss: {raised} % (proxy dropped {})",
        proxy.dropped.load(Ordering::Relaxed)
    );
    assert!(
        proxy.dropped.load(Ordering::Relaxed) > 0,
        "the proxy dropped nothing"
    );

    // The lossy subscriber leaves: its reports go stale (5 s), the worst is
    // the clean one again.
    lossy.leave().await.ok();
    let after = expected_loss_where(
        &publisher,
        stream,
        Duration::from_secs(20),
        "the expected loss to fall back once the lossy subscriber left",
        |l| l <= 10,
    )
    .await;
    eprintln!("expected loss after the lossy subscriber left: {after} %");
    publisher.leave().await.ok();
    clean.leave().await.ok();
}

/// Every relayed RTP packet whose sequence number is a multiple of
/// [`DROP_EVERY`] (as in `rtc_stats_end_to_end.rs`).
fn every_fifth(rtp: &[u8]) -> bool {
    rtp_seq(rtp).is_some_and(|s| s % DROP_EVERY == 0)
}
