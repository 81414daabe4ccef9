//! `auto` on a layered stream whose lower layers nobody watched (issue 10
//! §2, the failure that got the first `layers-wanted` change reverted): a
//! subscriber behind a capped path goes `auto` after the publisher was told
//! that only its top layer is wanted and stopped encoding the others. It must
//! get a lower layer's frames within a bounded time. (When `auto` counted
//! only its current and target layer, the lower layers stayed unencoded, had
//! no measured rate, and `auto` paused the video instead: nothing arrived.)
//!
//! The publisher here is the test: it sends three layers' worth of RTP
//! (1.2 Mbit/s, 200 kbit/s, 50 kbit/s at 15 fps) into the hub, only the
//! layers the last `layers-wanted` named (from the real announcer), each
//! restarted with a keyframe, as the SDK does (`client::layers`). The
//! subscriber is a real webrtc-rs peer behind a UDP proxy that polices what
//! the hub sends it to [`CAP_BPS`] (a token bucket, what does not fit is
//! dropped), so its receiver reports show the loss `auto` acts on.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rtc::rtp::{Header, Packet};
use tokio::net::UdpSocket;
use webrtc::media_stream::track_remote::TrackRemoteEvent;

use super::tests::{create_video_leg, until_both_connected};
use super::{Hub, LayerTarget};
use crate::link::testing::{candidate_port, rtp_seq, with_candidate_port};
use crate::link::{LinkSignal, PeerLink};
use crate::protocol::{Event, ServerMessage, StreamId};
use crate::server::inbox::{SessionEvent, SessionInbox};
use crate::server::metrics::Metrics;
use crate::server::sfu::{IngressPacket, PublishedMedia};

/// What the proxy lets through to the subscriber, bit/s.
const CAP_BPS: f64 = 400_000.0;
/// The proxy's bucket, bytes (`tc tbf`'s burst in `benches/simulcast.sh`).
const BURST_BYTES: f64 = 15_000.0;
/// Payload bytes per picture of each layer at 15 fps: 1.2 Mbit/s,
/// 200 kbit/s, 50 kbit/s.
const PICTURE_BYTES: [usize; 3] = [10_000, 1_666, 416];
/// Payload bytes per RTP packet at most.
const PACKET_BYTES: usize = 1_000;
/// A keyframe every this many pictures (and at each layer's restart).
const KEYFRAME_EVERY: u64 = 30;
/// How long the capped `auto` subscriber may wait for a lower layer's
/// pictures: its first receiver reports (one a second) show the loss, the
/// next decides (one report after a change is not trusted), then the
/// smaller layer's keyframe. Seconds, with room for a loaded machine.
const LOWER_LAYER_WITHIN: Duration = Duration::from_secs(20);

/// Feeds the pictures of the layers `encoded` names (bit `n`: slot `n`),
/// 15 a second, the smaller layers of a capture first (as a publisher's
/// encoders finish them), each picture stamped with its capture number so
/// the hub can tell captures apart. A layer (re)starts with a keyframe. The
/// payload's second byte is the layer slot.
async fn publish(
    input: tokio::sync::mpsc::Sender<IngressPacket>,
    media: Arc<PublishedMedia>,
    encoded: Arc<AtomicU8>,
) {
    let mut seq = [0u16; 3];
    let mut was_encoded = 0u8;
    let mut tick = tokio::time::interval(Duration::from_micros(66_667));
    for capture in 1u64.. {
        tick.tick().await;
        let now_encoded = encoded.load(Ordering::Acquire);
        for slot in [2u8, 1, 0] {
            let bit = 1 << slot;
            if now_encoded & bit == 0 {
                continue;
            }
            let keyframe = was_encoded & bit == 0 || capture % KEYFRAME_EVERY == 0;
            let picture = PICTURE_BYTES[usize::from(slot)];
            let packets = picture.div_ceil(PACKET_BYTES);
            for n in 0..packets {
                let size = PACKET_BYTES.min(picture - n * PACKET_BYTES);
                let mut payload = vec![0x41u8; size.max(2)];
                if keyframe && n == 0 {
                    payload[0] = 0x65; // an IDR slice starts the picture
                }
                payload[1] = slot;
                let s = &mut seq[usize::from(slot)];
                *s = s.wrapping_add(1);
                let packet = Packet {
                    header: Header {
                        version: 2,
                        payload_type: 96,
                        sequence_number: *s,
                        timestamp: (capture * 6_000) as u32,
                        ssrc: 100 + u32::from(slot),
                        marker: n + 1 == packets,
                        ..Default::default()
                    },
                    payload: Bytes::from(payload),
                };
                media.count_layer_bytes(slot, 12 + size as u64);
                let sent = input
                    .send(IngressPacket {
                        media: media.id(),
                        video: true,
                        packet,
                        capture_ntp: capture,
                        layer: slot,
                        audio_level: None,
                    })
                    .await;
                if sent.is_err() {
                    return;
                }
            }
        }
        was_encoded = now_encoded;
    }
}

/// Keeps `encoded` at the layers the announcer's `layers-wanted` names (the
/// SDK's `on_layers_wanted`), counting the events in `told`.
async fn follow_layers_wanted(
    mut inbox: crate::server::inbox::SessionInboxReceiver,
    ids: Vec<String>,
    encoded: Arc<AtomicU8>,
    told: tokio::sync::watch::Sender<u8>,
) {
    while let Some(event) = inbox.events.recv().await {
        let SessionEvent::Send(message) = event else {
            continue;
        };
        if let ServerMessage::Event {
            event: Event::LayersWanted { resolution_ids, .. },
        } = *message
        {
            let mask = ids
                .iter()
                .enumerate()
                .filter(|(_, id)| resolution_ids.contains(id))
                .fold(0u8, |m, (slot, _)| m | 1 << slot);
            encoded.store(mask, Ordering::Release);
            told.send_replace(mask);
        }
    }
}

