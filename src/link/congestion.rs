//! Send-side congestion control of a publish link (issue 10 §1).
//!
//! The pieces are `rtc-interceptor` 0.21.1's, not ours: the TWCC sender numbers
//! every departing RTP packet (transport-wide-cc header extension, negotiated
//! in both directions by the library's defaults), the server's ingress link
//! (`register_default_interceptors`: TWCC receiver) reports arrivals back in
//! `TransportLayerCC` feedback, the congestion-control interceptor joins those
//! reports with its send history and drives the Google Congestion Control
//! estimator ([`Gcc`]), and the pacer releases packets at the estimate.
//!
//! What this module adds is only the seam to the application:
//! [`Observed`] wraps [`Gcc`] (delegating every call) and copies its estimate
//! and stats into a [`SendEstimate`] handle after each feedback, because the
//! chain boxes the estimator where nothing else can reach it.
//!
//! Invariants:
//! * The pacer runs at [`PACING_FACTOR`] × what the application sends
//!   ([`SendEstimate::set_sending`], the estimate bounded by the cap, the
//!   profile and what the path showed it carries), as libwebrtc paces
//!   at 2.5 × its target: a keyframe must not sit in the pacer for a whole
//!   second at exactly the target, nor leave in one burst at a multiple of an
//!   estimate that grew while the encoders sent less (the delay-based half
//!   does not bound it by the acknowledged rate). The factor is applied to
//!   what the estimator reports to the chain, so the library's own
//!   `target_bitrate` stat reads the pacing rate; the estimate proper is the
//!   one in [`SendEstimate`].
//! * The pacer's queue is bounded ([`PACER_QUEUE_PACKETS`]); it refuses what
//!   does not fit, and the encoder's frame budget keeps it from getting there.
//! * RTX packets (retransmissions and probe padding, [`super::probe_padding`])
//!   are numbered and recorded like media: the library's TWCC sender and
//!   send history know only the SSRCs they were bound with, and rtc 0.21.1
//!   binds a stream's primary SSRC alone, so both are wrapped in
//!   [`WithRtxSsrc`], which binds the RTX SSRC as well. Without it what
//!   arrives of a retransmission or a probe would never be acknowledged.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacerBuilder, PacketReport,
    Slot, TwccSenderBuilder,
};
use serde::Serialize;
use webrtc::peer_connection::Registry;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;

use super::acked_rate::{AckedRate, StandingQueue};
use super::probe_padding::PaddingRequest;

/// The pacer releases at this multiple of the estimate (libwebrtc: 2.5).
pub const PACING_FACTOR: f64 = 2.5;

/// Packets the pacer may hold before it refuses more: about two 720p
/// keyframes. At 2.5 × a 100 kbit/s floor that drains in under 4 s; in
/// practice the encoders' frame budget keeps it near empty.
pub const PACER_QUEUE_PACKETS: usize = 256;

/// How a publish link's estimator starts and where it is clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CongestionConfig {
    /// Estimate before any feedback, bit/s.
    pub initial_bps: f64,
    /// Floor of the estimate, bit/s.
    pub min_bps: f64,
    /// Ceiling of the estimate, bit/s.
    pub max_bps: f64,
}

impl Default for CongestionConfig {
    fn default() -> Self {
        Self {
            initial_bps: rtc::interceptor::GCC_INITIAL_BITRATE,
            min_bps: rtc::interceptor::GCC_MIN_BITRATE,
            max_bps: rtc::interceptor::GCC_MAX_BITRATE,
        }
    }
}

/// The uplink estimate as the application reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EstimateSnapshot {
    /// GCC's target: what the uplink is estimated to carry, bit/s.
    pub estimate_bps: f64,
    /// Its delay-based half, bit/s.
    pub delay_based_bps: Option<f64>,
    /// Its loss-based half, bit/s.
    pub loss_based_bps: Option<f64>,
    /// Loss fraction the loss half is averaging.
    pub loss: Option<f64>,
    /// Feedback reports (TWCC) the estimator has been handed.
    pub feedback: u64,
    /// Packets acknowledged in them.
    pub acknowledged_packets: u64,
    /// What the far end reported as arrived, bit/s, over the last
    /// [`super::acked_rate::ACKED_WINDOW`] of arrivals.
    pub acked_bps: Option<f64>,
    /// What left over the same window, bit/s (arrived or not).
    pub sent_bps: Option<f64>,
    /// The fraction of the packets sent over that window reported lost.
    pub recent_loss: Option<f64>,
    /// The standing queue on the path, ms ([`super::acked_rate::StandingQueue`]).
    pub queue_ms: Option<f64>,
}

