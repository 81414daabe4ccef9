//! The hub with real subscribers: webrtc-rs peer connections on loopback,
//! some behind a UDP proxy that drops or records what the hub sends.

use super::{CreateLeg, Hub, LegSource};
use crate::link::testing::{candidate_port, rtp_seq, with_candidate_port};
use crate::link::{LinkSignal, PeerLink};
use crate::protocol::LinkId;
use crate::server::inbox::{LinkState, SessionEvent, SessionInbox, SessionInboxReceiver};
use crate::server::metrics::Metrics;
use crate::server::sfu::{IngressPacket, PublishedMedia};
use bytes::Bytes;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtp::{Header, Packet};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;
use webrtc::media_stream::track_remote::TrackRemoteEvent;

/// RTP packets fed to the hub, 5 ms apart.
const PACKETS: u16 = 300;
/// The proxy drops the first copy of every packet whose sequence number is
/// a multiple of this; retransmissions pass.
const DROP_EVERY: u16 = 10;

/// Where a proxy copies the datagrams it passes that `wants` picks.
struct Recorder {
    wants: fn(&[u8]) -> bool,
    tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
}

/// Records SRTP datagrams.
fn srtp(tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>) -> Recorder {
    Recorder {
        wants: |d| rtp_seq(d).is_some(),
        tx,
    }
}

/// Reads on `from`, forwards from `via` to `to`; if `lossy`, drops the
/// first copy of every DROP_EVERY-th RTP packet, and if `lossy_rtx` every
/// fourth RTX packet (by its own sequence number) and delays what it passes
/// by [`LOSSY_RTX_DELAY`]. Every datagram `record` wants (if given) is also
/// sent to it.
fn pump(
    from: Arc<UdpSocket>,
    via: Arc<UdpSocket>,
    to: SocketAddr,
    (lossy, lossy_rtx): (bool, bool),
    dropped: Arc<AtomicU64>,
    record: Option<Recorder>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (delayed, mut due) =
            tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
        let writer = Arc::clone(&via);
        tokio::spawn(async move {
            while let Some((at, data)) = due.recv().await {
                tokio::time::sleep_until(at).await; // the injected delay
                writer.send_to(&data, to).await.ok(); // test ending
            }
        });
        let mut seen = HashSet::new();
        let mut buf = vec![0u8; 2048];
        while let Ok((n, _)) = from.recv_from(&mut buf).await {
            if let Some(record) = &record
                && (record.wants)(&buf[..n])
            {
                record.tx.send(buf[..n].to_vec()).ok(); // test over
            }
            // Retransmissions pass: a copy of the original (the same
            // number, seen before) or an RTX packet (its own numbers).
            let is_rtx = buf.get(1).map(|b| b & 0x7f) == Some(crate::link::rtx::RTX_PAYLOAD_TYPE);
            if lossy_rtx && is_rtx && rtp_seq(&buf[..n]).is_some_and(|seq| seq % 4 == 0) {
                continue;
            }
            if lossy
                && !is_rtx
                && let Some(seq) = rtp_seq(&buf[..n])
                && seq % DROP_EVERY == 0
                && seen.insert(seq)
            {
                dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if lossy_rtx {
                let at = tokio::time::Instant::now() + LOSSY_RTX_DELAY;
                delayed.send((at, buf[..n].to_vec())).ok(); // test ending
            } else {
                via.send_to(&buf[..n], to).await.ok(); // test ending
            }
        }
    })
}

/// One-way delay of a `lossy_rtx` proxy: a retry NACK comes a measured round
/// trip and a quarter after the first (`link::nack_generator`), well after
/// the hub's [`super::direct::RESEND_MIN_INTERVAL`]; on bare loopback both
/// are 20 ms, and a loaded machine made the hub refuse a retry as just
/// resent.
const LOSSY_RTX_DELAY: Duration = Duration::from_millis(30);

/// A subscriber behind a lossy path: the hub (sealing media itself)
/// resends what the path dropped, inbound datagrams reach the leg although
/// they come from an address the offer never named (demux by STUN ufrag /
/// by our own sends), and closing the leg releases its gauge.
///
/// This subscriber declines RTX (its answer has no `rtx` codec): the hub
/// resends the original packets, as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leg_behind_a_lossy_path_gets_every_packet_through_nack() {
    tokio::time::timeout(Duration::from_secs(30), lossy_leg(true, false))
        .await
        .expect("test timed out");
}

/// The same with a subscriber that accepts RTX (RFC 4588, `link::rtx`):
/// every resend goes out on the RTX stream the offer announced
/// (`ssrc-group:FID`), never as a copy of the original, and the subscriber
/// puts the repairs back in the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leg_behind_a_lossy_path_gets_every_packet_through_rtx() {
    tokio::time::timeout(Duration::from_secs(30), lossy_leg(true, true))
        .await
        .expect("test timed out");
}

/// The same with every fourth RTX packet lost too: a packet whose RTX
/// resend was lost is NACKed again, and the hub sends it on both paths (RTX
/// and a copy of the original), so every packet still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_nacked_again_goes_on_both_paths() {
    tokio::time::timeout(Duration::from_secs(30), lossy_leg_with(true, true, true))
        .await
        .expect("test timed out");
}

/// The same through the `rtc` pipeline (the leg's state when its SRTP keys
/// cannot be had): its NACK responder resends, and the failure to seal
/// directly is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_core_too_every_packet_gets_through_nack() {
    tokio::time::timeout(Duration::from_secs(30), lossy_leg(false, true))
        .await
        .expect("test timed out");
}

/// A subscriber connected to a new video leg of `media` through a UDP proxy
/// between it and the hub, and that proxy's tasks.
struct Proxied {
    leg: super::LegId,
    sub: PeerLink,
    signals: crate::link::LinkSignals,
    proxy: [tokio::task::JoinHandle<()>; 2],
}

/// How [`proxied_leg`] sets up its leg and subscriber.
#[derive(Default, Clone, Copy)]
struct Setup {
    /// The leg sends through its core ([`CreateLeg::keys_unrecognised`]).
    keys_unrecognised: bool,
    /// The proxy drops the first copy of every DROP_EVERY-th RTP packet.
    lossy: bool,
    /// The proxy drops every fourth RTX packet too.
    lossy_rtx: bool,
    /// The subscriber accepts RTX ([`PeerLink::subscriber`]).
    rtx: bool,
}

