//! The acknowledged bitrate and the standing queue of a publish link: what the far end reported as
//! arrived (TWCC feedback), per second, counted at the arrival times it
//! reported (issue 10 §1).
//!
//! Why this exists: rtc-interceptor 0.21.1's `Gcc` bounds neither its increases
//! nor its decreases by what actually gets through. While a path is losing
//! packets because the sender is over its capacity, what arrives *is* that
//! capacity (a tail-drop queue delivers at its rate and drops the rest), so it
//! is the number the application keeps its target under (libwebrtc does the
//! same: increases are bounded by the acknowledged rate, and a decrease backs
//! off from it).
//!
//! Next to it, [`StandingQueue`]: how long every packet of the last
//! [`STANDING_WINDOW`] waited above the path's base delay. It is not a
//! congestion controller (GCC's delay half is the library's); the application
//! reads it only to stop a probe above a rate that already caused loss before
//! the probe fills the bottleneck's queue (docs/PERFORMANCE.md, issue 10 §1).
//!
//! Invariants:
//! * Counted by the receiver's arrival instants, not by when the feedback came
//!   back (a 100 ms feedback batch is not a 100 ms burst).
//! * Only packets reported as arrived count; the window is
//!   [`ACKED_WINDOW`] of arrival time ending at the newest arrival, and no
//!   rate is given before the reports span half of it. What was sent and the
//!   share of it lost are counted over [`LOSS_WINDOW`] of departures.
//! * Pure: the reports carry every instant; nothing reads a clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::PacketReport;

/// Arrival time the acknowledged rate is averaged over. A second: a `tc tbf`
/// lets its bucket (15 KB in issue 10's bench) through at line rate after a
/// lull, which reads 740 kbit/s on a 500 kbit/s path over half a second.
pub const ACKED_WINDOW: Duration = Duration::from_secs(1);

/// Departure time the sent rate and the recent loss are counted over.
pub const LOSS_WINDOW: Duration = Duration::from_millis(500);

/// How long the lowest one-way delay (the path's base delay) is remembered.
pub const BASE_DELAY_WINDOW: Duration = Duration::from_secs(10);

/// A queue counts as standing when every packet that arrived over this long
/// waited more than the base delay by at least as much (CoDel's test): a
/// scheduler's jitter delays some packets and not others, a bottleneck queue
/// delays every one.
pub const STANDING_WINDOW: Duration = Duration::from_millis(200);

/// A windowed minimum of (instant, value) samples, monotonic deque.
#[derive(Debug, Clone, Default)]
struct WindowMin {
    samples: VecDeque<(Duration, f64)>,
}

impl WindowMin {
    fn push(&mut self, at: Duration, value: f64, window: Duration) {
        while self.samples.back().is_some_and(|&(_, v)| v >= value) {
            self.samples.pop_back();
        }
        self.samples.push_back((at, value));
        let oldest = at.saturating_sub(window);
        while self.samples.len() > 1 && self.samples.front().is_some_and(|&(t, _)| t < oldest) {
            self.samples.pop_front();
        }
    }

    fn min(&self) -> Option<f64> {
        self.samples.front().map(|&(_, v)| v)
    }
}

/// The standing queue on the path: the least one-way delay of the last
/// [`STANDING_WINDOW`] of arrivals above the least of the last
/// [`BASE_DELAY_WINDOW`]. The two clocks (departure here, arrival there) need
/// not agree: only differences of one-way delays are used.
#[derive(Debug, Clone, Default)]
pub struct StandingQueue {
    epoch: Option<std::time::Instant>,
    base: WindowMin,
    recent: WindowMin,
    first: Option<Duration>,
    newest: Option<Duration>,
}

impl StandingQueue {
    /// Folds in one feedback batch.
    pub fn add(&mut self, reports: &[PacketReport]) {
        for report in reports {
            let (true, Some(arrival)) = (report.arrived, report.arrival) else {
                continue;
            };
            let epoch = *self.epoch.get_or_insert(report.departure);
            let sent = report.departure.saturating_duration_since(epoch);
            self.add_one(sent, arrival);
        }
    }