#[derive(Default)]
struct Shared {
    snapshot: EstimateSnapshot,
    /// What the application's encoders target, bit/s.
    sending_bps: Option<f64>,
}

/// A link's shared view of its estimate (cloneable, cheap to read), and
/// the probe padding the application asks of it.
#[derive(Clone, Default)]
pub struct SendEstimate(Arc<Mutex<Shared>>, PaddingRequest);

impl SendEstimate {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Every critical section is a plain copy: a poisoned lock is consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest estimate.
    pub fn get(&self) -> EstimateSnapshot {
        self.lock().snapshot
    }

    /// What the application's encoders target now (bit/s): the pacer paces at
    /// [`PACING_FACTOR`] × this (the estimate until it is set).
    pub fn set_sending(&self, bps: f64) {
        self.lock().sending_bps = Some(bps);
    }

    /// The link's probe padding ([`super::probe_padding`]): what the
    /// application asks for, whether the link can pad, what it sent.
    pub fn padding(&self) -> &PaddingRequest {
        &self.1
    }
}

/// An interceptor that knows streams by SSRC, bound with each stream's RTX
/// SSRC too (see the module doc).
pub struct WithRtxSsrc<I>(pub I);

impl<I: Interceptor> WithRtxSsrc<I> {
    fn rtx_info(info: &StreamInfo) -> Option<StreamInfo> {
        info.ssrc_rtx.map(|ssrc| StreamInfo {
            ssrc,
            ssrc_rtx: None,
            ..info.clone()
        })
    }
}

impl<I: Interceptor> Protocol<TaggedPacket, TaggedPacket, ()> for WithRtxSsrc<I> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.0.handle_read(msg)
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.0.poll_read()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.0.handle_write(msg)
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.0.poll_write()
    }
    fn handle_event(&mut self, evt: ()) -> Result<(), Self::Error> {
        self.0.handle_event(evt)
    }
    fn poll_event(&mut self) -> Option<()> {
        self.0.poll_event()
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), Self::Error> {
        self.0.handle_timeout(now)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        self.0.poll_timeout()
    }
    fn close(&mut self) -> Result<(), Self::Error> {
        self.0.close()
    }
}

impl<I: Interceptor> Interceptor for WithRtxSsrc<I> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.0.bind_local_stream(info);
        if let Some(rtx) = Self::rtx_info(info) {
            self.0.bind_local_stream(&rtx);
        }
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.0.unbind_local_stream(info);
        if let Some(rtx) = Self::rtx_info(info) {
            self.0.unbind_local_stream(&rtx);
        }
    }
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.0.bind_remote_stream(info);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.0.unbind_remote_stream(info);
    }
}

/// [`Gcc`], with its results copied out to a [`SendEstimate`].
pub struct Observed {
    gcc: Gcc,
    out: SendEstimate,
    min_bps: f64,
    acked: AckedRate,
    queue: StandingQueue,
}

impl Observed {
    fn publish(&self, reports: usize) {
        let stats: EstimatorStats = self.gcc.stats();
        let mut shared = self.out.lock();
        let out = &mut shared.snapshot;
        out.estimate_bps = self.gcc.target_bitrate();
        out.delay_based_bps = stats.delay_based_bitrate;
        out.loss_based_bps = stats.loss_based_bitrate;
        out.loss = stats.packet_loss;
        out.acked_bps = self.acked.bps();
        out.sent_bps = self.acked.sent_bps();
        out.recent_loss = self.acked.loss();
        out.queue_ms = self.queue.ms();
        if reports > 0 {
            out.feedback += 1;
            out.acknowledged_packets += reports as u64;
        }
    }
}

