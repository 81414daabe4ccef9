//! The room clock: RTP timestamps of every track mapped onto one time line
//! that starts when the recording starts.
//!
//! A packet's RTP distance from the track's first packet (unwrapped across
//! the 32-bit wrap) fixes its place relative to the others, so network jitter
//! does not move samples. Where the track itself starts is read from arrival
//! times: each packet of the track's first [`SETTLE`] says "the track started
//! at my arrival minus my RTP distance", and the **least delayed** of them
//! wins (a packet can arrive late, never early). So one first packet held up
//! by the network or a busy server (100+ ms) no longer shifts a whole file
//! against the others; tracks of different streams line up to within the
//! least delay their first half second saw. While a track settles, its
//! clock places nothing ([`TrackClock::observe`] returns the packet's RTP
//! distance; the caller holds the packet and places it later).

use std::time::{Duration, Instant};

/// How long a track's first packets are watched (from the first arrival)
/// before its start on the room clock is fixed.
pub const SETTLE: Duration = Duration::from_millis(500);

/// At most this many packets of one track are observed before its start is
/// fixed, however short [`SETTLE`] is in arrival time (bounds what a caller
/// holds).
pub const SETTLE_PACKETS: usize = 256;

/// The origin every file of one recording counts from.
#[derive(Debug, Clone, Copy)]
pub struct RoomClock {
    origin: Instant,
}

impl RoomClock {
    /// A clock starting at `origin`.
    pub fn new(origin: Instant) -> Self {
        Self { origin }
    }

    /// A clock starting now.
    pub fn start_now() -> Self {
        Self::new(Instant::now())
    }

    /// A clock for one track of `rate` Hz.
    pub fn track(&self, rate: u32) -> TrackClock {
        TrackClock {
            origin: self.origin,
            rate,
            state: Start::Unseen,
            last_rtp: 0,
            extended: 0,
        }
    }
}

/// Where a track starts on the room clock.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    /// No packet yet.
    Unseen,
    /// Watching the first packets: the earliest start they imply so far.
    Settling {
        since: Instant,
        packets: usize,
        earliest: i64,
    },
    /// Fixed: ticks of the track's first packet since the origin.
    Placed(i64),
}

/// One track's RTP timestamps → ticks (`rate` Hz) since the room origin.
#[derive(Debug, Clone)]
pub struct TrackClock {
    origin: Instant,
    rate: u32,
    state: Start,
    last_rtp: u32,
    /// RTP ticks of the latest packet since the first packet, unwrapped.
    extended: i64,
}

impl TrackClock {
    /// Takes a packet with `rtp` timestamp that arrived `at`; returns its
    /// RTP distance from the track's first packet (unwrapped), which
    /// [`TrackClock::place`] turns into room-clock ticks once the track has
    /// settled.
    pub fn observe(&mut self, rtp: u32, at: Instant) -> i64 {
        if self.state == Start::Unseen {
            self.last_rtp = rtp;
        }
        // Signed distance to the previous packet: unwraps the 32-bit counter.
        let step = rtp.wrapping_sub(self.last_rtp) as i32;
        self.extended += i64::from(step);
        self.last_rtp = rtp;
        let implied = self.arrival_ticks(at) - self.extended;
        self.state = match self.state {
            Start::Unseen => Start::Settling {
                since: at,
                packets: 1,
                earliest: implied,
            },
            Start::Settling {
                since,
                packets,
                earliest,
            } => {
                let earliest = earliest.min(implied);
                if at.saturating_duration_since(since) >= SETTLE || packets + 1 >= SETTLE_PACKETS {
                    Start::Placed(earliest)
                } else {
                    Start::Settling {
                        since,
                        packets: packets + 1,
                        earliest,
                    }
                }
            }
            placed @ Start::Placed(_) => placed,
        };
        self.extended
    }

    /// Whether the track's start is fixed.
    pub fn settled(&self) -> bool {
        matches!(self.state, Start::Placed(_))
    }

