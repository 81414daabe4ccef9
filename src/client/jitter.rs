//! The video receive reorder buffer: puts RTP packets back in sequence order and
//! gives a missing packet about one round trip to be retransmitted (NACK)
//! before declaring it lost.
//!
//! Without it, the subscriber broke a frame on any sequence gap, so every lost
//! packet cost a keyframe round trip even when its retransmission arrived
//! 100 ms later. Here a gap holds the packets behind it until either
//!
//! * the missing packet arrives (a retransmission, or plain reordering), or
//! * it has been missing for [`ReorderBuffer::wait`], or
//! * more than [`JitterConfig::max_packets`] packets wait behind it, or
//! * a keyframe waits behind it (it does not need what is missing: released
//!   at once with a [`Released::SkippedToKeyframe`] marker),
//!
//! and then releases them in order, with a [`Released::Lost`] marker in place
//! of what never came. The wait follows how long repairs actually take on this
//! link: [`JitterConfig::wait_factor`] times the typical recent one, and
//! at least 1.2 times the slowest recent one, a repair that came after its
//! gap was given up included (waiting longer gives up less often, and giving
//! up costs a keyframe round trip, a freeze of a second or more; but it holds
//! the frames behind a gap longer: docs/PERFORMANCE.md, issue 10, has both
//! measured). It is bounded by [`JitterConfig::min_wait`] and
//! [`JitterConfig::max_wait`], so a long path waits long enough and a short
//! one adds little latency. The wait only delays frames behind a gap: without
//! loss nothing is held.
//!
//! Packets that were already waiting to be read when the reader woke (late,
//! on a busy machine) go in with [`ReorderBuffer::insert`], which gives
//! nothing up for its age, before [`ReorderBuffer::expire`]: a repair among
//! them came within the wait, and is not given up because it was read after
//! it.
//!
//! Sans-IO: packets and the time go in, released packets come out; the RTP task
//! wakes at [`ReorderBuffer::deadline`] when nothing arrives.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::rtp::Packet;

use crate::link::nack::starts_keyframe;

/// Bounds of the reorder buffer.
#[derive(Debug, Clone, Copy)]
pub struct JitterConfig {
    /// Packets held behind a gap; one more gives the gap up at once.
    pub max_packets: usize,
    /// Shortest wait for a missing packet.
    pub min_wait: Duration,
    /// Longest wait for a missing packet, however slow repairs have been.
    pub max_wait: Duration,
    /// Wait before any repair was seen.
    pub initial_wait: Duration,
    /// The wait is this many times the typical (median) recent repair. A
    /// first try takes about one round trip, a second (after the NACK or the
    /// resend was lost) about 2.25, a third 3.5 (the NACK generator retries
    /// after 1.25 round trips, 3 times), and a busy machine or path adds
    /// its delays to each: with 4, most packets given up at 5 % loss and
    /// 100 ms came 3-50 ms after the wait (docs/PERFORMANCE.md §6, "Give-ups
    /// at 5 %"), 5 waits for them. Giving up costs a keyframe round trip, a
    /// freeze; waiting only delays the frames behind the gap, which the
    /// playout delay ([`super::playout`]) absorbs.
    pub wait_factor: f64,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            // About 1 s of 720p at 1.5 Mbit/s.
            max_packets: 256,
            min_wait: Duration::from_millis(60),
            max_wait: Duration::from_millis(600),
            // Until a repair shows the link's round trip, wait long: 200 ms
            // gave up a repair that came 256 ms after its gap on a 100 ms
            // path (docs/PERFORMANCE.md §6, "Give-ups at 5 %"), and a give-up
            // costs a keyframe round trip.
            initial_wait: Duration::from_millis(500),
            wait_factor: 5.0,
        }
    }
}

/// Repair delays remembered to size the wait.
const REPAIR_SAMPLES: usize = 16;

/// The wait is at least this many times the slowest recent repair.
const SLOWEST_MARGIN: f64 = 1.2;

