//! Network quality (seed 001 `network-quality`): this client's uplink and
//! downlink on the seed's 0–6 scale, from loss, RTT, jitter and, for the
//! uplink, the congestion controller's estimate against what the stream
//! wants.
//!
//! The derivation is pure: [`quality`] takes one [`LinkSample`] (what was
//! measured over the last window) and grades each figure against the
//! thresholds below; the link is as good as its worst figure. The session
//! gathers the samples every [`NETWORK_QUALITY_INTERVAL`]
//! (`session/quality.rs`) and sends [`crate::client::RoomEvent::NetworkQuality`].
//!
//! Thresholds (the grade a figure reaches while below each bound; past the
//! last one it is [`NetworkQuality::VeryBad`]). Loss is the fraction lost in
//! the window, the figure users feel first; jitter is RFC 3550 interarrival
//! jitter of audio where there is audio (video's is inflated by the pacing
//! of a frame's packets), RTT the round trip to the server:
//!
//! | grade | loss | RTT | jitter | estimate / wanted |
//! |---|---|---|---|---|
//! | 1 excellent | < 1 % | < 150 ms | < 30 ms | ≥ 0.9 |
//! | 2 good | < 3 % | < 300 ms | < 60 ms | ≥ 0.7 |
//! | 3 poor | < 8 % | < 500 ms | < 120 ms | ≥ 0.45 |
//! | 4 bad | < 15 % | < 800 ms | < 250 ms | ≥ 0.25 |
//! | 5 very bad | otherwise | | | |
//!
//! Loss points from a LiveKit-style MOS table (`connectionquality/mos.go`
//! starts degrading at about 1–2 % loss); RTT and jitter from ITU-T G.114's
//! 150 ms one-way comfort bound, halved for a round trip to the edge only.

use std::time::Duration;

use serde::Serialize;

/// How often every client gets the event.
pub const NETWORK_QUALITY_INTERVAL: Duration = Duration::from_secs(2);

/// One direction's quality (seed `NetworkQualityInfo` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum NetworkQuality {
    /// 0: nothing measured (nothing sent or received yet).
    Unknown,
    /// 1: excellent.
    Excellent,
    /// 2: almost as good, the bit rate may be slightly lower.
    Good,
    /// 3: unsatisfactory, but communication is smooth.
    Poor,
    /// 4: communication is barely smooth.
    Bad,
    /// 5: very poor, communication is almost impossible.
    VeryBad,
    /// 6: disconnected, communication fails.
    Down,
}

impl NetworkQuality {
    /// The seed's number.
    pub const fn code(self) -> u8 {
        match self {
            NetworkQuality::Unknown => 0,
            NetworkQuality::Excellent => 1,
            NetworkQuality::Good => 2,
            NetworkQuality::Poor => 3,
            NetworkQuality::Bad => 4,
            NetworkQuality::VeryBad => 5,
            NetworkQuality::Down => 6,
        }
    }

    const fn from_grade(grade: usize) -> Self {
        match grade {
            1 => NetworkQuality::Excellent,
            2 => NetworkQuality::Good,
            3 => NetworkQuality::Poor,
            4 => NetworkQuality::Bad,
            _ => NetworkQuality::VeryBad,
        }
    }
}

/// What was measured on one direction over the last window. `None`: not
/// measured (that figure does not count).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkSample {
    /// Media flows (or should) in this direction: something is published
    /// (uplink) or subscribed and receiving (downlink). Without it the
    /// quality is unknown.
    pub active: bool,
    /// The connection to the server is down (reconnecting).
    pub disconnected: bool,
    /// Fraction of packets lost in the window, 0..1.
    pub loss: Option<f64>,
    /// Round trip to the server, ms.
    pub rtt_ms: Option<f64>,
    /// Interarrival jitter, ms.
    pub jitter_ms: Option<f64>,
    /// Uplink: the congestion estimate over the bit rate the stream wants
    /// (its profile's), 0.. (above 1: headroom).
    pub estimate_ratio: Option<f64>,
}

/// Upper bounds of grades 1–4 for loss (fraction).
const LOSS: [f64; 4] = [0.01, 0.03, 0.08, 0.15];
/// Upper bounds of grades 1–4 for RTT, ms.
const RTT_MS: [f64; 4] = [150.0, 300.0, 500.0, 800.0];
/// Upper bounds of grades 1–4 for jitter, ms.
const JITTER_MS: [f64; 4] = [30.0, 60.0, 120.0, 250.0];
/// Lower bounds of grades 1–4 for estimate / wanted.
const ESTIMATE_RATIO: [f64; 4] = [0.9, 0.7, 0.45, 0.25];

