//! How much loss the publisher's Opus encoder plans for (issue 10 §3).
//!
//! libopus adds in-band FEC (a low-rate copy of the previous frame) only when
//! told to expect loss, and sizes it by the packet-loss percentage it is
//! given. One Opus stream serves every subscriber, so the percentage is the
//! worst of the publisher's uplink loss (its congestion controller's average)
//! and the worst subscriber's downlink loss (the server's `downlink-loss`
//! event), bounded to [`MIN_EXPECTED_LOSS_PERCENT`]..=
//! [`MAX_EXPECTED_LOSS_PERCENT`]: a little FEC stays on for a loss burst
//! the reports have not shown yet, and no value, however absurd, makes the
//! encoder spend most of its bits on FEC. Until anything is known, the
//! encoder's default ([`crate::media::opus_codec::EXPECTED_LOSS_PERCENT`])
//! stands.

use crate::media::opus_codec::EXPECTED_LOSS_PERCENT;

/// The least loss planned for once reports exist, percent.
pub const MIN_EXPECTED_LOSS_PERCENT: u8 = 2;
/// The most loss planned for, percent (libopus accepts up to 100; beyond
/// ~30 % FEC takes most of a 32 kbit/s voice stream's bits).
pub const MAX_EXPECTED_LOSS_PERCENT: u8 = 30;

/// The percentage to give Opus for an `uplink` loss fraction (0–1, `None`:
/// unknown) and the worst `downlink` loss in percent (`None`: not reported).
/// Out-of-range and non-finite inputs are clamped or ignored.
pub fn expected_loss_percent(uplink: Option<f64>, downlink: Option<u8>) -> u8 {
    let uplink = uplink
        .filter(|l| l.is_finite())
        .map(|l| (l.clamp(0.0, 1.0) * 100.0).round() as u8);
    let downlink = downlink.map(|d| d.min(100));
    match uplink.max(downlink) {
        None => u8::try_from(EXPECTED_LOSS_PERCENT).unwrap_or(MAX_EXPECTED_LOSS_PERCENT),
        Some(worst) => worst.clamp(MIN_EXPECTED_LOSS_PERCENT, MAX_EXPECTED_LOSS_PERCENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_of_uplink_and_downlink_counts() {
        assert_eq!(expected_loss_percent(None, None), 10, "the default");
        assert_eq!(expected_loss_percent(Some(0.05), None), 5);
        assert_eq!(expected_loss_percent(Some(0.05), Some(20)), 20);
        assert_eq!(expected_loss_percent(Some(0.12), Some(3)), 12);
        assert_eq!(expected_loss_percent(None, Some(7)), 7);
    }

    #[test]
    fn absurd_values_are_bounded() {
        assert_eq!(
            expected_loss_percent(Some(0.0), Some(0)),
            MIN_EXPECTED_LOSS_PERCENT
        );
        assert_eq!(
            expected_loss_percent(None, Some(255)),
            MAX_EXPECTED_LOSS_PERCENT
        );
        assert_eq!(
            expected_loss_percent(None, Some(100)),
            MAX_EXPECTED_LOSS_PERCENT
        );
        assert_eq!(
            expected_loss_percent(Some(7.5), None),
            MAX_EXPECTED_LOSS_PERCENT
        );
        assert_eq!(
            expected_loss_percent(Some(-3.0), None),
            MIN_EXPECTED_LOSS_PERCENT
        );
        assert_eq!(expected_loss_percent(Some(f64::NAN), None), 10, "ignored");
        assert_eq!(expected_loss_percent(Some(f64::INFINITY), Some(4)), 4);
    }
}