    fn add_one(&mut self, sent: Duration, arrival: Duration) {
        let delay = arrival.as_secs_f64() - sent.as_secs_f64();
        self.first.get_or_insert(arrival);
        self.newest = Some(self.newest.map_or(arrival, |n| n.max(arrival)));
        self.base.push(arrival, delay, BASE_DELAY_WINDOW);
        self.recent.push(arrival, delay, STANDING_WINDOW);
    }

    /// The standing queue, ms; `None` until a whole [`STANDING_WINDOW`] of
    /// arrivals was seen.
    #[must_use]
    pub fn ms(&self) -> Option<f64> {
        let (first, newest) = (self.first?, self.newest?);
        if newest.saturating_sub(first) < STANDING_WINDOW {
            return None;
        }
        Some(((self.recent.min()? - self.base.min()?) * 1e3).max(0.0))
    }
}

/// Sliding windows over the reported packets: what arrived (by arrival time)
/// and what was sent and lost (by departure time).
#[derive(Debug, Clone, Default)]
pub struct AckedRate {
    /// (arrival on the receiver's clock, bytes), oldest first.
    arrivals: VecDeque<(Duration, usize)>,
    acked_bytes: usize,
    newest_arrival: Option<Duration>,
    first_arrival: Option<Duration>,
    /// (departure, bytes, arrived), in send order.
    departures: VecDeque<(Instant, usize, bool)>,
    sent_bytes: usize,
    lost_packets: usize,
    first_departure: Option<Instant>,
    newest_departure: Option<Instant>,
}

impl AckedRate {
    /// Folds in one feedback batch.
    pub fn add(&mut self, reports: &[PacketReport]) {
        for report in reports {
            self.add_departure(report.departure, report.size, report.arrived);
            if let (true, Some(arrival)) = (report.arrived, report.arrival) {
                self.add_one(arrival, report.size);
            }
        }
    }

    fn add_departure(&mut self, at: Instant, size: usize, arrived: bool) {
        self.first_departure.get_or_insert(at);
        self.departures.push_back((at, size, arrived));
        self.sent_bytes += size;
        self.lost_packets += usize::from(!arrived);
        let newest = self.newest_departure.map_or(at, |n| n.max(at));
        self.newest_departure = Some(newest);
        let oldest = newest.checked_sub(LOSS_WINDOW).unwrap_or(newest);
        while let Some(&(t, bytes, arrived)) = self.departures.front() {
            if t > oldest {
                break;
            }
            self.departures.pop_front();
            self.sent_bytes -= bytes;
            self.lost_packets -= usize::from(!arrived);
        }
    }

    fn add_one(&mut self, arrival: Duration, size: usize) {
        self.first_arrival.get_or_insert(arrival);
        let newest = self.newest_arrival.map_or(arrival, |n| n.max(arrival));
        self.newest_arrival = Some(newest);
        self.arrivals.push_back((arrival, size));
        self.acked_bytes += size;
        let oldest = newest.saturating_sub(ACKED_WINDOW);
        while let Some(&(at, bytes)) = self.arrivals.front() {
            if at > oldest {
                break;
            }
            self.arrivals.pop_front();
            self.acked_bytes -= bytes;
        }
    }

    /// The acknowledged bitrate over the window ending at the newest arrival,
    /// bit/s; `None` until the reports span half a window.
    #[must_use]
    pub fn bps(&self) -> Option<f64> {
        let (first, newest) = (self.first_arrival?, self.newest_arrival?);
        let span = newest.saturating_sub(first).min(ACKED_WINDOW);
        if span < ACKED_WINDOW / 2 {
            return None;
        }
        Some(self.acked_bytes as f64 * 8.0 / span.as_secs_f64())
    }