/// The grade (1–5) of a figure where lower is better.
fn grade_below(value: f64, bounds: &[f64; 4]) -> usize {
    bounds.iter().position(|&b| value < b).map_or(5, |i| i + 1)
}

/// The grade (1–5) of a figure where higher is better.
fn grade_above(value: f64, bounds: &[f64; 4]) -> usize {
    bounds.iter().position(|&b| value >= b).map_or(5, |i| i + 1)
}

/// The quality of one direction: [`NetworkQuality::Down`] while
/// disconnected, unknown when inactive or with nothing measured, else the
/// worst grade of its figures.
pub fn quality(sample: &LinkSample) -> NetworkQuality {
    if sample.disconnected {
        return NetworkQuality::Down;
    }
    if !sample.active {
        return NetworkQuality::Unknown;
    }
    let grades = [
        sample.loss.map(|l| grade_below(l, &LOSS)),
        sample.rtt_ms.map(|r| grade_below(r, &RTT_MS)),
        sample.jitter_ms.map(|j| grade_below(j, &JITTER_MS)),
        sample
            .estimate_ratio
            .map(|r| grade_above(r, &ESTIMATE_RATIO)),
    ];
    match grades.iter().flatten().max() {
        Some(&worst) => NetworkQuality::from_grade(worst),
        None => NetworkQuality::Unknown,
    }
}

/// Loss over a window from two cumulative (lost, expected) counts.
pub fn window_loss(before: (u64, u64), now: (u64, u64)) -> Option<f64> {
    let expected = now.1.checked_sub(before.1)?;
    let lost = now.0.saturating_sub(before.0);
    (expected > 0).then(|| (lost as f64 / expected as f64).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active() -> LinkSample {
        LinkSample {
            active: true,
            ..LinkSample::default()
        }
    }

    #[test]
    fn a_clean_link_is_excellent() {
        let s = LinkSample {
            loss: Some(0.0),
            rtt_ms: Some(2.0),
            jitter_ms: Some(5.0),
            estimate_ratio: Some(1.2),
            ..active()
        };
        assert_eq!(quality(&s), NetworkQuality::Excellent);
        assert_eq!(quality(&s).code(), 1);
    }

    #[test]
    fn loss_grades_the_link_step_by_step() {
        let at = |loss| {
            quality(&LinkSample {
                loss: Some(loss),
                ..active()
            })
            .code()
        };
        assert_eq!([0.005, 0.02, 0.05, 0.10, 0.20].map(at), [1, 2, 3, 4, 5]);
        // Bounds belong to the worse grade.
        assert_eq!(at(0.01), 2);
    }

    #[test]
    fn the_worst_figure_decides() {
        let s = LinkSample {
            loss: Some(0.0),
            rtt_ms: Some(600.0),   // grade 4
            jitter_ms: Some(50.0), // grade 2
            ..active()
        };
        assert_eq!(quality(&s), NetworkQuality::Bad);
        let starved = LinkSample {
            loss: Some(0.0),
            estimate_ratio: Some(0.3), // grade 4
            ..active()
        };
        assert_eq!(quality(&starved), NetworkQuality::Bad);
        let collapsed = LinkSample {
            estimate_ratio: Some(0.1),
            ..active()
        };
        assert_eq!(quality(&collapsed), NetworkQuality::VeryBad);
    }

    #[test]
    fn unknown_without_media_and_down_while_disconnected() {
        assert_eq!(quality(&LinkSample::default()), NetworkQuality::Unknown);
        assert_eq!(
            quality(&active()),
            NetworkQuality::Unknown,
            "nothing measured"
        );
        let down = LinkSample {
            disconnected: true,
            ..LinkSample::default()
        };
        assert_eq!(quality(&down).code(), 6);
    }

    #[test]
    fn window_loss_is_the_difference_of_cumulative_counts() {
        assert_eq!(window_loss((10, 100), (20, 200)), Some(0.1));
        assert_eq!(window_loss((10, 100), (10, 100)), None, "nothing expected");
        assert_eq!(window_loss((0, 200), (0, 100)), None, "counts went back");
    }
}