/// One direction of the proxy: `from` → `to` through `via`; RTP beyond
/// [`CAP_BPS`] (after [`BURST_BYTES`]) is dropped when `police`.
fn pump(
    from: Arc<UdpSocket>,
    via: Arc<UdpSocket>,
    to: SocketAddr,
    police: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut tokens = BURST_BYTES;
        let mut last = tokio::time::Instant::now();
        while let Ok((n, _)) = from.recv_from(&mut buf).await {
            let now = tokio::time::Instant::now();
            tokens =
                (tokens + now.duration_since(last).as_secs_f64() * CAP_BPS / 8.0).min(BURST_BYTES);
            last = now;
            if police && rtp_seq(&buf[..n]).is_some() {
                if tokens < n as f64 {
                    continue;
                }
                tokens -= n as f64;
            }
            via.send_to(&buf[..n], to).await.ok(); // test ending
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_auto_leg_gets_a_lower_layer_nobody_watched_before() {
    tokio::time::timeout(Duration::from_secs(60), run())
        .await
        .expect("the test ran over 60 s");
}

async fn run() {
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
    let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
    let ids: Vec<String> = ["360p", "180p", "90p"].map(String::from).into();
    media.set_layers(ids.clone());

    // The publisher: starts with every layer, then follows layers-wanted.
    let encoded = Arc::new(AtomicU8::new(0b111));
    let (told_tx, mut told) = tokio::sync::watch::channel(0b111u8);
    let (publisher_inbox, publisher_rx) = SessionInbox::new();
    let announcer = tokio::spawn(crate::server::sfu::wanted::announce(
        Arc::clone(&media),
        StreamId(1),
        publisher_inbox,
    ));
    let follower = tokio::spawn(follow_layers_wanted(
        publisher_rx,
        ids,
        Arc::clone(&encoded),
        told_tx,
    ));
    let feeder = tokio::spawn(publish(
        hub.media_input(),
        Arc::clone(&media),
        Arc::clone(&encoded),
    ));

    // The subscriber, behind the capped path.
    let (leg, offer, mut leg_inbox) = create_video_leg(&hub, &media, &metrics, 1, false).await;
    let hub_addr = SocketAddr::new(ip, candidate_port(&offer));
    let facing_sub = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let facing_hub = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let (sub, mut signals) = PeerLink::new(ip).await.expect("subscriber");
    let port = |s: &UdpSocket| s.local_addr().expect("addr").port();
    let answer = sub
        .answer(with_candidate_port(&offer, port(&facing_sub)))
        .await
        .expect("answer");
    let sub_addr = SocketAddr::new(ip, candidate_port(&answer));
    let proxy = [
        pump(
            Arc::clone(&facing_hub),
            Arc::clone(&facing_sub),
            sub_addr,
            true,
        ),
        pump(
            Arc::clone(&facing_sub),
            Arc::clone(&facing_hub),
            hub_addr,
            false,
        ),
    ];
    hub.apply_answer(leg, with_candidate_port(&answer, port(&facing_hub)))
        .await
        .expect("apply answer");
    until_both_connected(&mut leg_inbox, &mut signals).await;

    // Nobody watches the lower layers: the publisher hears it and stops them.
    tokio::time::timeout(Duration::from_secs(10), told.wait_for(|m| *m == 0b001))
        .await
        .expect("layers-wanted naming the top layer only within 10 s")
        .expect("announcer running");

    let track = loop {
        match signals.recv().await {
            Some(LinkSignal::Track(track)) => break track,
            Some(_) => {}
            None => panic!("subscriber closed before a track arrived"),
        }
    };
    hub.set_layer(leg, LayerTarget::Auto(0));
    let went_auto = tokio::time::Instant::now();
    // Count the lower layers' complete pictures (marker packets) that come
    // through, until a second's worth arrived.
    let mut lower_pictures = 0;
    let mut first_lower = None;
    let deadline = went_auto + LOWER_LAYER_WITHIN;
    while lower_pictures < 15 {
        let event = tokio::time::timeout_at(deadline, track.poll()).await;
        let Ok(Some(event)) = event else {
            panic!(
                "{lower_pictures} pictures of a lower layer within {LOWER_LAYER_WITHIN:?} of \
                 going auto behind {CAP_BPS} bit/s (publisher told {:#05b}, layer bytes {:?})",
                *told.borrow(),
                media.layer_bytes(),
            );
        };
        if let TrackRemoteEvent::OnRtpPacket(p) = event
            && p.payload.get(1).is_some_and(|&slot| slot > 0)
        {
            first_lower.get_or_insert_with(|| went_auto.elapsed());
            lower_pictures += usize::from(p.header.marker);
        }
    }
    eprintln!(
        "first lower-layer packet {:?} after going auto; publisher told {:#05b}",
        first_lower,
        *told.borrow()
    );
    assert_ne!(
        *told.borrow() & 0b110,
        0,
        "the publisher was told a lower layer is wanted"
    );

    hub.close(leg).await;
    for task in proxy {
        task.abort();
    }
    feeder.abort();
    announcer.abort();
    follower.abort();
    sub.close().await;
}