/// A subscriber link: accepting RTX or not.
async fn subscriber_link(ip: IpAddr, rtx: bool) -> (PeerLink, crate::link::LinkSignals) {
    if rtx {
        PeerLink::subscriber(ip, &Default::default()).await
    } else {
        PeerLink::new(ip).await
    }
    .expect("subscriber")
}

/// Connects a subscriber to a new video leg of `media` through a proxy that
/// drops packets as `setup` says (counted in `dropped`) and copies what the
/// hub sends to `record`, if given. Also returns the hub's offer.
async fn proxied_leg(
    hub: &Hub,
    media: &Arc<PublishedMedia>,
    metrics: &Arc<Metrics>,
    setup: Setup,
    dropped: &Arc<AtomicU64>,
    record: Option<Recorder>,
) -> (Proxied, String) {
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let (leg, offer, mut inbox_rx) =
        create_video_leg(hub, media, metrics, 1, setup.keys_unrecognised).await;
    let hub_addr = SocketAddr::new(ip, candidate_port(&offer));
    // `facing_sub` stands in for the hub (the subscriber sends to it),
    // `facing_hub` for the subscriber (the hub sends to it).
    let facing_sub = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let facing_hub = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let (sub, mut signals) = subscriber_link(ip, setup.rtx).await;
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
            (setup.lossy, setup.lossy_rtx),
            Arc::clone(dropped),
            record,
        ),
        pump(
            Arc::clone(&facing_sub),
            Arc::clone(&facing_hub),
            hub_addr,
            (false, false),
            Arc::clone(dropped),
            None,
        ),
    ];
    hub.apply_answer(leg, with_candidate_port(&answer, port(&facing_hub)))
        .await
        .expect("apply answer");
    until_both_connected(&mut inbox_rx, &mut signals).await;
    let proxied = Proxied {
        leg,
        sub,
        signals,
        proxy,
    };
    (proxied, offer)
}

/// The `(media, RTX)` SSRCs of the offer's `a=ssrc-group:FID` line.
fn fid_group(offer: &str) -> Option<(u32, u32)> {
    let line = offer
        .lines()
        .find_map(|l| l.strip_prefix("a=ssrc-group:FID "))?;
    let mut ssrcs = line.split_whitespace().map(|s| s.parse().ok());
    Some((ssrcs.next()??, ssrcs.next()??))
}

/// `(payload type, SSRC, sequence number)` of an SRTP datagram (its
/// header is in the clear).
fn rtp_ids(datagram: &[u8]) -> (u8, u32, u16) {
    let ssrc = u32::from_be_bytes(datagram[8..12].try_into().expect("4 bytes"));
    let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
    (datagram[1] & 0x7f, ssrc, seq)
}

/// A hub with one stream and a leg to a real subscriber through
/// [`proxied_leg`], whose SRTP datagrams the test reads (`recorded`).
struct RecordedLeg {
    metrics: Arc<Metrics>,
    hub: Hub,
    media: Arc<PublishedMedia>,
    proxied: Proxied,
    offer: String,
    recorded: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    /// RTP packets the proxy dropped (`Setup::lossy`).
    dropped: Arc<AtomicU64>,
}

async fn recorded_leg(setup: Setup) -> RecordedLeg {
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
    let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
    let dropped = Arc::new(AtomicU64::new(0));
    let (record, recorded) = tokio::sync::mpsc::unbounded_channel();
    let (proxied, offer) =
        proxied_leg(&hub, &media, &metrics, setup, &dropped, Some(srtp(record))).await;
    RecordedLeg {
        metrics,
        hub,
        media,
        proxied,
        offer,
        recorded,
        dropped,
    }
}

/// `direct`: the leg seals its own media (else through its core); `rtx`:
/// the subscriber accepts RTX.
async fn lossy_leg(direct: bool, rtx: bool) {
    lossy_leg_with(direct, rtx, false).await;
}

