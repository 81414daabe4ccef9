//! A leg's simulcast layer, chosen by its subscriber or by the hub
//! (`auto`, [`crate::server::sfu::downlink`]): the commands that set it and
//! the receiver reports that drive the `auto` choice.

use std::time::Instant;

use rtc::rtcp::receiver_report::ReceiverReport;

use super::LegSource;
use super::leg::{Leg, LegState};
use crate::server::inbox::LinkState;
use crate::server::sfu::downlink::{AutoLayer, Choice, Report};
use crate::server::sfu::downlink_gcc::DownlinkEstimate;

/// What a subscriber asked of a layered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerTarget {
    /// This slot.
    Slot(u8),
    /// The hub's choice, starting from this slot.
    Auto(u8),
}

impl Leg {
    /// The subscriber's layer request.
    pub fn set_layer_target(&mut self, target: LayerTarget) {
        let slot = match target {
            LayerTarget::Slot(slot) => {
                self.auto = None;
                self.set_video_paused(false);
                slot
            }
            LayerTarget::Auto(slot) => {
                if self.auto.is_some() {
                    return; // auto already: its choice stands
                }
                self.auto = Some(AutoLayer::new(slot));
                slot
            }
        };
        self.switch_layer(slot);
    }

    /// Wants `slot`, asking the publisher for its keyframe if a switch waits.
    /// The publisher hears that the slot is wanted first (`sfu::wanted`): a
    /// layer nobody watched starts with the keyframe the switch waits for.
    fn switch_layer(&mut self, slot: u8) {
        let waits = self.layers.set_target(slot);
        self.update_wanted();
        if waits && let LegSource::Stream(media) = &self.source {
            media.request_keyframe_on(slot);
        }
    }

    /// Tells the stream which layers this leg needs now: its current and
    /// target layer, or all of them in `auto` (`sfu::wanted::leg_wants`).
    /// Called when the target is set and when a switch completes.
    pub(super) fn update_wanted(&self) {
        if let LegSource::Stream(media) = &self.source {
            let mask = crate::server::sfu::wanted::leg_wants(
                self.layers.current(),
                self.layers.target(),
                self.auto.is_some(),
            );
            media.want_layers(self.link_id, mask);
        }
    }

    /// Pauses or resumes the leg's video for `auto` (the subscriber's own
    /// wish, `set_forwarding`, is kept apart in [`Leg::video_paused`]).
    fn set_video_paused(&mut self, paused: bool) {
        if self.video_paused == paused {
            return;
        }
        self.video_paused = paused;
        if let LegState::Answered(tracks) | LegState::Connected(tracks, _) = &mut self.state
            && let Some(video) = tracks.video.as_mut()
        {
            if paused {
                video.rewriter.pause();
            }
            video.paused = paused;
        }
    }

    /// RTCP from the subscriber: its receiver reports drive an `auto` leg
    /// (unless its TWCC feedback does, `twcc_leg.rs`).
    pub fn on_rtcp_for_layers(&mut self, packets: &[Box<dyn rtc::rtcp::Packet>], now: Instant) {
        if self.auto.is_none()
            || self
                .twcc
                .as_ref()
                .is_some_and(|t| t.downlink.estimate().is_some())
        {
            return;
        }
        let Some(video_ssrc) = self.connected_video_ssrc() else {
            return;
        };
        let lost = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<ReceiverReport>())
            .flat_map(|rr| rr.reports.iter())
            .find(|r| r.ssrc == video_ssrc)
            .map(|r| r.fraction_lost);
        if let Some(fraction_lost) = lost {
            self.auto_report(now, fraction_lost, None);
        }
    }

    /// TWCC feedback came: `auto` weighs the layers against its estimate.
    pub fn auto_from_twcc(&mut self, now: Instant) {
        let Some(estimate) = self.twcc.as_ref().and_then(|t| t.downlink.estimate()) else {
            return;
        };
        if self.auto.is_none() || self.connected_video_ssrc().is_none() {
            return;
        }
        let fraction_lost = (estimate.loss * 256.0).clamp(0.0, 255.0) as u8;
        self.auto_report(now, fraction_lost, Some(estimate));
    }

    fn connected_video_ssrc(&self) -> Option<u32> {
        match &self.state {
            LegState::Connected(tracks, _) => tracks.video.as_ref().map(|t| t.ssrc),
            _ => None,
        }
    }

    fn auto_report(&mut self, now: Instant, fraction_lost: u8, twcc: Option<DownlinkEstimate>) {
        let probe_passed = self.probe_passed();
        let probe_drain = self.probe_draining(now);
        let Some(auto) = self.auto.as_mut() else {
            return;
        };
        let LegSource::Stream(media) = &self.source else {
            return;
        };
        let report = Report {
            now,
            fraction_lost,
            sent_bytes: self.counters.bytes,
            layer_bytes: media.layer_bytes(),
            twcc_bps: twcc.map(|e| e.bps),
            video_sent_bytes: Some(self.counters.video_bytes),
            probe_passed,
            probe_drain,
            switch_waits: self.layers.target() != self.layers.current(),
            switched_at: self.layers.switched_at(),
        };
        let changed = auto.on_report(report);
        let probe = auto.probe_request();
        tracing::debug!(
            link = self.link_id.0,
            fraction_lost,
            estimate_bps = auto.estimate_bps(),
            ?twcc,
            choice = ?auto.choice(),
            "auto layer report"
        );
        let Some(choice) = changed else {
            if let Some(request) = probe {
                self.start_probe(now, request);
            }
            return;
        };
        tracing::info!(
            link = self.link_id.0,
            estimate_bps = auto.estimate_bps(),
            ?choice,
            "auto layer changed"
        );
        self.cancel_probe(now);
        match choice {
            Choice::Layer(slot)
                if slot > self.layers.current() && congested(fraction_lost, twcc) =>
            {
                // Down because the path queues or loses: the larger layer
                // stops at once so the queue drains before the smaller
                // layer's keyframe (`sfu::layers`), asked for now.
                self.set_video_paused(false);
                let waits = self.layers.step_down_now(slot);
                self.update_wanted();
                if waits && let LegSource::Stream(media) = &self.source {
                    media.request_keyframe_urgently_on(slot);
                }
            }
            Choice::Layer(slot) => {
                self.set_video_paused(false);
                self.switch_layer(slot);
                if let LegSource::Stream(media) = &self.source {
                    media.request_keyframe_on(slot);
                }
            }
            Choice::Paused => self.set_video_paused(true),
        }
        self.report(LinkState::Layer(match choice {
            Choice::Layer(slot) => Some(slot),
            Choice::Paused => None,
        }));
    }
}

/// Whether the report behind a step down shows the path full (loss, or
/// with TWCC a standing queue) rather than an estimate that merely fell
/// short: then the larger layer is cut at once (`sfu::layers`).
fn congested(fraction_lost: u8, twcc: Option<DownlinkEstimate>) -> bool {
    use crate::server::sfu::downlink_gcc::{LOSS_LOW, QUEUE_LOW};
    let loss = f64::from(fraction_lost) / 256.0;
    loss > LOSS_LOW || twcc.is_some_and(|e| e.queue_ms >= QUEUE_LOW)
}

impl Drop for Leg {
    /// An ended leg wants no layer of its stream any more.
    fn drop(&mut self) {
        if let LegSource::Stream(media) = &self.source {
            media.unwant_layers(self.link_id);
        }
    }
}