/// Repairs older than this no longer count for [`ReorderBuffer::repair_delay`]:
/// a link that stopped losing packets stops paying a playout delay.
const REPAIR_MEMORY: Duration = Duration::from_secs(10);

/// What the buffer hands on, in sequence order.
#[derive(Debug)]
pub enum Released {
    /// The next packet.
    Packet(Packet),
    /// This many packets never came (given up on).
    Lost(u64),
    /// This many packets were given up on because a keyframe follows: what
    /// comes before the keyframe cannot decode, and nothing needs asking for.
    SkippedToKeyframe(u64),
}

/// Counters of what the buffer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterCounters {
    /// Packets that filled a gap after arriving out of order (repairs).
    pub repaired: u64,
    /// Packets given up on.
    pub given_up: u64,
    /// Packets that came after they were given up on, or twice.
    pub discarded: u64,
    /// Gaps given up early because a keyframe waited behind them.
    pub skipped_to_keyframe: u64,
    /// Packets that came after their gap was given up on (a repair later
    /// than the wait; counted in `discarded` too).
    pub late: u64,
}

/// Given-up packets remembered to recognise one arriving late.
const GIVEN_UP_MEMORY: usize = 512;

/// See the module docs.
#[derive(Debug)]
pub struct ReorderBuffer {
    config: JitterConfig,
    /// Extended sequence number of the next packet to release.
    next: Option<u64>,
    /// Highest extended sequence number seen.
    highest: u64,
    /// Packets waiting for the gap before them, by extended sequence number.
    held: BTreeMap<u64, Packet>,
    /// Missing sequence numbers and when each was first known missing.
    missing: BTreeMap<u64, Instant>,
    repairs: VecDeque<Duration>,
    /// The decoder waits for a keyframe: a gap before a held one is not
    /// waited for ([`ReorderBuffer::set_keyframe_wanted`]).
    keyframe_wanted: bool,
    /// When the last repair (or give-up) happened.
    last_repair_at: Option<Instant>,
    /// Recently given-up packets (extended sequence number → when it was
    /// first missed), to count one that arrives after all.
    given_up: BTreeMap<u64, Instant>,
    out: VecDeque<Released>,
    counters: JitterCounters,
}

impl ReorderBuffer {
    /// An empty buffer; the first packet pushed sets where the sequence starts.
    pub fn new(config: JitterConfig) -> Self {
        Self {
            config,
            next: None,
            highest: 0,
            held: BTreeMap::new(),
            missing: BTreeMap::new(),
            repairs: VecDeque::with_capacity(REPAIR_SAMPLES),
            keyframe_wanted: false,
            last_repair_at: None,
            given_up: BTreeMap::new(),
            out: VecDeque::new(),
            counters: JitterCounters::default(),
        }
    }

    /// What the buffer did so far.
    pub fn counters(&self) -> JitterCounters {
        self.counters
    }

    /// Whether the decoder waits for a keyframe. Only then is a gap before
    /// a held keyframe given up at once: otherwise the frames before the
    /// keyframe still decode once the gap is repaired, and skipping them
    /// would show as a jump.
    pub fn set_keyframe_wanted(&mut self, wanted: bool) {
        self.keyframe_wanted = wanted;
    }

    /// How long a missing packet is waited for now:
    /// [`JitterConfig::wait_factor`] times the typical recent repair, and at
    /// least [`SLOWEST_MARGIN`] times the slowest recent one (repairs that
    /// came after their gap was given up included: a busy machine or path
    /// slows the retries down), within the configured bounds. Waiting
    /// longer only holds the frames behind a packet that comes late or
    /// never; giving it up costs a keyframe round trip in both cases.
    pub fn wait(&self) -> Duration {
        let Some(typical) = self.typical_repair() else {
            return self.config.initial_wait;
        };
        let slowest = self.repairs.iter().max().copied().unwrap_or_default();
        typical
            .mul_f64(self.config.wait_factor)
            .max(slowest.mul_f64(SLOWEST_MARGIN))
            .clamp(self.config.min_wait, self.config.max_wait)
    }