/// [`lossy_leg`]; `lossy_rtx`: the proxy drops every fourth RTX packet too.
async fn lossy_leg_with(direct: bool, rtx: bool, lossy_rtx: bool) {
    let RecordedLeg {
        metrics,
        hub,
        media,
        proxied:
            Proxied {
                leg,
                sub,
                signals: mut sub_signals,
                proxy,
            },
        offer,
        mut recorded,
        dropped,
    } = recorded_leg(Setup {
        keys_unrecognised: !direct,
        lossy: true,
        lossy_rtx,
        rtx,
    })
    .await;
    let (media_ssrc, rtx_ssrc) = fid_group(&offer).expect("the offer groups an RTX SSRC");
    let receiver = tokio::spawn(async move {
        let track = loop {
            match sub_signals.recv().await {
                Some(LinkSignal::Track(track)) => break track,
                Some(_) => {}
                None => panic!("subscriber closed before a track arrived"),
            }
        };
        let mut got = HashSet::new();
        let mut ssrc = None;
        let mut reports = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, track.poll()).await {
            match event {
                TrackRemoteEvent::OnRtpPacket(p) if p.header.sequence_number <= PACKETS => {
                    ssrc = Some(p.header.ssrc);
                    got.insert(p.header.sequence_number);
                }
                TrackRemoteEvent::OnRtcpPacket(packets) => reports.extend(
                    packets
                        .iter()
                        .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
                        .cloned(),
                ),
                _ => {}
            }
            if got.len() == usize::from(PACKETS) && !reports.is_empty() {
                break;
            }
        }
        (got, ssrc, reports)
    });

    // One packet more than checked: a loss is only noticed (and NACKed)
    // when a later packet arrives.
    feed(&hub, &media, 1, PACKETS + 1, 300).await;
    let (got, ssrc, reports) = receiver.await.expect("receiver");
    let dropped = dropped.load(Ordering::Relaxed);
    // Sender reports reach the subscriber, for the track's SSRC, with
    // counts that add up (every payload is 300 bytes) and the wall clock.
    let sr = reports.last().expect("a sender report");
    assert_eq!(Some(sr.ssrc), ssrc, "report for the media SSRC");
    assert!(
        sr.packet_count > 0 && u64::from(sr.packet_count) <= u64::from(PACKETS) + 1 + dropped,
        "{sr:?}"
    );
    assert_eq!(sr.octet_count, sr.packet_count * 300, "{sr:?}");
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(
        ((sr.ntp_time >> 32) - 2_208_988_800).abs_diff(unix_now) <= 5,
        "NTP time {sr:?}"
    );
    assert!(
        dropped >= u64::from(PACKETS / DROP_EVERY) - 1,
        "dropped {dropped}"
    );
    let missing: Vec<u16> = (1..=PACKETS).filter(|s| !got.contains(s)).collect();
    assert!(missing.is_empty(), "never arrived: {missing:?}");
    assert!(
        metrics.forwarded_packets.load(Ordering::Relaxed) >= u64::from(PACKETS),
        "forwarded"
    );
    assert_eq!(
        metrics.direct_egress_legs.get(),
        usize::from(direct),
        "who sealed the media"
    );
    assert_eq!(
        metrics.egress_key_failures.load(Ordering::Relaxed),
        u64::from(!direct),
        "a leg that cannot seal directly is counted"
    );
    let resent = metrics.retransmitted_packets.load(Ordering::Relaxed);
    if direct {
        assert!(resent >= dropped, "resent {resent} of {dropped} dropped");
    } else {
        assert_eq!(resent, 0, "the core's responder resends, uncounted");
    }
    // The leg's own counters (`GET /rooms/{id}`) saw the same traffic.
    let snapshot = hub.snapshot().await;
    let counted = snapshot
        .iter()
        .find(|l| l.leg == leg)
        .expect("the leg in the snapshot");
    assert_eq!(counted.media, Some(media.id()));
    assert_eq!(counted.phase, super::LegPhase::Connected);
    assert_eq!(
        counted.rtx, rtx,
        "resends as RTX iff the subscriber took it"
    );
    let c = counted.counters;
    assert_eq!(
        c.packets,
        metrics.forwarded_packets.load(Ordering::Relaxed),
        "{c:?}"
    );
    assert_eq!(
        c.bytes,
        metrics.forwarded_bytes.load(Ordering::Relaxed),
        "{c:?}"
    );
    assert_eq!(c.bytes, c.packets * (12 + 300), "{c:?}");
    // A late NACK may still be answered between the reads: bounds, not equality.
    assert!(c.nacks > 0, "the lossy path was NACKed: {c:?}");
    assert!(c.nacks <= metrics.nacks_received.load(Ordering::Relaxed));
    assert!(c.retransmitted >= resent, "{c:?}, resent {resent}");
    assert!(c.retransmitted <= metrics.retransmitted_packets.load(Ordering::Relaxed));

    // On the wire: resends on the RTX stream if the subscriber took it
    // (all of them), else copies of the originals (and no RTX at all).
    let mut wire = Vec::new();
    while let Ok(d) = recorded.try_recv() {
        wire.push(rtp_ids(&d));
    }
    let on_rtx = wire.iter().filter(|(_, ssrc, _)| *ssrc == rtx_ssrc).count();
    let media_copies = {
        let media_seqs: Vec<u16> = wire
            .iter()
            .filter(|(_, ssrc, _)| *ssrc == media_ssrc)
            .map(|(_, _, seq)| *seq)
            .collect();
        media_seqs.len() - media_seqs.iter().collect::<HashSet<_>>().len()
    };
    let rtx_count = sub.rtx_count();
    if rtx {
        assert!(on_rtx > 0, "no RTX packet on the wire: {c:?}");
        assert!(
            wire.iter()
                .filter(|(_, ssrc, _)| *ssrc == rtx_ssrc)
                .all(|(pt, _, _)| *pt == crate::link::rtx::RTX_PAYLOAD_TYPE),
            "RTX packets carry the RTX payload type"
        );
        // An original goes out again only with a packet NACKed again
        // (sent on both paths); with every fourth RTX packet lost, some are.
        assert_eq!(media_copies as u64, c.retransmitted_again, "{c:?}");
        if lossy_rtx {
            assert!(c.retransmitted_again > 0, "{c:?}");
        }
        // (A leg sending through its core: its responder resends, uncounted.)
        assert_eq!(
            c.retransmitted_rtx + c.retransmitted_again,
            c.retransmitted,
            "{c:?}"
        );
        assert!(rtx_count.repaired > 0, "{rtx_count:?}");
        assert_eq!(rtx_count.malformed, 0, "{rtx_count:?}");
    } else {
        assert_eq!(on_rtx, 0, "RTX sent to a leg that cannot use it");
        assert!(media_copies > 0, "plain resends on the wire");
        assert_eq!(c.retransmitted_rtx, 0, "{c:?}");
        assert_eq!(rtx_count, Default::default());
    }

    hub.close(leg).await;
    assert!(
        hub.snapshot().await.iter().all(|l| l.leg != leg),
        "a closed leg leaves the snapshot"
    );
    assert_eq!(metrics.peer_connections.get(), 0, "leg released");
    assert_eq!(metrics.direct_egress_legs.get(), 0, "direct gauge released");
    for task in proxy {
        task.abort();
    }
    sub.close().await;
}

