//! Probe padding: bytes a publish link sends above its media to learn whether
//! the path carries more, without asking the encoders for more (issue 10 §1).
//!
//! Why this exists: a probe that raises the encoders' target puts its excess
//! into the pictures. On a path that is still capped that excess becomes
//! loss or a full bottleneck queue *of media* (frozen seconds, a glass-to-glass
//! of 400-650 ms in the worst second: docs/PERFORMANCE.md, issue 10 §1), and
//! an encoder (openh264 on a busy picture) overshoots a rising target within
//! a second. libwebrtc probes with padding instead: with RTX negotiated it
//! resends recent packets on the RTX stream ("payload padding"), which the
//! receiver drops as repairs of nothing it misses. So does this:
//!
//! * the application asks the link to fill up to a rate
//!   ([`PaddingRequest::fill_to`]), only while it probes a path that showed
//!   congestion (`client::path_ceiling`);
//! * the link's NACK responder ([`super::nack::BoundedNackResponder`]) fills
//!   what the media leaves: at each [`TICK`] it owes the rate's bytes less
//!   every byte the link wrote ([`PaddingClock`]: media, resends, padding),
//!   and pays the rest with the most recent packets of a video stream
//!   wrapped as RTX ([`super::rtx::RtxSender::wrap`]). A keyframe is a debt
//!   the padding yields to (measured: padding at a fixed rate on top of a
//!   10 s keyframe filled a 500 kbit/s path's queue to 170 ms). The packets
//!   are paced, numbered (transport-wide-cc) and recorded like any other,
//!   so what arrives of them is in the acknowledged rate;
//! * the server's ingress drops them at its NACK generator (after its TWCC
//!   receiver has recorded their arrival: `nack::register_interceptors`), as
//!   RTX repairs of nothing missing ([`super::rtx::RtxVerdict::Unrequested`]),
//!   or lets one through where it does repair a loss.
//!
//! Invariants:
//! * No RTX, no padding: a stream without an RTX SSRC never pads (resending
//!   a packet on its own SSRC would count as a repair at the receiver), and
//!   [`PaddingRequest::can_pad`] says so, so the application probes the old
//!   way (the encoders' target).
//! * Bounded: at most [`MAX_BURST_BYTES`] owed at once (a late tick does not
//!   turn into a burst), at most [`MAX_DEBT_BYTES`] of debt (media above the
//!   rate for long does not silence a later probe for long), and nothing is
//!   owed while the rate is zero.
//! * Only packets sent within [`MAX_AGE`] are resent as padding (a stream
//!   that stopped does not pad with stale pictures).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the responder sends what the rate owes.
pub const TICK: Duration = Duration::from_millis(5);

/// The most the clock owes at once, bytes: about two full packets (a tick
/// that came late sends a little more, not a burst).
pub const MAX_BURST_BYTES: f64 = 2_500.0;

/// The most the media can run ahead of the fill rate, bytes: a large
/// keyframe (the second with a 10 s IDR of the busy 640x360 picture carried
/// ~22 KB more than its neighbours; with a 20 KB bound the padding came back
/// while it was still on its way and the frames behind it were 400 ms late).
/// At a 600 kbit/s fill that is half a second without padding at most.
pub const MAX_DEBT_BYTES: f64 = 40_000.0;

/// Packets older than this are not sent again as padding.
pub const MAX_AGE: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
struct Shared {
    fill_bps: AtomicU32,
    can_pad: AtomicBool,
    sent_bytes: AtomicU64,
    sent_packets: AtomicU64,
}

/// The rate the application asks a link to fill with padding, and what was
/// sent of it. Shared (cheap to clone) between the application and the
/// link's responder.
#[derive(Debug, Clone, Default)]
pub struct PaddingRequest(Arc<Shared>);

/// What a link sent as padding so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaddingSent {
    /// RTP bytes (header and payload) sent as padding.
    pub bytes: u64,
    /// Packets sent as padding.
    pub packets: u64,
}

impl PaddingRequest {
    /// Asks the link to send `bps` in all from now on, padding what the
    /// media leaves (0 stops the padding).
    pub fn fill_to(&self, bps: u32) {
        self.0.fill_bps.store(bps, Ordering::Relaxed);
    }

