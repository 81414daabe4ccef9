//! RTT, remote loss and jitter computed from RTCP (`link::rtcp_stats`) and from
//! the received sequence (`client::stats::ReceptionTracker`) match a network
//! whose loss and delay we set.
//!
//! Two links, A (sends RTP) and B (receives), talk through a UDP proxy on
//! 127.0.0.1 that
//! * delays every datagram by [`ONE_WAY_DELAY`] in both directions, so the
//!   round trip gains 2 × 25 ms = 50 ms, and
//! * drops every RTP datagram A → B whose sequence number is a multiple of
//!   [`DROP_EVERY`], retransmissions included (SRTP leaves the RTP header in the
//!   clear), so the loss is exactly 1/N however NACK behaves.
//!
//! Tolerances (documented here because they are the test's claims):
//! * RTT: 50 ms added; loopback and scheduling add a few ms and the DLSR field
//!   has 1/65536 s resolution, so 45 ms ≤ RTT ≤ 90 ms (the upper margin absorbs
//!   a loaded 2-core CI machine).
//! * Loss: 1/N = 10 %. Cumulative loss reported by B (RR) over what A sent, and
//!   B's own A.3 count, each within 10 % ± 2 points (the first and last packets
//!   of the run fall inside or outside a report window); the RR's per-interval
//!   fraction lost, sampled mid-run, within 10 % ± 3 points (an interval holds
//!   only ~200 packets and the field has 1/256 resolution).
//! * Jitter: the proxy adds a constant delay, so jitter stays under 10 ms.
#![cfg(feature = "client")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use huddle::client::stats::ReceptionTracker;
use huddle::link::testing::{candidate_port, rtp_seq, with_candidate_port};
use huddle::link::{H264_PAYLOAD_TYPE, LinkSignal, PeerLink, VIDEO_CLOCK_RATE, track_description};
use rtc::rtp::{Header, Packet};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemoteEvent;
use webrtc::peer_connection::RTCPeerConnectionState;

const ONE_WAY_DELAY: Duration = Duration::from_millis(25);
const DROP_EVERY: u16 = 10;
const SSRC: u32 = 0x1234_5678;
/// RTP packets A sends: 5 ms apart, 6 s.
const PACKETS: u16 = 1_200;
const PACKET_INTERVAL: Duration = Duration::from_millis(5);