/// RTX packets that repair nothing reach a subscriber that accepts RTX:
/// one too short to carry an OSN, one whose OSN was never sent, one
/// repeating a packet that arrived. Each is dropped and counted
/// (`link::rtx`), none reaches the track, and the stream goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_stray_rtx_packets_are_dropped_and_counted() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
        let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
        let (leg, offer, mut inbox_rx) = create_video_leg(&hub, &media, &metrics, 1, false).await;
        let (_, rtx_ssrc) = fid_group(&offer).expect("the offer groups an RTX SSRC");
        let (sub, mut signals) = subscriber_link(ip, true).await;
        let answer = sub.answer(offer).await.expect("answer");
        assert!(answer.contains(" rtx/90000"), "the subscriber takes RTX");
        hub.apply_answer(leg, answer).await.expect("apply answer");
        until_both_connected(&mut inbox_rx, &mut signals).await;
        let receiver = tokio::spawn(async move {
            let track = loop {
                match signals.recv().await {
                    Some(LinkSignal::Track(track)) => break track,
                    Some(_) => {}
                    None => panic!("subscriber closed before a track arrived"),
                }
            };
            let mut got = Vec::new();
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event {
                    got.push(p.header.sequence_number);
                    if p.header.sequence_number == 60 {
                        break;
                    }
                }
            }
            got
        });
        feed(&hub, &media, 1, 30, 100).await;
        let rtx = |seq: u16, payload: &'static [u8]| Packet {
            header: Header {
                version: 2,
                payload_type: crate::link::rtx::RTX_PAYLOAD_TYPE,
                sequence_number: seq,
                timestamp: 4500,
                ssrc: rtx_ssrc,
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        };
        hub.inject(leg, rtx(1000, &[0x41])).await; // no room for an OSN
        hub.inject(leg, rtx(1001, &[0x75, 0x30, 0x41, 0x01])).await; // OSN 30000
        hub.inject(leg, rtx(1002, &[0x00, 0x0a, 0x41, 0x0a])).await; // 10 again
        feed(&hub, &media, 31, 30, 100).await;
        let got = receiver.await.expect("receiver");
        assert_eq!(got, (1..=60).collect::<Vec<u16>>(), "the stream as sent");
        let count = sub.rtx_count();
        assert_eq!(
            count,
            crate::link::rtx::RtxCount {
                repaired: 0,
                probes: 0,
                malformed: 1,
                unrequested: 2,
            }
        );
        hub.close(leg).await;
        sub.close().await;
    })
    .await
    .expect("test timed out");
}

/// A subscriber connected to a new leg of `media`.
struct Subscriber {
    leg: super::LegId,
    inbox: SessionInboxReceiver,
    link: PeerLink,
    signals: crate::link::LinkSignals,
}

/// A video-only leg of `media`: its id, the offer and its session inbox.
pub(super) async fn create_video_leg(
    hub: &Hub,
    media: &Arc<PublishedMedia>,
    metrics: &Arc<Metrics>,
    link: u64,
    keys_unrecognised: bool,
) -> (super::LegId, String, SessionInboxReceiver) {
    let (inbox, inbox_rx) = SessionInbox::new();
    let (leg, offer) = hub
        .create(CreateLeg {
            link_id: LinkId(link),
            source: LegSource::Stream(Arc::clone(media)),
            stream_label: format!("s{link}"),
            video: true,
            audio: false,
            want_audio: false,
            want_video: true,
            inbox,
            counted: metrics.peer_connections.enter(),
            keys_unrecognised,
            remote_offer: None,
            aes_cm: false,
        })
        .await
        .expect("create leg");
    (leg, offer, inbox_rx)
}

/// Until the hub reports the leg connected and the subscriber's side is
/// connected too: it may finish DTLS a moment after ours, and a packet
/// that arrives before its SRTP keys is lost for good (nothing earlier to
/// NACK it against).
pub(super) async fn until_both_connected(
    inbox: &mut SessionInboxReceiver,
    signals: &mut crate::link::LinkSignals,
) {
    loop {
        match inbox.events.recv().await {
            Some(SessionEvent::Link(e)) if matches!(e.state, LinkState::Connected) => break,
            Some(SessionEvent::Link(e)) if matches!(e.state, LinkState::Failed) => {
                panic!("leg failed")
            }
            Some(_) => {}
            None => panic!("inbox closed"),
        }
    }
    loop {
        match signals.recv().await {
            Some(LinkSignal::State(webrtc::peer_connection::RTCPeerConnectionState::Connected)) => {
                break;
            }
            Some(_) => {}
            None => panic!("subscriber closed before connecting"),
        }
    }
}

async fn subscribe(
    hub: &Hub,
    media: &Arc<PublishedMedia>,
    metrics: &Arc<Metrics>,
    link: u64,
) -> Subscriber {
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let (leg, offer, mut inbox_rx) = create_video_leg(hub, media, metrics, link, false).await;
    let (sub, mut signals) = PeerLink::new(ip).await.expect("subscriber");
    let answer = sub.answer(offer).await.expect("answer");
    hub.apply_answer(leg, answer).await.expect("apply answer");
    until_both_connected(&mut inbox_rx, &mut signals).await;
    Subscriber {
        leg,
        inbox: inbox_rx,
        link: sub,
        signals,
    }
}

/// Feeds `count` video packets of `size` bytes from `first` on, 5 ms apart
/// (the pace of a real stream: this is the input, not a wait).
async fn feed(hub: &Hub, media: &PublishedMedia, first: u16, count: u16, size: usize) {
    let seqs: Vec<u16> = (first..first + count).collect();
    feed_seqs(hub, media, &seqs, size).await;
}

