//! A leg's downlink probes (`sfu::probe`): started when `auto` asks for one,
//! RTX padding paced out on the leg's timer, ended by its TWCC feedback.
//!
//! Only a leg that can say it harmlessly probes: one that seals its own
//! media, numbers it (TWCC) and whose subscriber kept RTX, so the padding
//! goes on the RTX SSRC (RFC 4588 §4: a padding-only packet there repairs
//! nothing and receivers drop it, browsers and our SDK alike), never on the
//! media stream's sequence numbers. Other legs step up as before.
//!
//! Probe packets are not counted in the leg's `bytes`: `auto` measures what
//! the leg carries besides its video from those, and padding is neither.

use std::time::Instant;

use bytes::Bytes;

use super::leg::{Egress, Leg, LegState};
use crate::server::sfu::downlink::ProbeRequest;
use crate::server::sfu::probe::{DRAIN, PADDING_BYTES, ProbeOutcome};

/// One padding-only payload: zeros, then the padding count (RFC 3550 §5.1:
/// the last octet says how many to remove, itself included).
static PADDING: [u8; PADDING_BYTES] = {
    let mut p = [0u8; PADDING_BYTES];
    p[PADDING_BYTES - 1] = PADDING_BYTES as u8;
    p
};

impl Leg {
    /// When the leg's probe wants its padding paced out next.
    pub fn probe_due(&self) -> Option<Instant> {
        self.twcc.as_ref().and_then(|t| t.prober.next_due())
    }

    /// `auto` asked for a probe: starts one if the leg can probe (module
    /// docs) and none runs or waits.
    pub(super) fn start_probe(&mut self, now: Instant, request: ProbeRequest) {
        if !self.can_probe() {
            return;
        }
        let Some(twcc) = self.twcc.as_mut() else {
            return;
        };
        let Some(estimate) = twcc.downlink.estimate() else {
            return;
        };
        if twcc
            .prober
            .start(now, request.target_bps, request.carried_bps, &estimate)
        {
            tracing::info!(
                link = self.link_id.0,
                target_bps = request.target_bps,
                carried_bps = request.carried_bps,
                "auto probe started"
            );
        }
    }

    /// The leg changed layer or left `auto`: a probe running stops.
    pub(super) fn cancel_probe(&mut self, now: Instant) {
        if let Some(twcc) = self.twcc.as_mut() {
            if twcc.prober.probing() {
                tracing::info!(
                    link = self.link_id.0,
                    "auto probe cancelled (layer changed)"
                );
            }
            twcc.prober.cancel(now);
        }
    }

    /// After a feedback went into the estimate: the probe's outcome, if it
    /// has one; a passed probe lifts the estimate.
    pub(super) fn probe_feedback(&mut self, now: Instant) {
        let Some(twcc) = self.twcc.as_mut() else {
            return;
        };
        let Some(estimate) = twcc.downlink.estimate() else {
            return;
        };
        let Some(outcome) = twcc.prober.on_feedback(now, &estimate) else {
            return;
        };
        match outcome {
            ProbeOutcome::Passed(bps) => twcc.downlink.probe_passed(bps),
            ProbeOutcome::Failed => twcc
                .downlink
                .probe_failed(twcc.prober.before_bps(), now + DRAIN),
        }
        tracing::info!(
            link = self.link_id.0,
            ?outcome,
            queue_ms = estimate.queue_ms,
            loss = estimate.loss,
            acked_bps = estimate.acked_bps,
            probe_packets = self.counters.probe_packets,
            "auto probe ended"
        );
    }

    /// Whether a probe runs or a failed one's queue drains (`auto` holds).
    pub(super) fn probe_draining(&self, now: Instant) -> bool {
        self.twcc.as_ref().is_some_and(|t| t.prober.draining(now))
    }

    /// On a leg that can probe, whether a probe passed since its last
    /// layer change (`auto` steps up only then); `None` on other legs.
    pub(super) fn probe_passed(&self) -> Option<bool> {
        let twcc = self.twcc.as_ref().filter(|_| self.can_probe())?;
        Some(twcc.prober.passed_since_change())
    }

    fn can_probe(&self) -> bool {
        let LegState::Connected(tracks, Egress::Direct { .. }) = &self.state else {
            return false;
        };
        self.twcc.is_some() && tracks.video.as_ref().is_some_and(|v| v.rtx.is_some())
    }

    /// Sends the padding the running probe owes by `now`: padding-only
    /// packets on the video's RTX stream, numbered (TWCC) like any packet.
    pub fn send_probe_padding(&mut self, now: Instant) {
        let Some(twcc) = self.twcc.as_mut() else {
            return;
        };
        let packets = twcc.prober.padding_due(now);
        if packets == 0 {
            return;
        }
        let LegState::Connected(tracks, Egress::Direct { srtp, .. }) = &mut self.state else {
            return;
        };
        let Some(video) = tracks.video.as_mut() else {
            return;
        };
        let Some(rtx) = video.rtx.as_mut() else {
            return;
        };
        for _ in 0..packets {
            let mut packet = rtx.padding(Bytes::from_static(&PADDING));
            let len = 12 + PADDING_BYTES;
            let stamp = twcc.stamp(now, len + super::fanout::TWCC_OVERHEAD);
            if let Some(datagram) = srtp.seal_padded(&mut packet, Some(stamp)) {
                self.pending.push(datagram);
                self.counters.probe_packets += 1;
            }
        }
    }
}
