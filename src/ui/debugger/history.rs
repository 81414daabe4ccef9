//! The debugger's time series: one bounded ring of `(t, value)` points per
//! scope (a stream's link, or all links) and metric.
//!
//! Invariants: a ring never holds more than [`HISTORY_POINTS`] points (15
//! minutes at one sample a second), so memory is flat however long a session
//! runs; points are pushed in time order; counters (NACKs, PLIs, …) are kept
//! as per-second rates of their cumulative values, so a restarted counter
//! (a stream published again) gives no negative rate.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Points kept per series: 15 minutes at one sample a second.
pub const HISTORY_POINTS: usize = 900;

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Metric {
    /// kbit/s.
    Bitrate,
    /// frames/s.
    FrameRate,
    /// Frame width, px.
    Width,
    /// Frame height, px.
    Height,
    /// Round-trip time, ms.
    Rtt,
    /// Packet loss, %.
    Loss,
    /// Interarrival jitter, ms.
    Jitter,
    /// NACKs per second.
    Nacks,
    /// PLIs (keyframe requests) per second.
    Plis,
    /// Packets repaired late (retransmissions) per second.
    Retransmissions,
    /// Decode time per frame, ms.
    DecodeTime,
    /// Frames dropped per second.
    FramesDropped,
    /// Freezes per second.
    Freezes,
    /// The uplink bandwidth estimate, kbit/s.
    BandwidthEstimate,
    /// What the encoder targets, kbit/s.
    TargetBitrate,
    /// Glass-to-glass latency of stamped streams, ms.
    GlassToGlass,
}

impl Metric {
    /// Every metric, in the order the plots show them.
    pub const ALL: [Metric; 16] = [
        Metric::Bitrate,
        Metric::BandwidthEstimate,
        Metric::TargetBitrate,
        Metric::FrameRate,
        Metric::Width,
        Metric::Height,
        Metric::Rtt,
        Metric::Loss,
        Metric::Jitter,
        Metric::Nacks,
        Metric::Plis,
        Metric::Retransmissions,
        Metric::DecodeTime,
        Metric::FramesDropped,
        Metric::Freezes,
        Metric::GlassToGlass,
    ];

    /// Title with its unit.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Bitrate => "bitrate (kbit/s)",
            Metric::FrameRate => "frame rate (fps)",
            Metric::Width => "width (px)",
            Metric::Height => "height (px)",
            Metric::Rtt => "RTT (ms)",
            Metric::Loss => "loss (%)",
            Metric::Jitter => "jitter (ms)",
            Metric::Nacks => "NACKs (/s)",
            Metric::Plis => "PLIs (/s)",
            Metric::Retransmissions => "retransmissions (/s)",
            Metric::DecodeTime => "decode time (ms/frame)",
            Metric::FramesDropped => "frames dropped (/s)",
            Metric::Freezes => "freezes (/s)",
            Metric::BandwidthEstimate => "bandwidth estimate (kbit/s)",
            Metric::TargetBitrate => "target bitrate (kbit/s)",
            Metric::GlassToGlass => "glass-to-glass (ms)",
        }
    }
}

/// A bounded series of `[t, value]` points, `t` in seconds since the session
/// started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ring {
    points: VecDeque<[f64; 2]>,
}

impl Ring {
    /// Appends a point, dropping the oldest when full.
    pub fn push(&mut self, t: f64, value: f64) {
        if self.points.len() >= HISTORY_POINTS {
            self.points.pop_front();
        }
        self.points.push_back([t, value]);
    }

    /// The points, oldest first.
    pub fn points(&self) -> &VecDeque<[f64; 2]> {
        &self.points
    }

    /// The newest value.
    pub fn last(&self) -> Option<f64> {
        self.points.back().map(|p| p[1])
    }

    /// Drops points beyond the bound (a file written by hand may hold more).
    fn trim(&mut self) {
        while self.points.len() > HISTORY_POINTS {
            self.points.pop_front();
        }
    }
}

/// The series of one scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// By metric.
    pub series: BTreeMap<Metric, Ring>,
    /// Last cumulative value of each counter, with its time.
    #[serde(skip)]
    counters: BTreeMap<&'static str, (f64, f64)>,
}

/// Every series of a session, by scope name (sorted: stable on screen).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// By scope (`sent video #7`, `received video #9 (alice)`, `all links`).
    pub scopes: BTreeMap<String, Scope>,
    /// Time of the newest sample, s.
    pub last_t: f64,
}

impl History {
    /// Records a gauge.
    pub fn push(&mut self, scope: &str, metric: Metric, t: f64, value: f64) {
        if !value.is_finite() {
            return;
        }
        self.last_t = self.last_t.max(t);
        self.scope(scope)
            .series
            .entry(metric)
            .or_default()
            .push(t, value);
    }