/// Feeds video packets with these ingress sequence numbers, in this order,
/// 5 ms apart. The payload's first byte is an H.264 non-IDR slice header, its
/// second the low byte of the number.
async fn feed_seqs(hub: &Hub, media: &PublishedMedia, seqs: &[u16], size: usize) {
    for &seq in seqs {
        let mut payload = vec![0x41u8; size];
        payload[1] = seq as u8;
        let packet = Packet {
            header: Header {
                version: 2,
                payload_type: 96, // the hub rewrites it to the leg's
                sequence_number: seq,
                timestamp: u32::from(seq) * 450,
                ssrc: 42,
                marker: true,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        };
        hub.media_input()
            .send(IngressPacket {
                media: media.id(),
                video: true,
                packet,
                capture_ntp: 0,
                layer: 0,
                audio_level: None,
            })
            .await
            .expect("hub input");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How many packets arrive within `wait` (on the track the first packet
/// announces).
async fn count_packets(mut signals: crate::link::LinkSignals, wait: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + wait;
    let track = loop {
        match tokio::time::timeout_at(deadline, signals.recv()).await {
            Ok(Some(LinkSignal::Track(track))) => break track,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return 0,
        }
    };
    let mut n = 0;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, track.poll()).await {
        if let TrackRemoteEvent::OnRtpPacket(_) = event {
            n += 1;
        }
    }
    n
}

/// Counts the RTP packets the subscriber's first track receives until none
/// has come for `quiet` (after the first one), or `cap` is over: for tests
/// that check how much of a fed burst got through, whatever the load does to
/// the feeder's pace.
async fn count_packets_until_quiet(
    mut signals: crate::link::LinkSignals,
    quiet: Duration,
    cap: Duration,
) -> usize {
    let deadline = tokio::time::Instant::now() + cap;
    let track = loop {
        match tokio::time::timeout_at(deadline, signals.recv()).await {
            Ok(Some(LinkSignal::Track(track))) => break track,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return 0,
        }
    };
    let (mut n, mut until) = (0, deadline);
    loop {
        match tokio::time::timeout_at(until, track.poll()).await {
            Ok(Some(TrackRemoteEvent::OnRtpPacket(_))) => {
                n += 1;
                until = deadline.min(tokio::time::Instant::now() + quiet);
            }
            Ok(Some(_)) => {} // RTCP and the like: not what is counted
            Ok(None) | Err(_) => return n,
        }
    }
}

/// A panic while the hub works on one leg costs that leg only: it is
/// reported failed and released, and the other subscriber keeps receiving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_leg_is_dropped_and_the_others_carry_on() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
        let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
        let mut doomed = subscribe(&hub, &media, &metrics, 1).await;
        let mut healthy = subscribe(&hub, &media, &metrics, 2).await;
        assert_eq!(metrics.peer_connections.get(), 2);

        hub.commands
            .send(super::Command::Panic(doomed.leg))
            .await
            .expect("hub running");
        loop {
            match doomed.inbox.events.recv().await {
                Some(SessionEvent::Link(e)) if matches!(e.state, LinkState::Failed) => break,
                Some(_) => {}
                None => panic!("inbox closed before the failure was reported"),
            }
        }
        assert_eq!(metrics.egress_panics.load(Ordering::Relaxed), 1);
        assert_eq!(
            metrics.peer_connections.get(),
            1,
            "the panicked leg released"
        );
        assert_eq!(
            media.subscriber_counts(),
            (1, 0),
            "the stream's count follows its fan-out list"
        );

        let signals = std::mem::replace(
            &mut healthy.signals,
            tokio::sync::mpsc::unbounded_channel().1,
        );
        let counting =
            tokio::spawn(async move { count_packets(signals, Duration::from_secs(3)).await });
        feed(&hub, &media, 1, 100, 200).await;
        let got = counting.await.expect("counter");
        assert!(got >= 95, "the other subscriber got {got} of 100 packets");

        hub.close(healthy.leg).await;
        assert_eq!(metrics.peer_connections.get(), 0);
        assert_eq!(media.subscriber_counts(), (0, 0));
        healthy.link.close().await;
        doomed.link.close().await;
    })
    .await
    .expect("test timed out");
}

/// Issue 9 (SRTP nonce reuse): reordered and retransmitted ingress packets
/// around a pause and resume of video never put two different packets under
/// one (SSRC, sequence number) on the egress leg, where one key seals them
/// all. Checked on the wire, between the hub and a real subscriber: the same
/// number may only come again as the very same bytes (a resend on NACK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sequence_number_is_sealed_twice_around_a_pause() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let RecordedLeg {
            metrics,
            hub,
            media,
            proxied:
                Proxied {
                    leg,
                    sub,
                    proxy,
                    signals: _signals,
                },
            mut recorded,
            ..
        } = recorded_leg(Setup::default()).await;

        // Before the pause: 20 arrives late, 35 twice (a publisher's
        // retransmission). Then video is paused while the publisher goes on,
        // and resumed: 50 is a straggler from before the resume, 62 comes
        // twice. 81 marks the end.
        let mut before: Vec<u16> = (1..=19).chain(21..=40).collect();
        before.extend([20, 35]);
        // Media and commands reach the hub on two channels: each barrier
        // makes the order the one written here.
        feed_seqs(&hub, &media, &before, 200).await;
        hub.barrier().await;
        hub.set_forwarding(leg, false, false);
        hub.barrier().await;
        feed(&hub, &media, 41, 20, 200).await;
        hub.barrier().await;
        hub.set_forwarding(leg, false, true);
        hub.barrier().await;
        let mut after = vec![61, 62, 50];
        after.extend(63..=80);
        after.extend([62, 81]);
        feed_seqs(&hub, &media, &after, 200).await;

        // 1..=40, 61..=81 on the wire: 61 numbers.
        const EXPECTED: usize = 61;
        let mut seen: HashMap<(u32, u16), Vec<u8>> = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen.len() < EXPECTED {
            let datagram = tokio::time::timeout_at(deadline, recorded.recv())
                .await
                .unwrap_or_else(|_| {
                    let mut s: Vec<u16> = seen.keys().map(|k| k.1).collect();
                    s.sort_unstable();
                    panic!("only {} numbers arrived: {s:?}", seen.len())
                })
                .expect("recorder open");
            let seq = rtp_seq(&datagram).expect("rtp");
            let ssrc = u32::from_be_bytes(datagram[8..12].try_into().expect("ssrc"));
            if let Some(earlier) = seen.insert((ssrc, seq), datagram.clone()) {
                assert_eq!(
                    earlier, datagram,
                    "two different packets sealed as ssrc {ssrc} seq {seq}"
                );
            }
        }
        // Whatever else the hub sent by now (it fed 81 last).
        while let Ok(datagram) = recorded.try_recv() {
            let seq = rtp_seq(&datagram).expect("rtp");
            let ssrc = u32::from_be_bytes(datagram[8..12].try_into().expect("ssrc"));
            if let Some(earlier) = seen.insert((ssrc, seq), datagram.clone()) {
                assert_eq!(earlier, datagram, "ssrc {ssrc} seq {seq} sealed twice");
            }
        }
        assert_eq!(seen.len(), EXPECTED, "{:?}", {
            let mut s: Vec<u16> = seen.keys().map(|k| k.1).collect();
            s.sort_unstable();
            s
        });
        assert_eq!(
            metrics.stale_packets_dropped.load(Ordering::Relaxed),
            3,
            "35 and 62 again, and the straggler 50"
        );
        hub.close(leg).await;
        for task in proxy {
            task.abort();
        }
        sub.close().await;
    })
    .await
    .expect("test timed out");
}