    /// The median of the recent repairs: most are first tries, one NACK
    /// round trip (the slowest are retries, a multiple of it).
    fn typical_repair(&self) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self.repairs.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }

    /// How long a first-try repair takes on this link lately (the median of
    /// the recent repairs), zero when none happened in the last
    /// [`REPAIR_MEMORY`]. The playout delay ([`super::playout`]) is sized
    /// from it.
    pub fn repair_delay(&self, now: Instant) -> Duration {
        match self.last_repair_at {
            Some(at) if now.saturating_duration_since(at) <= REPAIR_MEMORY => {
                self.typical_repair().unwrap_or(Duration::ZERO)
            }
            _ => Duration::ZERO,
        }
    }

    fn record_repair(&mut self, took: Duration, now: Instant) {
        if self.repairs.len() == REPAIR_SAMPLES {
            self.repairs.pop_front();
        }
        self.repairs.push_back(took);
        self.last_repair_at = Some(now);
    }

    /// `seq` extended to 64 bits near the highest seen (RFC 3550 A.1 style).
    fn extend(&self, seq: u16) -> u64 {
        let delta = seq.wrapping_sub(self.highest as u16) as i16;
        self.highest.saturating_add_signed(i64::from(delta))
    }

    /// Takes one arrived packet at `now`, and gives up on what waited too
    /// long.
    pub fn push(&mut self, packet: Packet, now: Instant) {
        self.insert(packet, now);
        self.release(now, true);
    }

    /// Takes one arrived packet at `now` without giving up on anything for
    /// its age (only [`JitterConfig::max_packets`] still bounds a gap): for
    /// packets that were already waiting to be read when the reader woke,
    /// perhaps late on a busy machine. A repair among them arrived within
    /// the wait even if it is read after it. Call [`ReorderBuffer::expire`]
    /// once all of them are in.
    pub fn insert(&mut self, packet: Packet, now: Instant) {
        self.take(packet, now);
        self.release(now, false);
    }

    fn take(&mut self, packet: Packet, now: Instant) {
        let seq = packet.header.sequence_number;
        let Some(next) = self.next else {
            // Start high enough that sequence numbers below the first one
            // still extend without underflow.
            let first = (1u64 << 32) | u64::from(seq);
            self.next = Some(first + 1);
            self.highest = first;
            self.out.push_back(Released::Packet(packet));
            return;
        };
        let ext = self.extend(seq);
        if ext < next || self.held.contains_key(&ext) {
            self.counters.discarded += 1;
            if let Some(since) = self.given_up.remove(&ext) {
                // A repair slower than the wait: it counts for the next
                // waits ([`ReorderBuffer::wait`]).
                self.counters.late += 1;
                self.record_repair(now.saturating_duration_since(since), now);
                tracing::debug!(
                    seq,
                    missing_ms = now.saturating_duration_since(since).as_millis() as u64,
                    wait_ms = self.wait().as_millis() as u64,
                    "reorder: a given-up packet came late"
                );
            }
            return;
        }
        if ext > next + self.config.max_packets as u64 {
            self.jump_to(ext, packet);
            return;
        }
        if ext > self.highest {
            // Everything between the old highest and this one is missing now.
            let first_missing = (self.highest + 1).max(next);
            for gap in first_missing..ext {
                self.missing.insert(gap, now);
            }
            self.highest = ext;
        } else if let Some(since) = self.missing.remove(&ext) {
            self.counters.repaired += 1;
            self.record_repair(now.saturating_duration_since(since), now);
        }
        self.held.insert(ext, packet);
    }

    /// A packet too far ahead to wait for what lies between (the sender
    /// restarted its sequence, or a long outage): everything held goes out in
    /// order and the rest is given up.
    fn jump_to(&mut self, ext: u64, packet: Packet) {
        let mut next = self.next.unwrap_or(ext);
        while let Some((seq, held)) = self.held.pop_first() {
            if seq > next {
                self.give_up(seq - next);
            }
            self.out.push_back(Released::Packet(held));
            next = seq + 1;
        }
        if ext > next {
            self.give_up(ext - next);
        }
        self.missing.clear();
        self.highest = ext;
        self.next = Some(ext + 1);
        self.out.push_back(Released::Packet(packet));
    }

    /// A keyframe waits behind the open gap while the decoder wants one: it
    /// does not need what is missing before it (nor does the decoder, which
    /// is broken until the keyframe), so the gap is given
    /// up at once and the packets before the keyframe go out with it, rather
    /// than holding the keyframe, often the one asked for to recover, for the
    /// whole wait. Whether anything was skipped.
    fn skip_to_keyframe(&mut self) -> bool {
        let Some(next) = self.next.filter(|_| self.keyframe_wanted) else {
            return false;
        };
        let Some(keyframe) = self
            .held
            .iter()
            .rev()
            .find(|(_, p)| starts_keyframe(&p.payload))
            .map(|(&seq, _)| seq)
        else {
            return false;
        };
        if keyframe <= next {
            return false;
        }
        let mut at = next;
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() >= keyframe {
                break;
            }
            let (seq, packet) = entry.remove_entry();
            if seq > at {
                self.skip(seq - at);
            }
            self.out.push_back(Released::Packet(packet));
            at = seq + 1;
        }
        if keyframe > at {
            self.skip(keyframe - at);
        }
        self.missing.retain(|&seq, _| seq >= keyframe);
        self.counters.skipped_to_keyframe += 1;
        self.next = Some(keyframe);
        true
    }

    fn skip(&mut self, lost: u64) {
        self.counters.given_up += lost;
        self.out.push_back(Released::SkippedToKeyframe(lost));
    }

    fn give_up(&mut self, lost: u64) {
        self.counters.given_up += lost;
        self.out.push_back(Released::Lost(lost));
    }

    /// Gives up on what has waited too long by `now` (call at the deadline).
    pub fn expire(&mut self, now: Instant) {
        self.release(now, true);
    }

    /// When the oldest gap will be given up on, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        let next = self.next?;
        if self.held.is_empty() {
            return None;
        }
        self.missing.get(&next).map(|since| *since + self.wait())
    }

    /// The next released item, in order.
    pub fn pop(&mut self) -> Option<Released> {
        self.out.pop_front()
    }

    /// Releases what is in order; gives up the gap before held packets when
    /// they exceed [`JitterConfig::max_packets`], or, if `expire`, when it
    /// waited [`ReorderBuffer::wait`].
    fn release(&mut self, now: Instant, expire: bool) {
        let wait = self.wait();
        while let Some(next) = self.next {
            if let Some(packet) = self.held.remove(&next) {
                self.out.push_back(Released::Packet(packet));
                self.next = Some(next + 1);
                continue;
            }
            let Some(&first_held) = self.held.keys().next() else {
                return; // nothing waits behind a gap
            };
            let overdue = expire
                && self
                    .missing
                    .get(&next)
                    .is_none_or(|since| now.saturating_duration_since(*since) >= wait);
            if !overdue && self.held.len() <= self.config.max_packets {
                if self.skip_to_keyframe() {
                    continue;
                }
                return;
            }
            // Give up on the missing run before the first held packet.
            let lost = first_held - next;
            let since = self.missing.get(&next).copied();
            tracing::debug!(
                seq = next as u16,
                lost,
                missing_ms = since.map(|t| now.saturating_duration_since(t).as_millis() as u64),
                wait_ms = wait.as_millis() as u64,
                held = self.held.len(),
                "reorder: gave up a gap"
            );
            for seq in next..first_held {
                let at = self.missing.get(&seq).copied().unwrap_or(now);
                self.given_up.insert(seq, at);
            }
            while self.given_up.len() > GIVEN_UP_MEMORY {
                self.given_up.pop_first();
            }
            self.missing.retain(|&seq, _| seq >= first_held);
            self.give_up(lost);
            self.next = Some(first_held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::rtp::Header;

    fn packet(seq: u16) -> Packet {
        Packet {
            header: Header {
                version: 2,
                sequence_number: seq,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(b"x"),
        }
    }

    fn drain(buffer: &mut ReorderBuffer) -> Vec<String> {
        std::iter::from_fn(|| buffer.pop())
            .map(|r| match r {
                Released::Packet(p) => p.header.sequence_number.to_string(),
                Released::Lost(n) => format!("lost {n}"),
                Released::SkippedToKeyframe(n) => format!("skipped {n}"),
            })
            .collect()
    }

    #[test]
    fn in_order_packets_pass_straight_through() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        for seq in [65_534, 65_535, 0, 1] {
            b.push(packet(seq), t0);
        }
        assert_eq!(drain(&mut b), ["65534", "65535", "0", "1"]);
        assert_eq!(b.deadline(), None);
    }

    /// A retransmission arriving within the wait fills the gap: nothing lost,
    /// the packets behind it come out in order.
    #[test]
    fn a_late_packet_within_the_wait_is_put_back_in_order() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(10), t0);
        b.push(packet(12), t0);
        b.push(packet(13), t0);
        assert_eq!(drain(&mut b), ["10"], "12 and 13 wait for 11");
        assert_eq!(
            b.deadline(),
            Some(t0 + JitterConfig::default().initial_wait)
        );
        let repaired_at = t0 + Duration::from_millis(120);
        b.expire(repaired_at - Duration::from_millis(1));
        assert_eq!(drain(&mut b), Vec::<String>::new(), "not given up yet");
        b.push(packet(11), repaired_at);
        assert_eq!(drain(&mut b), ["11", "12", "13"]);
        assert_eq!(b.counters().repaired, 1);
        assert_eq!(b.counters().given_up, 0);
        // The wait now follows the repair seen: 5 × 120 ms.
        assert_eq!(b.wait(), Duration::from_millis(600));
    }

    /// A packet that does not come within the wait is given up on: one `Lost`
    /// marker, then the rest in order; it is discarded if it comes later.
    #[test]
    fn a_missing_packet_is_given_up_after_the_wait() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(1), t0);
        b.push(packet(4), t0);
        b.push(packet(5), t0);
        assert_eq!(drain(&mut b), ["1"]);
        let deadline = b.deadline().expect("a gap is open");
        b.expire(deadline);
        assert_eq!(drain(&mut b), ["lost 2", "4", "5"]);
        assert_eq!(b.counters().given_up, 2);
        b.push(packet(3), deadline + Duration::from_millis(5));
        assert_eq!(drain(&mut b), Vec::<String>::new());
        assert_eq!(b.counters().discarded, 1);
        b.push(packet(6), deadline);
        assert_eq!(drain(&mut b), ["6"]);
    }

    /// Two gaps: each is timed from when it was seen, and the first being
    /// given up does not give up the second early.
    #[test]
    fn each_gap_waits_its_own_time() {
        let t0 = Instant::now();
        let wait = JitterConfig::default().initial_wait;
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(1), t0);
        b.push(packet(3), t0); // 2 missing from t0
        let t1 = t0 + Duration::from_millis(100);
        b.push(packet(5), t1); // 4 missing from t1
        b.expire(t0 + wait);
        assert_eq!(drain(&mut b), ["1", "lost 1", "3"]);
        assert_eq!(b.deadline(), Some(t1 + wait));
        b.push(packet(4), t1 + wait - Duration::from_millis(1));
        assert_eq!(drain(&mut b), ["4", "5"]);
    }

    /// More packets behind a gap than the bound gives it up at once.
    #[test]
    fn the_buffer_is_bounded_in_packets() {
        let t0 = Instant::now();
        let config = JitterConfig {
            max_packets: 4,
            ..JitterConfig::default()
        };
        let mut b = ReorderBuffer::new(config);
        b.push(packet(0), t0);
        for seq in 2..=5 {
            b.push(packet(seq), t0);
        }
        assert_eq!(drain(&mut b), ["0"], "4 held: within the bound");
        b.push(packet(6), t0);
        assert_eq!(drain(&mut b), ["lost 1", "2", "3", "4", "5", "6"]);
    }

    /// A jump far ahead (a restarted sequence) does not wait for, or list,
    /// everything in between.
    #[test]
    fn a_jump_far_ahead_gives_up_at_once() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(100), t0);
        b.push(packet(102), t0);
        b.push(packet(30_000), t0);
        assert_eq!(
            drain(&mut b),
            ["100", "lost 1", "102", "lost 29897", "30000"]
        );
        assert_eq!(b.deadline(), None);
        b.push(packet(30_001), t0);
        assert_eq!(drain(&mut b), ["30001"]);
    }

    /// The repair delay the playout delay is sized from: the typical recent
    /// repair, forgotten after a quiet spell.
    #[test]
    fn repair_delay_follows_recent_repairs() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(0), t0);
        assert_eq!(b.repair_delay(t0), Duration::ZERO, "nothing repaired yet");
        b.push(packet(2), t0);
        b.push(packet(1), t0 + Duration::from_millis(130));
        b.push(packet(4), t0 + Duration::from_millis(200));
        b.push(packet(3), t0 + Duration::from_millis(300)); // 100 ms
        b.push(packet(6), t0 + Duration::from_millis(300));
        b.push(packet(5), t0 + Duration::from_millis(700)); // 400 ms: a retry
        let at = t0 + Duration::from_millis(700);
        assert_eq!(b.repair_delay(at), Duration::from_millis(130), "the median");
        assert_eq!(
            b.repair_delay(at + REPAIR_MEMORY),
            Duration::from_millis(130)
        );
        assert_eq!(
            b.repair_delay(at + REPAIR_MEMORY + Duration::from_millis(1)),
            Duration::ZERO,
            "forgotten after a quiet spell"
        );
    }

    fn keyframe_packet(seq: u16) -> Packet {
        Packet {
            payload: bytes::Bytes::from_static(&[0x65, 0x88]), // an IDR slice
            ..packet(seq)
        }
    }

    /// A keyframe behind a gap is not held for the wait: the gap is given up
    /// at once and what was held before the keyframe goes out with it.
    #[test]
    fn a_keyframe_behind_a_gap_is_not_held() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.set_keyframe_wanted(true);
        b.push(packet(1), t0);
        b.push(packet(3), t0); // 2 missing: 3 waits
        assert_eq!(drain(&mut b), ["1"]);
        b.push(packet(5), t0); // 4 missing too
        assert_eq!(drain(&mut b), Vec::<String>::new());
        b.push(keyframe_packet(6), t0);
        assert_eq!(drain(&mut b), ["skipped 1", "3", "skipped 1", "5", "6"]);
        assert_eq!(b.counters().skipped_to_keyframe, 1);
        assert_eq!(b.deadline(), None);
        // A gap inside the keyframe is waited for as usual.
        b.push(packet(8), t0);
        assert_eq!(drain(&mut b), Vec::<String>::new());
        b.push(packet(7), t0 + Duration::from_millis(100));
        assert_eq!(drain(&mut b), ["7", "8"]);
    }

    /// While the decoder is fine, a keyframe behind a gap waits like any
    /// packet: the frames before it still decode once the gap is repaired.
    #[test]
    fn a_keyframe_waits_when_none_is_wanted() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(1), t0);
        b.push(packet(3), t0);
        b.push(keyframe_packet(4), t0);
        assert_eq!(drain(&mut b), ["1"]);
        b.push(packet(2), t0 + Duration::from_millis(100));
        assert_eq!(drain(&mut b), ["2", "3", "4"]);
        assert_eq!(b.counters().skipped_to_keyframe, 0);
    }

    /// Packets read in one go after the reader woke late: those inserted
    /// give nothing up for its age, so a repair among them fills its gap
    /// although the wait ran out before it was read; `expire` afterwards
    /// gives up what is still missing. A packet that comes after its gap
    /// was given up is counted late.
    #[test]
    fn packets_read_late_in_one_go_give_nothing_up_before_they_are_all_in() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(1), t0);
        b.push(packet(3), t0); // 2 missing
        b.push(packet(5), t0); // 4 missing
        assert_eq!(drain(&mut b), ["1"]);
        let late = b.deadline().expect("a gap") + Duration::from_millis(100);
        // Queued while the reader waited: 6, the repair of 2, then 7.
        b.insert(packet(6), late);
        b.insert(packet(2), late);
        b.insert(packet(7), late);
        assert_eq!(drain(&mut b), ["2", "3"], "2 repaired, 4 still waited for");
        assert_eq!(b.counters().given_up, 0);
        b.expire(late);
        assert_eq!(drain(&mut b), ["lost 1", "5", "6", "7"]);
        assert_eq!(b.counters().repaired, 1);
        assert_eq!(b.counters().given_up, 1);
        // 4 comes after all: discarded, and counted as late.
        b.push(packet(4), late + Duration::from_millis(30));
        assert_eq!(drain(&mut b), Vec::<String>::new());
        assert_eq!((b.counters().discarded, b.counters().late), (1, 1));
        // A plain duplicate is discarded, not late.
        b.push(packet(7), late);
        assert_eq!((b.counters().discarded, b.counters().late), (2, 1));
    }

    /// A packet that comes after its gap was given up is a repair too: the
    /// wait grows to 1.2 × it, so the next such repair is waited for.
    #[test]
    fn a_late_repair_lengthens_the_wait() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(0), t0);
        for seq in [2, 4, 6] {
            b.push(packet(seq), t0);
            b.push(packet(seq - 1), t0 + ms(80));
        }
        assert_eq!(b.wait(), ms(400), "5 × the typical repair");
        b.push(packet(8), t0); // 7 missing
        b.expire(t0 + ms(400));
        assert_eq!(b.counters().given_up, 1);
        b.push(packet(7), t0 + ms(450));
        assert_eq!(b.counters().late, 1);
        assert_eq!(b.wait(), ms(540), "1.2 × the late repair");
        assert_eq!(b.repair_delay(t0 + ms(450)), ms(80), "the typical one");
    }

    /// `push` gives up an overdue gap at once, as before: the same packets
    /// pushed one by one lose the repair that `insert` kept.
    #[test]
    fn a_packet_pushed_after_the_wait_gives_the_gap_up_first() {
        let t0 = Instant::now();
        let mut b = ReorderBuffer::new(JitterConfig::default());
        b.push(packet(1), t0);
        b.push(packet(3), t0);
        let late = b.deadline().expect("a gap") + Duration::from_millis(100);
        b.push(packet(4), late);
        b.push(packet(2), late);
        assert_eq!(drain(&mut b), ["1", "lost 1", "3", "4"]);
        assert_eq!(b.counters().late, 1);
    }

    /// The wait stays within its bounds whatever the repairs took.
    #[test]
    fn the_wait_is_bounded() {
        let t0 = Instant::now();
        let config = JitterConfig::default();
        let mut b = ReorderBuffer::new(config);
        b.push(packet(0), t0);
        b.push(packet(2), t0);
        b.push(packet(1), t0 + Duration::from_millis(10));
        assert_eq!(b.wait(), config.min_wait);
        b.push(packet(4), t0);
        b.push(packet(3), t0 + Duration::from_secs(2));
        assert_eq!(b.wait(), config.max_wait);
    }
}
