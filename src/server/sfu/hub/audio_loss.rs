//! A leg's part in `sfu::downlink_loss`: the fraction lost its subscriber
//! reports for the leg's audio goes to the stream's tally, from which the
//! publisher hears the worst (for Opus in-band FEC).

use std::time::Instant;

use rtc::rtcp::receiver_report::ReceiverReport;

use super::LegSource;
use super::leg::{Leg, LegState};

impl Leg {
    /// RTCP from the subscriber: its receiver report blocks for the leg's
    /// audio SSRC count towards the stream's worst downlink loss.
    pub fn report_audio_loss(&self, packets: &[Box<dyn rtc::rtcp::Packet>], now: Instant) {
        let LegSource::Stream(media) = &self.source else {
            return;
        };
        let LegState::Connected(tracks, _) = &self.state else {
            return;
        };
        let Some(audio_ssrc) = tracks.audio.as_ref().map(|t| t.ssrc) else {
            return;
        };
        let lost = packets
            .iter()
            .filter_map(|p| p.as_any().downcast_ref::<ReceiverReport>())
            .flat_map(|rr| rr.reports.iter())
            .filter(|r| r.ssrc == audio_ssrc)
            .map(|r| r.fraction_lost)
            .max();
        if let Some(fraction_lost) = lost {
            media
                .downlink_loss()
                .report(self.link_id, fraction_lost, now);
        }
    }

    /// The leg ends: its loss no longer counts.
    pub fn forget_audio_loss(&self) {
        if let LegSource::Stream(media) = &self.source {
            media.downlink_loss().remove(self.link_id);
        }
    }
}