/// Issue 9: an egress leg offers only the AES-GCM SRTP profiles, so the key
/// the hub seals with is always one it recognises. A subscriber that offers
/// only AES-CM gets no connection (before, it connected with AES-CM and its
/// media silently took the slow path, or, 1 time in 65,536, was sealed with
/// a misread key); one that offers GCM connects and is sealed directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_legs_speak_aes_gcm_srtp_only() {
    use rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
    tokio::time::timeout(Duration::from_secs(30), async {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
        let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());

        let (leg, offer, mut inbox) = create_video_leg(&hub, &media, &metrics, 1, false).await;
        let (sub, _signals) = PeerLink::with_srtp_profiles(
            ip,
            vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80],
        )
        .await
        .expect("AES-CM-only subscriber");
        let answer = sub.answer(offer).await.expect("answer");
        hub.apply_answer(leg, answer).await.expect("apply answer");
        // ICE succeeds; the DTLS handshake finds no common SRTP profile. Give
        // it far longer than a handshake takes here (~10 ms).
        let outcome = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match inbox.events.recv().await {
                    Some(SessionEvent::Link(e)) => match e.state {
                        LinkState::Connected => return "connected",
                        LinkState::Failed => return "failed",
                        LinkState::Candidate(_) | LinkState::Layer(_) => {}
                    },
                    Some(_) => {}
                    None => return "inbox closed",
                }
            }
        })
        .await
        .unwrap_or("still connecting");
        assert_ne!(outcome, "connected", "an AES-CM-only peer must not connect");
        assert_eq!(metrics.egress_key_failures.load(Ordering::Relaxed), 0);
        hub.close(leg).await;
        sub.close().await;

        // The usual peer (GCM among its profiles) connects and is sealed
        // directly.
        let healthy = subscribe(&hub, &media, &metrics, 2).await;
        assert_eq!(metrics.direct_egress_legs.get(), 1);
        hub.close(healthy.leg).await;
        healthy.link.close().await;
    })
    .await
    .expect("test timed out");
}

/// A subscriber starts its ICE checks as soon as it has made its answer,
/// before the answer reaches the hub: those checks are held (the core could
/// not verify them yet) and read once the answer is applied, and the leg
/// connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_that_arrive_before_the_answer_are_held_then_answered() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let metrics = Arc::new(Metrics::default());
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
        let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
        let (leg, offer, mut inbox_rx) = create_video_leg(&hub, &media, &metrics, 1, false).await;
        let (sub, mut signals) = PeerLink::new(ip).await.expect("subscriber");
        let answer = sub.answer(offer).await.expect("answer");
        // The subscriber is checking now; the hub has no answer yet.
        loop {
            let (held, replayed) = hub.early_checks(leg).await;
            assert_eq!(replayed, 0, "nothing is replayed before the answer");
            if held > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        hub.apply_answer(leg, answer).await.expect("apply answer");
        let (held, replayed) = hub.early_checks(leg).await;
        assert_eq!(held, 0, "the held checks were handed to the core");
        assert!(replayed > 0 && replayed <= super::leg::EARLY_CHECKS_MAX);
        until_both_connected(&mut inbox_rx, &mut signals).await;
        sub.close().await;
    })
    .await
    .expect("test timed out");
}

/// Closing a leg (its stream was removed, or its subscriber unsubscribed)
/// tells the subscriber at once: the hub sends a DTLS alert
/// (close_notify), so a browser sees the connection end without waiting
/// for ICE to time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_leg_says_goodbye_over_dtls() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
        let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
        let unused = Arc::new(AtomicU64::new(0));
        let (tx, mut dtls) = tokio::sync::mpsc::unbounded_channel();
        const ALERT: u8 = 21;
        let alerts = Recorder {
            wants: |d| d.first() == Some(&ALERT),
            tx,
        };
        let (Proxied { leg, sub, .. }, _) = proxied_leg(
            &hub,
            &media,
            &metrics,
            Setup::default(),
            &unused,
            Some(alerts),
        )
        .await;
        assert!(dtls.try_recv().is_err(), "no alert while the leg is up");
        hub.close(leg).await;
        let alert = tokio::time::timeout(Duration::from_secs(2), dtls.recv())
            .await
            .expect("an alert within 2 s of closing")
            .expect("recorder open");
        assert_eq!(alert[0], ALERT);
        sub.close().await;
    })
    .await
    .expect("test timed out");
}

/// Issue 11: an ICE restart of a connected leg. The hub offers new ICE
/// credentials (its old pair is dropped), the subscriber answers with its
/// own, the new checks reach the leg by the new ufrag and ICE selects a
/// pair again; the media keeps its track, SRTP and DTLS (no new handshake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leg_gets_new_credentials_and_keeps_its_media() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
        let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
        let mut sub = subscribe(&hub, &media, &metrics, 1).await;
        let (selected, restarts) = hub.selected(sub.leg).await;
        assert!(selected.is_some(), "connected legs have a pair");
        assert_eq!(restarts, 0);
        let ufrags = |sdp: &str| crate::link::ice_ufrag(sdp).map(str::to_owned);
        let first_offer = sub.link.pc().remote_description().await.expect("offer").sdp;
        let first_answer = sub.link.local_ufrag().await;

        let offer = hub.restart_ice(sub.leg).await.expect("restart offer");
        assert_ne!(ufrags(&offer), ufrags(&first_offer), "new hub credentials");
        assert_eq!(
            hub.selected(sub.leg).await,
            (None, 1),
            "the old pair is gone"
        );
        let answer = sub.link.answer(offer).await.expect("restart answer");
        assert_ne!(ufrags(&answer), first_answer, "new subscriber credentials");
        hub.apply_answer(sub.leg, answer).await.expect("apply");
        // A second answer to the same offer is refused (nothing pending).
        assert!(hub.apply_answer(sub.leg, "v=0".into()).await.is_err());
        loop {
            if hub.selected(sub.leg).await.0.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        let signals = std::mem::replace(&mut sub.signals, tokio::sync::mpsc::unbounded_channel().1);
        let counting =
            tokio::spawn(async move { count_packets(signals, Duration::from_secs(3)).await });
        feed(&hub, &media, 1, 100, 200).await;
        let got = counting.await.expect("counter");
        assert!(
            got >= 95,
            "the restarted leg delivered {got} of 100 packets"
        );
        assert_eq!(metrics.egress_key_failures.load(Ordering::Relaxed), 0);
        hub.close(sub.leg).await;
        sub.link.close().await;
    })
    .await
    .expect("test timed out");
}

