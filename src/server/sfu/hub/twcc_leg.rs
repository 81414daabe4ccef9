//! A leg's transport-wide congestion control (issue 10 §2): negotiating the
//! extension, stamping what the leg seals, and the subscriber's feedback
//! into the leg's downlink estimate and its `auto` layer choice.
//!
//! * The leg's offer carries `a=extmap:N …transport-wide-cc-extensions-01`
//!   and `a=rtcp-fb:* transport-cc` for video and audio ([`register`]); N is
//!   the one the answer keeps (the leg's own, never the publisher's).
//! * A leg gets its [`LegTwcc`] when it connects sealing its own media
//!   ([`super::leg::Egress::Direct`]) and the answer kept the extension; a
//!   leg sending through its core, or whose subscriber declined, goes on
//!   with the loss-based `auto` (`downlink.rs`).
//! * Feedback ([`TransportLayerCc`], passed up by the leg's `RtcpTap`) goes
//!   through [`EgressTwcc::on_feedback`] into [`DownlinkGcc`]; feedback that
//!   contradicts itself is counted in the leg's `twcc_malformed` and
//!   dropped: nothing else about the leg, or any other, changes.

use std::time::Instant;

use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind, TYPE_RTCP_FB_TRANSPORT_CC,
};
use rtc::sdp::extmap::TRANSPORT_CC_URI;

use super::leg::Leg;
use super::twcc::EgressTwcc;
use crate::server::sfu::downlink_gcc::DownlinkGcc;

/// Offers transport-wide cc (extension and feedback) on both kinds.
pub fn register(media: &mut MediaEngine) -> rtc::shared::error::Result<()> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        media.register_feedback(
            RTCPFeedback {
                typ: TYPE_RTCP_FB_TRANSPORT_CC.to_owned(),
                ..Default::default()
            },
            kind,
        );
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    Ok(())
}

/// A leg's numbering and downlink estimate.
pub struct LegTwcc {
    numbers: EgressTwcc,
    /// The estimate its feedback drives.
    pub downlink: DownlinkGcc,
    /// Its probes before `auto` steps up (`probe_leg.rs`).
    pub prober: crate::server::sfu::probe::Prober,
}

impl LegTwcc {
    /// Numbers a packet of `size` bytes on the wire leaving at `now`:
    /// `(extension id, number)` for [`super::direct::DirectEgress::seal_stamped`].
    #[inline]
    pub fn stamp(&mut self, now: Instant, size: usize) -> (u8, u16) {
        (self.numbers.ext_id(), self.numbers.stamp(now, size))
    }

    /// The packet numbered `number` goes out again at `now` under it.
    pub fn resent(&mut self, number: u16, now: Instant) -> (u8, u16) {
        self.numbers.resent(number, now);
        (self.numbers.ext_id(), number)
    }
}

impl Leg {
    /// The leg's [`LegTwcc`] if its answer kept the extension (one id for
    /// the bundle: the media engine gives a URI one id on every kind).
    pub fn negotiated_twcc(&mut self) -> Option<Box<LegTwcc>> {
        let id = self
            .pc
            .rtp_sender(self.any_sender)?
            .get_parameters()
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == TRANSPORT_CC_URI)
            .map(|e| e.id)?;
        let numbers = EgressTwcc::new(id, Instant::now()).or_else(|| {
            tracing::warn!(link = self.link_id.0, id, "TWCC extension id unusable");
            None
        })?;
        tracing::debug!(
            link = self.link_id.0,
            id,
            "egress leg numbers its packets (TWCC)"
        );
        Some(Box::new(LegTwcc {
            numbers,
            downlink: DownlinkGcc::default(),
            prober: Default::default(),
        }))
    }

    /// Transport-wide feedback among the subscriber's RTCP: into the
    /// downlink estimate, then `auto`'s choice (`auto.rs`).
    pub fn on_twcc_feedback(&mut self, packets: &[Box<dyn rtc::rtcp::Packet>], now: Instant) {
        let mut took = false;
        for feedback in packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<TransportLayerCc>())
        {
            let Some(twcc) = self.twcc.as_mut() else {
                // Not negotiated, or not sealing directly: nothing of ours.
                self.counters.twcc_malformed += 1;
                continue;
            };
            match twcc.numbers.on_feedback(feedback) {
                Ok(reports) => {
                    self.counters.twcc_feedback += 1;
                    twcc.downlink.on_reports(now, &reports);
                    took = true;
                }
                Err(why) => {
                    self.counters.twcc_malformed += 1;
                    tracing::debug!(link = self.link_id.0, ?why, "TWCC feedback ignored");
                }
            }
        }
        if took {
            self.probe_feedback(now);
            self.auto_from_twcc(now);
        }
    }
}
