//! The subscriber's receive path over a real lossy link: two peer links, real
//! H.264, and a UDP proxy between them that drops the first copy of every
//! [`DROP_EVERY`]-th RTP packet (its retransmission gets through).
//!
//! Before the reorder buffer ([`super::super::jitter`]) every frame with a
//! lost packet was dropped on the gap and a keyframe requested, although the
//! NACKed packet arrived a round trip later. Now each such frame waits for its
//! packet: every lost packet is repaired, none is given up on, and the frames
//! decode. The assertions are on counts, not on timing (the wait is set long).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::Sample;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::RTCPeerConnectionState;

use super::Receiver;
use crate::client::jitter::JitterConfig;
use crate::link::testing::{candidate_port, rtp_seq, with_candidate_port};
use crate::link::{H264_PAYLOAD_TYPE, LinkSignal, PeerLink, track_description};
use crate::media::{H264Encoder, SyntheticVideo, VideoSource};

const DROP_EVERY: u16 = 10;
const ONE_WAY_DELAY: Duration = Duration::from_millis(20);
const FRAMES: u64 = 90;
const SSRC: u32 = 0x5eed_0001;

/// One direction of the proxy: read on `from`, delay, drop the first copy of
/// every DROP_EVERY-th RTP packet if `lossy`, write from `via` to `to`.
fn pump(
    from: Arc<UdpSocket>,
    via: Arc<UdpSocket>,
    to: SocketAddr,
    lossy: bool,
    dropped: Arc<AtomicU64>,
) -> [tokio::task::JoinHandle<()>; 2] {
    let (tx, mut rx) = mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(4096);
    let reader = tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut buf = vec![0u8; 2048];
        while let Ok((n, _)) = from.recv_from(&mut buf).await {
            let data = buf[..n].to_vec();
            if lossy
                && let Some(seq) = rtp_seq(&data)
                && seq % DROP_EVERY == 0
                && seen.insert(seq)
            {
                dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let due = tokio::time::Instant::now() + ONE_WAY_DELAY;
            if tx.send((due, data)).await.is_err() {
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
    [reader, writer]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_with_a_lost_packet_decode_once_it_is_resent() {
    tokio::time::timeout(Duration::from_secs(60), run())
        .await
        .expect("test timed out");
}

async fn run() {
    let ip: IpAddr = "127.0.0.1".parse().expect("ip");
    let (a, mut a_signals) = PeerLink::new(ip).await.expect("link A");
    let (b, mut b_signals) = PeerLink::new(ip).await.expect("link B");
    let track = Arc::new(
        TrackLocalStaticSample::new(
            Instant::now(),
            track_description(RtpCodecKind::Video, SSRC, "s", "video"),
        )
        .expect("track"),
    );
    a.pc()
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await
        .expect("add track");
    let facing_b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let facing_a = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let port = |s: &UdpSocket| s.local_addr().expect("addr").port();
    let offer = a.create_offer().await.expect("offer");
    let a_addr = SocketAddr::new(ip, candidate_port(&offer));
    let answer = b
        .answer(with_candidate_port(&offer, port(&facing_b)))
        .await
        .expect("answer");
    let b_addr = SocketAddr::new(ip, candidate_port(&answer));
    let dropped = Arc::new(AtomicU64::new(0));
    let proxy = [
        pump(
            Arc::clone(&facing_a),
            Arc::clone(&facing_b),
            b_addr,
            true,
            Arc::clone(&dropped),
        ),
        pump(
            Arc::clone(&facing_b),
            Arc::clone(&facing_a),
            a_addr,
            false,
            Arc::clone(&dropped),
        ),
    ];
    a.apply_answer(with_candidate_port(&answer, port(&facing_a)))
        .await
        .expect("apply answer");
    loop {
        match a_signals.recv().await {
            Some(LinkSignal::State(RTCPeerConnectionState::Connected)) => break,
            Some(_) => {}
            None => panic!("A closed before connecting"),
        }
    }
    // A long fixed wait: whatever the machine's load, a repair comes within it,
    // so what is checked is that repairs are used, not how fast they come.
    let wait = Duration::from_secs(2);
    let mut receiver = Receiver::new(true).with_jitter(JitterConfig {
        min_wait: wait,
        max_wait: wait,
        initial_wait: wait,
        ..JitterConfig::default()
    });
    // The frame log says why each frame that was not decoded was dropped.
    let frames = super::super::frame_log::FrameLog::enabled_for_tests();
    receiver.frames = frames.clone();
    let stats = Arc::clone(&receiver.stats);
    let receiving = tokio::spawn(async move {
        loop {
            match b_signals.recv().await {
                Some(LinkSignal::Track(track)) => break receiver.run_track(track).await,
                Some(_) => {}
                None => panic!("B closed before a track arrived"),
            }
        }
    });

    // 3 s of 320x240 at 30 fps, paced like a camera. Small pictures keep
    // encoding and decoding cheap: this test shares 2 cores with the rest of
    // the library's tests, and a starved decoder or a late resend is load,
    // not what the test is about.
    let mut source = SyntheticVideo::new(320, 240, 30);
    let mut encoder = H264Encoder::new(320, 240, 30, 400_000).expect("encoder");
    let interval = Duration::from_millis(33);
    let start = Instant::now();
    for i in 0..FRAMES {
        let frame = source.next_frame().expect("frame").expect("a frame");
        // A keyframe every half second, as the subscriber's PLIs would get
        // from a real publisher (this sender does not read them): a frame
        // the loaded decoder could not take then costs at most 15 frames, and
        // a buffer that drops each frame with a gap still loses a third or more.
        let encoded = encoder.encode(&frame, i % 15 == 0).expect("encode");
        let sample = Sample {
            data: Bytes::from(encoded.data),
            duration: interval,
            ..Sample::new(Instant::now())
        };
        track
            .write_sample(SSRC, H264_PAYLOAD_TYPE, &sample, &[])
            .await
            .expect("write_sample");
        tokio::time::sleep_until((start + interval * (i as u32 + 1)).into()).await;
    }
    // The last frame may end in a loss nothing after it reveals.
    let lock = |s: &Mutex<super::super::stats::StreamStats>| {
        s.lock().unwrap_or_else(|e| e.into_inner()).clone()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while lock(&stats).frames_decoded + lock(&stats).frames_dropped < FRAMES - 1
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
    }
    let got = lock(&stats);
    let dropped = dropped.load(Ordering::Relaxed);
    eprintln!(
        "decoded {} dropped {} keyframe requests {}, repaired {} given up {}; \
         proxy dropped {dropped} packets",
        got.frames_decoded,
        got.frames_dropped,
        got.keyframe_requests,
        got.video_repaired,
        got.video_given_up
    );
    assert!(dropped >= 5, "the proxy dropped only {dropped} packets");
    // Every dropped packet came back and filled its gap (but perhaps the
    // last, which no later packet reveals, and one resend that a loaded
    // machine delivered after the buffer's wait). A buffer that gives up at
    // the first gap repairs none.
    assert!(
        got.video_repaired + 2 >= dropped,
        "{} repaired of {dropped} dropped",
        got.video_repaired
    );
    assert!(
        got.video_given_up <= 1,
        "{} packets given up on",
        got.video_given_up
    );
    // A subscriber that drops the frame on a gap loses one frame per
    // dropped packet as incomplete (and the frames up to the next
    // keyframe); here at most the last one may be.
    use super::super::frame_log::{DropReason, FrameOutcome};
    let records = frames.snapshot();
    let dropped_for = |reason: DropReason| {
        records
            .iter()
            .filter(|f| f.outcome == FrameOutcome::Dropped(reason))
            .count()
    };
    let incomplete = dropped_for(DropReason::Incomplete);
    let behind = dropped_for(DropReason::DecoderBehind) + dropped_for(DropReason::DecodeError);
    eprintln!(
        "frame log: {} frames, {incomplete} incomplete, {behind} dropped by a busy decoder",
        records.len()
    );
    assert!(incomplete <= 1, "{incomplete} frames lost to gaps");
    // Each loss costs the frames up to the next keyframe, so a buffer that
    // gives up at gaps decodes two thirds or fewer. The decoder shares the
    // media pool with the other tests of this binary: when it fell behind
    // (its queue was full), the count measures the load, not the buffer.
    // A packet given up on (allowed above, once) costs the frames up to the
    // next keyframe, two keyframe intervals if it was a keyframe's: then too
    // the count measures the load.
    if behind == 0 && got.video_given_up == 0 {
        assert!(
            got.frames_decoded >= FRAMES * 2 / 3,
            "decoded {} of {FRAMES}",
            got.frames_decoded
        );
    }
    for task in proxy.into_iter().flatten() {
        task.abort();
    }
    a.close().await;
    b.close().await;
    receiving.abort();
}

/// Padding-only packets between and inside access units (a browser probing
/// its bandwidth sends hundreds a second on its lowest simulcast layer) break
/// nothing: before, each one started a "unit" that failed to depacketize and
/// was reported dropped.
#[test]
fn padding_only_packets_are_part_of_no_picture() {
    fn packet(ts: u32, marker: bool, payload: &'static [u8]) -> rtc::rtp::Packet {
        let mut p = rtc::rtp::Packet::default();
        p.header.timestamp = ts;
        p.header.marker = marker;
        p.payload = Bytes::from_static(payload);
        p
    }
    const IDR: &[u8] = &[0x65, 0x88, 0x84];
    const SLICE: &[u8] = &[0x41, 0x9a, 0x02];
    let mut assembler = super::UnitAssembler::default();
    let mut complete = Vec::new();
    let mut dropped = 0;
    for p in [
        packet(1000, true, IDR),
        packet(1000, false, &[]), // padding after the unit, its timestamp
        packet(1000, false, &[]),
        packet(4000, false, SLICE),
        packet(4000, false, &[]), // padding inside a unit
        packet(4000, true, SLICE),
        packet(7000, false, SLICE),
        packet(7000, true, &[]), // an empty packet that ends the unit
    ] {
        let out = assembler.packet(&p);
        dropped += u32::from(out.dropped);
        if let Some(unit) = out.complete {
            complete.push((out.timestamp, unit.len()));
        }
    }
    assert_eq!(dropped, 0, "no unit broken by padding");
    let timestamps: Vec<_> = complete.iter().map(|(ts, _)| *ts).collect();
    assert_eq!(timestamps, [1000, 4000, 7000]);
    // Each unit is its slices (Annex B start code + NAL), nothing more.
    assert_eq!(complete[1].1, 2 * (4 + SLICE.len()));
}