/// Issue 10 §2: a webrtc-rs subscriber returns transport-wide feedback for
/// the extension the leg's offer carried, and the hub takes it. Bad input:
/// feedback about numbers the leg never sent (well-formed RTCP, so it gets
/// through the core) is counted and ignored, and neither that subscriber's
/// media nor the other's is disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twcc_feedback_is_read_and_bad_feedback_is_counted_and_ignored() {
    use rtc::rtcp::transport_feedbacks::transport_layer_cc::{
        PacketStatusChunk, RecvDelta, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
        TransportLayerCc,
    };
    tokio::time::timeout(Duration::from_secs(40), async {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
        let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
        let mut bad = subscribe(&hub, &media, &metrics, 1).await;
        let mut good = subscribe(&hub, &media, &metrics, 2).await;
        let bad_signals =
            std::mem::replace(&mut bad.signals, tokio::sync::mpsc::unbounded_channel().1);
        let good_signals =
            std::mem::replace(&mut good.signals, tokio::sync::mpsc::unbounded_channel().1);
        // The bad subscriber sends its nonsense on its track's RTCP, while
        // counting what it receives.
        let sent_bad = Arc::new(AtomicU64::new(0));
        let sent = Arc::clone(&sent_bad);
        let bad_rx = tokio::spawn(async move {
            let mut signals = bad_signals;
            let track = loop {
                match signals.recv().await {
                    Some(LinkSignal::Track(track)) => break track,
                    Some(_) => {}
                    None => panic!("subscriber closed before a track arrived"),
                }
            };
            let mut got = HashSet::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
            while let Ok(Some(event)) = tokio::time::timeout_at(deadline, track.poll()).await {
                if let TrackRemoteEvent::OnRtpPacket(p) = event {
                    got.insert(p.header.sequence_number);
                    if got.len() % 20 == 0 {
                        let nonsense = TransportLayerCc {
                            sender_ssrc: 1,
                            media_ssrc: p.header.ssrc,
                            base_sequence_number: 40_000, // never sent
                            packet_status_count: 2,
                            reference_time: 1,
                            fb_pkt_count: 0,
                            packet_chunks: vec![PacketStatusChunk::RunLengthChunk(
                                RunLengthChunk {
                                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                                    packet_status_symbol: SymbolTypeTcc::PacketReceivedSmallDelta,
                                    run_length: 2,
                                },
                            )],
                            recv_deltas: vec![
                                RecvDelta {
                                    type_tcc_packet: SymbolTypeTcc::PacketReceivedSmallDelta,
                                    delta: 1000,
                                };
                                2
                            ],
                        };
                        if track.write_rtcp(vec![Box::new(nonsense)]).await.is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            got.len()
        });
        let good_rx =
            tokio::spawn(async move { count_packets(good_signals, Duration::from_secs(6)).await });
        feed(&hub, &media, 1, 400, 200).await;
        let bad_got = bad_rx.await.expect("bad subscriber");
        let good_got = good_rx.await.expect("good subscriber");
        assert!(bad_got >= 390, "the bad subscriber got {bad_got} of 400");
        assert!(good_got >= 390, "the good subscriber got {good_got} of 400");
        let sent_bad = sent_bad.load(Ordering::Relaxed);
        assert!(sent_bad >= 5, "{sent_bad} bad feedback packets sent");
        let snapshot = hub.snapshot().await;
        let counters = |leg| {
            snapshot
                .iter()
                .find(|l| l.leg == leg)
                .map(|l| l.counters)
                .expect("leg in the snapshot")
        };
        let (b, g) = (counters(bad.leg), counters(good.leg));
        assert!(
            b.twcc_malformed >= 1 && b.twcc_malformed <= sent_bad,
            "bad feedback counted: {b:?}, {sent_bad} sent"
        );
        assert!(b.twcc_feedback > 0, "its real feedback still taken: {b:?}");
        assert_eq!(g.twcc_malformed, 0, "{g:?}");
        assert!(
            g.twcc_feedback > 0,
            "the webrtc-rs subscriber returns TWCC feedback: {g:?}"
        );
        bad.link.close().await;
        good.link.close().await;
    })
    .await
    .expect("test timed out");
}

/// The leg's offer carries transport-wide cc on both kinds: what a browser
/// (Chromium) needs to number nothing itself but return feedback for ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legs_offer_carries_transport_wide_cc() {
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
    let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
    let (_leg, offer, _inbox) = create_video_leg(&hub, &media, &metrics, 1, false).await;
    let uri = rtc::sdp::extmap::TRANSPORT_CC_URI;
    assert!(
        offer
            .lines()
            .any(|l| l.starts_with("a=extmap:") && l.ends_with(uri)),
        "{offer}"
    );
    assert!(
        offer
            .lines()
            .any(|l| l.starts_with("a=rtcp-fb:") && l.ends_with(" transport-cc")),
        "{offer}"
    );
}

/// Feeds video packets `(ingress number, padding only)` in this order, 5 ms
/// apart: media as [`feed_seqs`] makes it, padding as a browser sends it
/// (the P bit set, nothing left once the padding is removed).
async fn feed_padded(hub: &Hub, media: &PublishedMedia, packets: &[(u16, bool)]) {
    for &(seq, padding) in packets {
        let payload = if padding {
            Bytes::new()
        } else {
            let mut payload = vec![0x41u8; 200];
            payload[1] = seq as u8;
            Bytes::from(payload)
        };
        let packet = Packet {
            header: Header {
                version: 2,
                padding,
                payload_type: 96,
                sequence_number: seq,
                timestamp: u32::from(seq) * 450,
                ssrc: 42,
                marker: !padding,
                ..Default::default()
            },
            payload,
        };
        hub.media_input()
            .send(IngressPacket {
                media: media.id(),
                video: true,
                packet,
                capture_ntp: 0,
                layer: 0,
                audio_level: None,
            })
            .await
            .expect("hub input");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Issue 10 §2: padding-only packets (Chromium pads its smallest simulcast
/// layer) never reach a leg, and the media numbers on the wire stay gapless
/// though media arrives reordered and retransmitted around the padding and
/// a padding packet comes twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn padding_never_reaches_a_leg_and_media_numbers_stay_gapless() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let RecordedLeg {
            metrics,
            hub,
            media,
            proxied:
                Proxied {
                    leg,
                    sub,
                    proxy,
                    signals: _signals,
                },
            mut recorded,
            ..
        } = recorded_leg(Setup::default()).await;

        let is_padding = |seq: u16| seq.is_multiple_of(4) || (30..=35).contains(&seq);
        let mut order: Vec<u16> = (1..=60).collect();
        order.swap(9, 10); // 11 before 10
        order.insert(25, 21); // 21 again after 25 (a publisher's resend)
        order.insert(14, 8); // padding 8 again after 14
        let input: Vec<(u16, bool)> = order.iter().map(|&s| (s, is_padding(s))).collect();
        let media_count = (1..=60u16).filter(|&s| !is_padding(s)).count();
        let padding_sent = input.iter().filter(|p| p.1).count() as u64;
        feed_padded(&hub, &media, &input).await;
        hub.barrier().await;

        let mut seqs = HashSet::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seqs.len() < media_count {
            let datagram = tokio::time::timeout_at(deadline, recorded.recv())
                .await
                .unwrap_or_else(|_| {
                    let mut s: Vec<u16> = seqs.iter().copied().collect();
                    s.sort_unstable();
                    panic!("only {} of {media_count} numbers arrived: {s:?}", s.len())
                })
                .expect("recorder open");
            assert_eq!(datagram[0] & 0x20, 0, "a padded packet reached the leg");
            seqs.insert(rtp_seq(&datagram).expect("rtp"));
        }
        while let Ok(datagram) = recorded.try_recv() {
            assert_eq!(datagram[0] & 0x20, 0, "a padded packet reached the leg");
            seqs.insert(rtp_seq(&datagram).expect("rtp"));
        }
        // Gapless: `media_count` consecutive numbers (they may wrap).
        let first = seqs
            .iter()
            .copied()
            .find(|s| !seqs.contains(&s.wrapping_sub(1)))
            .expect("a first number");
        let run: HashSet<u16> = (0..media_count as u16)
            .map(|i| first.wrapping_add(i))
            .collect();
        assert_eq!(seqs, run, "the media numbers on the wire have a gap");
        assert_eq!(
            metrics.padding_packets_dropped.load(Ordering::Relaxed),
            padding_sent,
            "every padding packet dropped and counted, the copy too"
        );
        assert_eq!(
            metrics.stale_packets_dropped.load(Ordering::Relaxed),
            1,
            "the resent 21 (its number already written)"
        );
        hub.close(leg).await;
        for task in proxy {
            task.abort();
        }
        sub.close().await;
    })
    .await
    .expect("test timed out");
}