/// One direction of the proxy: read on `from`, delay, drop, write from `via` to `to`.
fn pump(
    from: Arc<UdpSocket>,
    via: Arc<UdpSocket>,
    to: SocketAddr,
    lossy: bool,
    dropped: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (tx, mut rx) = mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(4096);
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, _)) = from.recv_from(&mut buf).await {
            let data = buf[..n].to_vec();
            if lossy && rtp_seq(&data).is_some_and(|seq| seq % DROP_EVERY == 0) {
                dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if tx
                .send((tokio::time::Instant::now() + ONE_WAY_DELAY, data))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let writer = tokio::spawn(async move {
        while let Some((due, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await; // the injected delay
            via.send_to(&data, to).await.ok(); // loopback send failing = test ending
        }
    });
    vec![reader, writer]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtt_loss_and_jitter_match_the_injected_network() {
    tokio::time::timeout(Duration::from_secs(40), run())
        .await
        .expect("test timed out");
}

async fn run() {
    let ip = "127.0.0.1".parse().expect("ip");
    let (a, mut a_signals) = PeerLink::new(ip).await.expect("link A");
    let (b, mut b_signals) = PeerLink::new(ip).await.expect("link B");
    let track = Arc::new(TrackLocalStaticRTP::new(track_description(
        RtpCodecKind::Video,
        SSRC,
        "s",
        "video",
    )));
    a.pc()
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .expect("add track");

    // Proxy sockets: `facing_b` stands in for A's address (B sends to it),
    // `facing_a` stands in for B's (A sends to it).
    let facing_b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let facing_a = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let offer = a.create_offer().await.expect("offer");
    let a_addr = SocketAddr::new(ip, candidate_port(&offer));
    let answer = b
        .answer(with_candidate_port(
            &offer,
            facing_b.local_addr().expect("addr").port(),
        ))
        .await
        .expect("answer");
    let b_addr = SocketAddr::new(ip, candidate_port(&answer));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut proxy = pump(
        Arc::clone(&facing_a),
        Arc::clone(&facing_b),
        b_addr,
        true,
        Arc::clone(&dropped),
    );
    proxy.extend(pump(
        Arc::clone(&facing_b),
        Arc::clone(&facing_a),
        a_addr,
        false,
        Arc::clone(&dropped),
    ));
    a.apply_answer(with_candidate_port(
        &answer,
        facing_a.local_addr().expect("addr").port(),
    ))
    .await
    .expect("apply answer");
    loop {
        match a_signals.recv().await {
            Some(LinkSignal::State(RTCPeerConnectionState::Connected)) => break,
            Some(_) => {}
            None => panic!("A closed before connecting"),
        }
    }

    // Receiver: count with the client's RFC 3550 tracker.
    let receiver = tokio::spawn(async move {
        let track = loop {
            match b_signals.recv().await {
                Some(LinkSignal::Track(track)) => break track,
                Some(_) => {}
                None => panic!("B closed before a track arrived"),
            }
        };
        let mut reception = ReceptionTracker::new(VIDEO_CLOCK_RATE);
        // Sender reports keep arriving after the media ends: stop at the last
        // packet that gets through (PACKETS itself is a multiple of DROP_EVERY).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, track.poll()).await {
            if let TrackRemoteEvent::OnRtpPacket(p) = event {
                reception.push(p.header.sequence_number, p.header.timestamp);
                if p.header.sequence_number >= PACKETS - 1 {
                    break;
                }
            }
        }
        reception.report()
    });

    let start = Instant::now();
    let mut mid_run = None;
    for seq in 1..=PACKETS {
        if seq == PACKETS * 5 / 6 {
            // 5 s in: the latest report covers an interval of steady sending.
            mid_run = a.rtcp_stats().remote(SSRC);
        }
        let packet = Packet {
            header: Header {
                version: 2,
                payload_type: H264_PAYLOAD_TYPE,
                sequence_number: seq,
                timestamp: u32::from(seq) * (VIDEO_CLOCK_RATE / 200),
                ssrc: SSRC,
                marker: true,
                ..Default::default()
            },
            // A single non-IDR slice NAL unit; content is irrelevant here.
            payload: Bytes::from(vec![0x41u8; 200]),
        };
        track.write_rtp(packet).await.expect("write_rtp");
        // Pacing the source (a 200 packet/s stream), not waiting for anything.
        tokio::time::sleep_until((start + PACKET_INTERVAL * u32::from(seq)).into()).await;
    }
    // Two more reports after the last packet, so the latest covers the end
    // (one may have been under way already).
    let reports_at_end = a.rtcp_stats().remote(SSRC).map_or(0, |r| r.reports);
    let report = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(r) = a.rtcp_stats().remote(SSRC)
                && r.reports >= reports_at_end + 2
            {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "A got no 2 more reports within 10 s of its last packet (had {reports_at_end}, now {:?})",
            a.rtcp_stats().remote(SSRC)
        )
    });
    let sent = f64::from(PACKETS);
    let rtt = report.rtt_ms.expect("an RTT");
    let received = receiver.await.expect("receiver task");
    eprintln!(
        "A sees {report:?}; B counts {received:?}; proxy dropped {} datagrams",
        dropped.load(Ordering::Relaxed)
    );
    assert!(
        (45.0..=90.0).contains(&rtt),
        "RTT {rtt} ms, expected 50 ms added"
    );
    let remote_loss = f64::from(report.total_lost) / sent;
    assert!(
        (0.08..=0.12).contains(&remote_loss),
        "RR loss {remote_loss}"
    );
    // The per-interval fraction (8 bits, RFC 3550 §6.4.1) over ~200 packets.
    let fraction = mid_run.expect("a report by 5 s").fraction_lost;
    assert!(
        (0.07..=0.13).contains(&fraction),
        "RR fraction lost {fraction}"
    );
    assert!(
        (0.08..=0.12).contains(&received.loss_fraction),
        "receiver loss {received:?}"
    );
    assert!(received.jitter_ms < 10.0, "jitter {received:?}");
    let remote_jitter = report.jitter_ms.expect("clock rate known");
    assert!(remote_jitter < 10.0, "RR jitter {remote_jitter}");

    for task in proxy {
        task.abort();
    }
    a.close().await;
    b.close().await;
}
