//! The room clock: RTP timestamps of every track mapped onto one time line
//! that starts when the recording starts.
//!
//! Each track's first packet is placed by its arrival time; later packets by
//! their RTP timestamp distance from it (unwrapped across the 32-bit wrap),
//! so network jitter after the first packet does not move samples. Tracks of
//! different streams line up to within the first packets' network delay.

use std::time::Instant;

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
            first: None,
            last_rtp: 0,
            extended: 0,
        }
    }
}

/// One track's RTP timestamps → ticks (`rate` Hz) since the room origin.
#[derive(Debug, Clone)]
pub struct TrackClock {
    origin: Instant,
    rate: u32,
    /// Ticks since the origin of the first packet.
    first: Option<u64>,
    last_rtp: u32,
    /// RTP ticks since the first packet, unwrapped.
    extended: i64,
}

impl TrackClock {
    /// Where a packet with `rtp` timestamp, arrived `at`, lies on the room
    /// clock. A packet older than the first one maps to its first tick's
    /// left, clamped at 0.
    pub fn ticks(&mut self, rtp: u32, at: Instant) -> u64 {
        let Some(first) = self.first else {
            let since = at.saturating_duration_since(self.origin);
            let first = (since.as_micros() as u64).saturating_mul(u64::from(self.rate)) / 1_000_000;
            self.first = Some(first);
            self.last_rtp = rtp;
            return first;
        };
        // Signed distance to the previous packet: unwraps the 32-bit counter.
        let step = rtp.wrapping_sub(self.last_rtp) as i32;
        self.extended += i64::from(step);
        self.last_rtp = rtp;
        (first as i64 + self.extended).max(0) as u64
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::time::Duration;

    #[test]
    fn first_packet_by_arrival_then_by_rtp_across_the_wrap() {
        let origin = Instant::now();
        let mut clock = RoomClock::new(origin).track(90_000);
        let first = clock.ticks(u32::MAX - 1_499, origin + Duration::from_millis(500));
        assert_eq!(first, 45_000);
        // 3000 ticks later, across the wrap, arriving late: RTP wins.
        let next = clock.ticks(1_500, origin + Duration::from_secs(3));
        assert_eq!(next, 48_000);
        // A reordered older packet goes back.
        assert_eq!(clock.ticks(0, origin), 46_500);
    }
}