/// Issue 10 §2: a downlink probe pads a leg whose subscriber kept RTX with
/// padding-only packets on its RTX SSRC; the subscriber (webrtc-rs, our
/// SDK's link) reports their arrival in its TWCC feedback, so on an open
/// path the acknowledged rate reaches the probe's target and it passes,
/// while the media goes on undisturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_pads_the_leg_and_passes_on_an_open_path() {
    use crate::server::sfu::downlink::ProbeRequest;
    tokio::time::timeout(Duration::from_secs(40), async {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::start(ip, None, Arc::clone(&metrics)).expect("hub");
        let media = PublishedMedia::new(1, Arc::clone(&metrics), hub.media_input());
        let unused = Arc::new(AtomicU64::new(0));
        let (
            Proxied {
                leg,
                sub,
                proxy,
                signals,
            },
            _,
        ) = proxied_leg(
            &hub,
            &media,
            &metrics,
            Setup {
                rtx: true,
                ..Default::default()
            },
            &unused,
            None,
        )
        .await;
        // Until the feeder's 800 packets stop (its 5 ms sleeps run long on a
        // loaded machine: a fixed 6 s window cut it off at 587 of 800).
        let counting = tokio::spawn(async move {
            count_packets_until_quiet(signals, Duration::from_secs(2), Duration::from_secs(30))
                .await
        });
        // 200 packets/s of 200 bytes: ~340 kbit/s; the probe asks for 1 Mbit/s.
        let feeding = {
            let hub = hub.clone();
            let media = Arc::clone(&media);
            tokio::spawn(async move { feed(&hub, &media, 1, 800, 200).await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        hub.probe(
            leg,
            ProbeRequest {
                target_bps: 1_000_000.0,
                carried_bps: 340_000.0,
            },
        )
        .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        // The most acknowledged over the probe's readings: the last one may
        // already hold time after the padding stopped.
        let mut most_acked: f64 = 0.0;
        let (estimate, probes) = loop {
            let got = hub.estimate(leg).await;
            if let Some((e, _)) = got {
                most_acked = most_acked.max(e.acked_bps);
            }
            if let Some((e, p)) = got
                && p[1] + p[2] > 0
            {
                break (e, p);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the probe never ended: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(probes, [1, 1, 0], "passed: {estimate:?}");
        // The media alone is ~340 kbit/s: well above it, the padding was
        // acknowledged (not all of it need be: a loaded receiver's feedback
        // misses some).
        assert!(most_acked > 500_000.0, "{most_acked} acked; {estimate:?}");
        assert!(estimate.bps >= 900_000.0, "floored: {estimate:?}");
        let snapshot = hub.snapshot().await;
        let counters = snapshot
            .iter()
            .find(|l| l.leg == leg)
            .map(|l| l.counters)
            .expect("leg");
        assert!(counters.probe_packets > 500, "{counters:?}");
        feeding.await.expect("feeder");
        let got = counting.await.expect("counter");
        assert!(got >= 780, "the media got through: {got} of 800");
        hub.close(leg).await;
        for task in proxy {
            task.abort();
        }
        sub.close().await;
    })
    .await
    .expect("test timed out");
}