impl BandwidthEstimator for Observed {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.gcc.on_reports(now, reports);
        self.acked.add(reports);
        self.queue.add(reports);
        self.publish(reports.len());
    }

    /// What the chain sees, so what the pacer paces at: see the module doc.
    fn target_bitrate(&self) -> f64 {
        let estimate = self.gcc.target_bitrate();
        // The application's total is the estimate bounded by the cap and the
        // profile, except where the path showed it carries more than GCC's
        // loss half says after a deep cut (`client::path_ceiling`): pacing
        // under it would queue here what the path would carry. While the
        // link fills a probe with padding it is paced at that rate.
        let base = self
            .out
            .lock()
            .sending_bps
            .map_or(estimate, |sending| sending.max(self.min_bps));
        base.max(f64::from(self.out.padding().fill_bps())) * PACING_FACTOR
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.gcc.handle_timeout(now);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.gcc.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

/// Adds the send side of congestion control to `registry` (the TWCC header
/// extension and feedback are already registered by the library's defaults)
/// and returns the handle its estimate is read through; `padding` is the
/// link's probe padding (the NACK responder sends it).
pub fn register(
    registry: Registry,
    config: CongestionConfig,
    padding: PaddingRequest,
) -> (Registry, SendEstimate) {
    let out = SendEstimate(Arc::default(), padding);
    let gcc = Gcc::new(config.initial_bps, config.min_bps, config.max_bps);
    let observed = Observed {
        gcc,
        out: out.clone(),
        min_bps: config.min_bps,
        acked: AckedRate::default(),
        queue: StandingQueue::default(),
    };
    observed.publish(0);
    let registry = registry
        .with(
            Slot::CongestionControl,
            WithRtxSsrc(CongestionControlBuilder::new(observed).build()),
        )
        .with(
            Slot::TwccSender,
            WithRtxSsrc(TwccSenderBuilder::new().build()),
        )
        .with(
            Slot::Pacer,
            PacerBuilder::new()
                .with_target_bitrate(
                    config.initial_bps.clamp(config.min_bps, config.max_bps) * PACING_FACTOR,
                )
                .with_queue_limit(PACER_QUEUE_PACKETS)
                .build(),
        );
    (registry, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_sees_the_pacing_rate_the_application_the_estimate() {
        let out = SendEstimate::default();
        let observed = Observed {
            gcc: Gcc::new(800_000.0, 100_000.0, 5_000_000.0),
            out: out.clone(),
            min_bps: 100_000.0,
            acked: AckedRate::default(),
            queue: StandingQueue::default(),
        };
        observed.publish(0);
        assert_eq!(out.get().estimate_bps, 800_000.0);
        assert_eq!(observed.target_bitrate(), 800_000.0 * PACING_FACTOR);
        assert_eq!(out.get().feedback, 0);
        // Paced after what the encoders send.
        out.set_sending(300_000.0);
        assert_eq!(observed.target_bitrate(), 300_000.0 * PACING_FACTOR);
        out.set_sending(10_000.0);
        assert_eq!(observed.target_bitrate(), 100_000.0 * PACING_FACTOR);
        // The application's total rules, also above the estimate (a path
        // that showed it carries more than GCC's loss half says).
        out.set_sending(1_000_000.0);
        assert_eq!(observed.target_bitrate(), 1_000_000.0 * PACING_FACTOR);
        assert_eq!(
            out.get().estimate_bps,
            800_000.0,
            "the estimate is not the pacing rate"
        );
    }

    /// rtc 0.21.1 binds a stream's primary SSRC alone: the library's TWCC
    /// sender would leave an RTX packet (a retransmission, probe padding)
    /// unnumbered, and the far end could never report it. Wrapped, both are
    /// numbered from the one transport-wide sequence.
    #[test]
    fn rtx_packets_are_numbered_like_media() {
        use rtc::interceptor::{AttributedPacket, Packet, RTPHeaderExtension};
        const TWCC_URI: &str =
            "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
        let info = StreamInfo {
            ssrc: 7,
            ssrc_rtx: Some(9),
            rtp_header_extensions: vec![RTPHeaderExtension {
                uri: TWCC_URI.into(),
                id: 5,
            }],
            ..StreamInfo::default()
        };
        let send = |twcc: &mut dyn Interceptor, ssrc: u32| {
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::Header {
                    version: 2,
                    ssrc,
                    ..Default::default()
                },
                payload: bytes::Bytes::from_static(&[0, 1, 2]),
            };
            twcc.handle_write(TaggedPacket {
                now: Instant::now(),
                transport: Default::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)),
            })
            .expect("write");
            match twcc.poll_write().expect("out").message.packet {
                Packet::Rtp(p) => p.header.get_extension(5).is_some(),
                _ => false,
            }
        };
        let mut plain = TwccSenderBuilder::new().build();
        plain.bind_local_stream(&info);
        assert!(send(&mut plain, 7));
        assert!(!send(&mut plain, 9), "the library alone skips the RTX SSRC");
        let mut wrapped = WithRtxSsrc(TwccSenderBuilder::new().build());
        wrapped.bind_local_stream(&info);
        assert!(send(&mut wrapped, 7));
        assert!(send(&mut wrapped, 9));
        wrapped.unbind_local_stream(&info);
        assert!(!send(&mut wrapped, 9));
    }
}