    /// The rate asked for, bit/s.
    pub fn fill_bps(&self) -> u32 {
        self.0.fill_bps.load(Ordering::Relaxed)
    }

    /// Whether the link has a stream it can pad on (a video stream with RTX).
    pub fn can_pad(&self) -> bool {
        self.0.can_pad.load(Ordering::Relaxed)
    }

    /// What was sent as padding so far.
    pub fn sent(&self) -> PaddingSent {
        PaddingSent {
            bytes: self.0.sent_bytes.load(Ordering::Relaxed),
            packets: self.0.sent_packets.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn set_can_pad(&self, can: bool) {
        self.0.can_pad.store(can, Ordering::Relaxed);
    }

    pub(crate) fn count(&self, bytes: usize) {
        self.0.sent_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.0.sent_packets.fetch_add(1, Ordering::Relaxed);
    }
}

/// Turns a fill rate into bytes owed, tick by tick, less what the link
/// wrote. Pure: every instant is an argument.
#[derive(Debug, Clone, Default)]
pub struct PaddingClock {
    owed: f64,
    last: Option<Instant>,
}

impl PaddingClock {
    /// Bytes owed at `now` for `bps` since the last call (at most
    /// [`MAX_BURST_BYTES`]; negative while the media ran ahead); a zero rate
    /// owes nothing and forgets the debt.
    pub fn owed(&mut self, now: Instant, bps: u32) -> f64 {
        let last = self.last.replace(now);
        if bps == 0 {
            self.owed = 0.0;
            return 0.0;
        }
        let dt = last.map_or(TICK, |at| now.saturating_duration_since(at));
        self.owed = (self.owed + f64::from(bps) / 8.0 * dt.as_secs_f64()).min(MAX_BURST_BYTES);
        self.owed
    }

    /// The link wrote `bytes` (media, a resend or padding), while a fill
    /// rate is asked for (`active`).
    pub fn sent(&mut self, bytes: usize, active: bool) {
        if active {
            self.owed = (self.owed - bytes as f64).max(-MAX_DEBT_BYTES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_fills_what_the_media_leaves_and_no_burst() {
        let t0 = Instant::now();
        let mut clock = PaddingClock::default();
        // Fill to 400 kbit/s = 50 kB/s (250 bytes per 5 ms tick) with media
        // at 20 kB/s: 30 kB of padding a second.
        let mut now = t0;
        let mut padded = 0usize;
        clock.owed(now, 400_000);
        for i in 0..200 {
            now += TICK;
            if i % 10 == 0 {
                clock.sent(1000, true); // 1 kB of media every 50 ms
            }
            while clock.owed(now, 400_000) >= 1000.0 {
                clock.sent(1000, true);
                padded += 1000;
            }
        }
        assert!((29_000..=31_000).contains(&padded), "{padded}");
        // A 50 kB keyframe: a debt (at most MAX_DEBT_BYTES), no padding
        // until it is paid.
        clock.sent(50_000, true);
        assert!(clock.owed(now + TICK, 400_000) < -MAX_DEBT_BYTES + 300.0);
        // A tick 2 s late owes at most the burst.
        assert!(clock.owed(now + Duration::from_secs(2), 400_000) <= MAX_BURST_BYTES);
        // Stopped: nothing owed, and the debt is gone when it starts again.
        assert_eq!(clock.owed(now + Duration::from_secs(3), 0), 0.0);
        clock.sent(5_000, false);
        let again = clock.owed(now + Duration::from_secs(3) + TICK, 400_000);
        assert!((0.0..=251.0).contains(&again), "{again}");
    }

    #[test]
    fn a_request_is_shared_and_counts_what_was_sent() {
        let a = PaddingRequest::default();
        let b = a.clone();
        assert!(!a.can_pad());
        b.set_can_pad(true);
        a.fill_to(120_000);
        assert_eq!(b.fill_bps(), 120_000);
        assert!(a.can_pad());
        b.count(1200);
        b.count(800);
        assert_eq!(
            a.sent(),
            PaddingSent {
                bytes: 2000,
                packets: 2
            }
        );
    }
}