    /// Records a cumulative counter as its rate per second since the previous
    /// sample (the first sample gives no point; a counter that went back
    /// starts over).
    pub fn push_counter(&mut self, scope: &str, metric: Metric, t: f64, cumulative: f64) {
        if let Some(rate) = self.delta(scope, counter_key(metric), t, cumulative) {
            self.push(scope, metric, t, rate.0 / rate.1);
        }
    }

    /// Records `Δnumerator / Δdenominator` between samples (decode time per
    /// frame); nothing when the denominator did not move.
    pub fn push_ratio(
        &mut self,
        scope: &str,
        metric: Metric,
        t: f64,
        numerator: (&'static str, f64),
        denominator: (&'static str, f64),
    ) {
        let n = self.delta(scope, numerator.0, t, numerator.1);
        let d = self.delta(scope, denominator.0, t, denominator.1);
        if let (Some((n, _)), Some((d, _))) = (n, d)
            && d > 0.0
        {
            self.push(scope, metric, t, n / d);
        }
    }

    /// The change of a counter since its previous sample and the seconds
    /// between them.
    fn delta(&mut self, scope: &str, key: &'static str, t: f64, value: f64) -> Option<(f64, f64)> {
        let previous = self.scope(scope).counters.insert(key, (t, value));
        let (t0, v0) = previous?;
        (value >= v0 && t > t0).then_some((value - v0, t - t0))
    }

    fn scope(&mut self, name: &str) -> &mut Scope {
        if !self.scopes.contains_key(name) {
            self.scopes.insert(name.to_owned(), Scope::default());
        }
        // Inserted just above when missing.
        self.scopes.entry(name.to_owned()).or_default()
    }

    /// Enforces the bound on every series (after loading a file).
    pub fn trim(&mut self) {
        for scope in self.scopes.values_mut() {
            for ring in scope.series.values_mut() {
                ring.trim();
            }
        }
    }

    /// Points in all series together.
    pub fn total_points(&self) -> usize {
        self.scopes
            .values()
            .flat_map(|s| s.series.values())
            .map(|r| r.points().len())
            .sum()
    }
}

fn counter_key(metric: Metric) -> &'static str {
    match metric {
        Metric::Nacks => "nacks",
        Metric::Plis => "plis",
        Metric::Retransmissions => "repaired",
        Metric::FramesDropped => "dropped",
        Metric::Freezes => "freezes",
        _ => "other",
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_ring_keeps_fifteen_minutes_at_one_second_and_no_more() {
        let mut ring = Ring::default();
        for i in 0..HISTORY_POINTS * 3 {
            ring.push(i as f64, i as f64 * 2.0);
        }
        assert_eq!(ring.points().len(), HISTORY_POINTS);
        const { assert!(HISTORY_POINTS >= 600, "at least 10 minutes at 1 s") };
        let first = ring.points().front().copied();
        assert_eq!(
            first,
            Some([(HISTORY_POINTS * 2) as f64, (HISTORY_POINTS * 4) as f64])
        );
        assert_eq!(ring.last(), Some((HISTORY_POINTS * 3 - 1) as f64 * 2.0));
    }

    #[test]
    fn every_series_of_a_long_session_stays_bounded() {
        let mut h = History::default();
        for s in 0..3000 {
            let t = s as f64;
            for scope in ["a", "b"] {
                h.push(scope, Metric::Bitrate, t, 100.0);
                h.push_counter(scope, Metric::Nacks, t, t * 3.0);
            }
        }
        assert_eq!(h.total_points(), 4 * HISTORY_POINTS);
        assert_eq!(h.last_t, 2999.0);
    }

    #[test]
    fn counters_become_rates_and_a_restart_gives_no_negative_rate() {
        let mut h = History::default();
        h.push_counter("s", Metric::Nacks, 0.0, 10.0);
        h.push_counter("s", Metric::Nacks, 2.0, 30.0);
        h.push_counter("s", Metric::Nacks, 3.0, 2.0); // restarted
        h.push_counter("s", Metric::Nacks, 4.0, 6.0);
        let points: Vec<_> = h.scopes["s"].series[&Metric::Nacks]
            .points()
            .iter()
            .copied()
            .collect();
        assert_eq!(points, vec![[2.0, 10.0], [4.0, 4.0]]);
    }

    #[test]
    fn decode_time_is_per_frame_between_samples() {
        let mut h = History::default();
        h.push_ratio(
            "s",
            Metric::DecodeTime,
            0.0,
            ("dec", 100.0),
            ("frames", 10.0),
        );
        h.push_ratio(
            "s",
            Metric::DecodeTime,
            1.0,
            ("dec", 130.0),
            ("frames", 25.0),
        );
        h.push_ratio(
            "s",
            Metric::DecodeTime,
            2.0,
            ("dec", 130.0),
            ("frames", 25.0),
        );
        let ring = &h.scopes["s"].series[&Metric::DecodeTime];
        assert_eq!(ring.points().len(), 1);
        assert_eq!(ring.last(), Some(2.0));
    }
}