    /// What left here over the window ending at the newest reported
    /// departure, bit/s (arrived or not); `None` until half a window.
    #[must_use]
    pub fn sent_bps(&self) -> Option<f64> {
        let (first, newest) = (self.first_departure?, self.newest_departure?);
        let span = newest.saturating_duration_since(first).min(LOSS_WINDOW);
        if span < LOSS_WINDOW / 2 {
            return None;
        }
        Some(self.sent_bytes as f64 * 8.0 / span.as_secs_f64())
    }

    /// The fraction of the packets sent over the window that were reported
    /// lost: the loss now, where GCC's figure is a moving average.
    #[must_use]
    pub fn loss(&self) -> Option<f64> {
        self.sent_bps()?;
        Some(self.lost_packets as f64 / self.departures.len().max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1200-byte packets every `gap`, from `from` for `count` packets.
    fn feed(rate: &mut AckedRate, from: Duration, gap: Duration, count: u32) -> Duration {
        let mut at = from;
        for _ in 0..count {
            rate.add_one(at, 1200);
            at += gap;
        }
        at
    }

    #[test]
    fn counts_what_arrived_over_the_window() {
        let mut rate = AckedRate::default();
        assert_eq!(rate.bps(), None);
        // 1200 bytes every 10 ms: 960 kbit/s.
        let at = feed(&mut rate, Duration::ZERO, Duration::from_millis(10), 40);
        assert_eq!(rate.bps(), None, "400 ms is less than half a window");
        let at = feed(&mut rate, at, Duration::from_millis(10), 200);
        let bps = rate.bps().expect("a rate");
        assert!((bps - 960_000.0).abs() < 30_000.0, "{bps}");
        // The path narrows to a quarter: within a window, a quarter.
        feed(&mut rate, at, Duration::from_millis(40), 50);
        let bps = rate.bps().expect("a rate");
        assert!((bps - 240_000.0).abs() < 30_000.0, "{bps}");
    }

    #[test]
    fn a_queue_that_delays_every_packet_stands_jitter_does_not() {
        let ms = Duration::from_millis;
        let mut queue = StandingQueue::default();
        assert_eq!(queue.ms(), None);
        // 5 s at a 20 ms base delay, every third packet 40 ms late (jitter).
        for i in 0..500u64 {
            let late = if i % 3 == 0 { 40 } else { 0 };
            queue.add_one(ms(i * 10), ms(i * 10 + 20 + late));
        }
        assert_eq!(queue.ms(), Some(0.0), "jitter is no standing queue");
        // A queue builds: every packet 1 ms later than the one before, for 150 packets.
        for i in 0..150u64 {
            queue.add_one(ms(5000 + i * 10), ms(5000 + i * 10 + 20 + i));
        }
        let standing = queue.ms().expect("a reading");
        assert!((125.0..=150.0).contains(&standing), "{standing}");
        // It drains: a single packet at the base delay ends it.
        queue.add_one(ms(6500), ms(6520));
        assert_eq!(queue.ms(), Some(0.0));
    }

    #[test]
    fn lost_packets_do_not_count() {
        let now = Instant::now();
        let report = |i: u64, arrived: bool| PacketReport {
            ssrc: 1,
            id: i,
            rtp_sequence_number: i as u16,
            is_twcc: true,
            twcc_sequence_number: i as u16,
            size: 1000,
            arrived,
            departure: now + Duration::from_millis(i * 10),
            arrival: arrived.then(|| Duration::from_millis(i * 10)),
            ecn: rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn::NotEct,
        };
        let mut rate = AckedRate::default();
        // 200 packets over two seconds, every other one lost: 400 kbit/s arrive.
        let reports: Vec<_> = (0..200).map(|i| report(i, i % 2 == 0)).collect();
        rate.add(&reports);
        let bps = rate.bps().expect("a rate");
        assert!((bps - 400_000.0).abs() < 20_000.0, "{bps}");
        // Sent: all of them (departed 10 ms apart); lost: half.
        let sent = rate.sent_bps().expect("a rate");
        assert!((sent - 800_000.0).abs() < 40_000.0, "{sent}");
        assert_eq!(rate.loss(), Some(0.5));
    }
}
