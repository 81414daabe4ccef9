//! The RTP and transport counters webrtc-rs keeps for one peer connection
//! (`get_stats`), reduced to plain numbers so the layers above never see
//! webrtc's stats types.
//!
//! What webrtc-rs 0.21.1 fills in: per outbound RTP stream, packets and bytes
//! sent and the NACK, PLI and FIR it received; per inbound RTP stream,
//! packets and bytes received and the NACK and PLI it sent; per transport,
//! every datagram and byte; per ICE candidate pair, the consent checks'
//! round-trip time. Loss, jitter and RTT from RTCP reports it leaves at zero:
//! those come from [`super::rtcp_stats`].

use std::time::Instant;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::peer_connection::{PeerConnection, RTCStatsReportEntry, StatsSelector};

/// One RTP stream's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpCounters {
    /// Its SSRC.
    pub ssrc: u32,
    /// Video (else audio).
    pub video: bool,
    /// RTP packets sent or received.
    pub packets: u64,
    /// RTP bytes, headers included.
    pub bytes: u64,
    /// NACKs received (outbound) or sent (inbound).
    pub nack_count: u64,
    /// PLIs and FIRs received (outbound) or sent (inbound).
    pub pli_count: u64,
}

/// Counters of one peer connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkCounters {
    /// Datagrams and bytes of the whole transport (media, RTCP, ICE, DTLS).
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Datagrams received.
    pub packets_received: u64,
    /// The selected candidate pair's latest consent-check RTT, ms.
    pub ice_rtt_ms: Option<f64>,
    /// What this connection sends, by SSRC.
    pub outbound: Vec<RtpCounters>,
    /// What it receives, by SSRC.
    pub inbound: Vec<RtpCounters>,
}

/// Reads `pc`'s counters now.
pub async fn read(pc: &dyn PeerConnection) -> LinkCounters {
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    let mut counters = LinkCounters::default();
    let mut pair_bytes = (0, 0, 0, 0);
    if let Some(transport) = report.transport() {
        counters.bytes_sent = transport.bytes_sent;
        counters.bytes_received = transport.bytes_received;
        counters.packets_sent = transport.packets_sent;
        counters.packets_received = transport.packets_received;
        if let Some(RTCStatsReportEntry::IceCandidatePair(pair)) =
            report.get(&transport.selected_candidate_pair_id)
        {
            counters.ice_rtt_ms =
                (pair.current_round_trip_time > 0.0).then_some(pair.current_round_trip_time * 1e3);
            pair_bytes = (
                pair.bytes_sent,
                pair.bytes_received,
                pair.packets_sent,
                pair.packets_received,
            );
        }
    }
    // Whichever of the two the library counted (both count every datagram).
    counters.bytes_sent = counters.bytes_sent.max(pair_bytes.0);
    counters.bytes_received = counters.bytes_received.max(pair_bytes.1);
    counters.packets_sent = counters.packets_sent.max(pair_bytes.2);
    counters.packets_received = counters.packets_received.max(pair_bytes.3);
    for out in report.outbound_rtp_streams() {
        let sent = &out.sent_rtp_stream_stats;
        counters.outbound.push(RtpCounters {
            ssrc: sent.rtp_stream_stats.ssrc,
            video: sent.rtp_stream_stats.kind == RtpCodecKind::Video,
            packets: sent.packets_sent,
            bytes: sent.bytes_sent + out.header_bytes_sent,
            nack_count: u64::from(out.nack_count),
            pli_count: u64::from(out.pli_count) + u64::from(out.fir_count),
        });
    }
    for inbound in report.inbound_rtp_streams() {
        let received = &inbound.received_rtp_stream_stats;
        counters.inbound.push(RtpCounters {
            ssrc: received.rtp_stream_stats.ssrc,
            video: received.rtp_stream_stats.kind == RtpCodecKind::Video,
            packets: received.packets_received,
            bytes: inbound.bytes_received + inbound.header_bytes_received,
            nack_count: u64::from(inbound.nack_count),
            pli_count: u64::from(inbound.pli_count) + u64::from(inbound.fir_count),
        });
    }
    counters.outbound.sort_by_key(|c| c.ssrc);
    counters.inbound.sort_by_key(|c| c.ssrc);
    counters
}