    /// Fixes the track's start now with what the packets so far imply (the
    /// track ended, or its caller cannot hold more).
    pub fn settle_now(&mut self) {
        if let Start::Settling { earliest, .. } = self.state {
            self.state = Start::Placed(earliest);
        }
    }

    /// Room-clock ticks of a packet `extended` RTP ticks from the first one
    /// (see [`TrackClock::observe`]), clamped at 0; the start implied so far
    /// while the track is settling.
    pub fn place(&self, extended: i64) -> u64 {
        let start = match self.state {
            Start::Unseen => 0,
            Start::Settling { earliest, .. } => earliest,
            Start::Placed(start) => start,
        };
        (start + extended).max(0) as u64
    }

    fn arrival_ticks(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.origin);
        let ticks = (since.as_micros() as u64).saturating_mul(u64::from(self.rate)) / 1_000_000;
        ticks as i64
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn rtp_places_packets_across_the_wrap_once_settled() {
        let origin = Instant::now();
        let mut clock = RoomClock::new(origin).track(90_000);
        let first = clock.observe(u32::MAX - 1_499, origin + Duration::from_millis(500));
        assert_eq!(first, 0);
        assert!(!clock.settled());
        // 3000 ticks later, across the wrap, arriving late: RTP wins.
        let next = clock.observe(1_500, origin + Duration::from_secs(3));
        assert!(clock.settled(), "2.5 s after the first arrival");
        assert_eq!(clock.place(first), 45_000);
        assert_eq!(clock.place(next), 48_000);
        // A reordered older packet goes back.
        let older = clock.observe(0, origin);
        assert_eq!(clock.place(older), 46_500);
    }

    /// A track whose first packet was held up 150 ms (a busy server) starts
    /// where its least delayed packet says: the rule "the first packet's
    /// arrival" put it 150 ms late.
    #[test]
    fn a_late_first_packet_does_not_move_the_track() {
        let origin = Instant::now();
        let mut clock = RoomClock::new(origin).track(48_000);
        // Sent every 20 ms from 200 ms after the origin; network delay 5-25 ms,
        // the first packet 150 ms.
        let delays_ms = [
            150u64, 120, 95, 70, 40, 25, 8, 12, 5, 19, 22, 7, 9, 14, 6, 11, 5, 13,
        ];
        let mut placed = Vec::new();
        for (i, delay) in delays_ms.iter().enumerate() {
            let sent = 200 + 20 * i as u64;
            let rtp = 7_000u32.wrapping_add(960 * i as u32);
            placed.push(clock.observe(rtp, origin + Duration::from_millis(sent + delay)));
        }
        assert!(!clock.settled(), "18 packets in 490 ms of arrivals");
        clock.settle_now();
        let first_ms = clock.place(placed[0]) as f64 / 48.0;
        assert!(
            (205.0..=206.0).contains(&first_ms),
            "the track starts at {first_ms} ms: the least delay seen was 5 ms after 200 ms"
        );
        let last_ms = clock.place(*placed.last().unwrap()) as f64 / 48.0;
        assert!((545.0..=546.0).contains(&last_ms), "{last_ms}");
    }

    #[test]
    fn a_track_settles_after_its_first_half_second_or_its_packet_bound() {
        let origin = Instant::now();
        let mut clock = RoomClock::new(origin).track(90_000);
        clock.observe(0, origin);
        clock.observe(3_000, origin + SETTLE - Duration::from_millis(1));
        assert!(!clock.settled());
        clock.observe(6_000, origin + SETTLE);
        assert!(clock.settled());
        // Fixed for good: a packet arriving "early" later does not move it.
        let start = clock.place(0);
        clock.observe(90_000, origin + Duration::from_millis(600));
        assert_eq!(clock.place(0), start);

        let mut burst = RoomClock::new(origin).track(90_000);
        for i in 0..SETTLE_PACKETS {
            assert!(!burst.settled(), "settled after {i} packets");
            burst.observe(i as u32, origin);
        }
        assert!(burst.settled());
    }
}
