//! Top-N audio (seed 001 `enableTopThreeAudioMode`, `volume-indicator`):
//! which of a room's talkers a top-N subscriber hears, sans-IO.
//!
//! The SFU never decodes audio for this. Each publisher measures its level
//! from the PCM it encodes and sends it in the RFC 6464 header extension
//! (`link::audio_level`); the forwarder reads it into
//! [`IngressPacket::audio_level`](super::media::IngressPacket). [`TopNMix`]
//! keeps a smoothed level per source and decides, packet by packet, which of
//! the [`SLOTS`] egress tracks (if any) a packet goes to.
//!
//! **Why three fixed slots, each its own SSRC.** Three talkers' Opus packets
//! cannot share one RTP stream: they carry the same 20 ms of time, a
//! receiver has one jitter buffer and one decoder per SSRC, and an Opus
//! decoder fed two encoders' packets in turn decodes noise. So the leg offers
//! three audio tracks; a slot carries one talker at a time, and the
//! subscriber decodes up to three independent Opus streams and mixes them.
//! Switching the talker of a slot happens between two packets: the slot's
//! sequence numbers continue (the slot's `Rewriter` is paused, so the new
//! talker's first packet follows the highest number written) and its
//! timestamps are re-based onto the slot's own timeline ([`SlotClock`]), so
//! the subscriber's receiver sees one continuous stream per SSRC.
//!
//! **Invariants.** A source holds at most one slot and a slot at most one
//! source. A talker keeps its slot at least [`TopNConfig::min_hold`], and is
//! displaced only by a source louder by [`TopNConfig::hysteresis_db`]
//! (smoothed): two talkers of about the same level never flap. A slot whose
//! talker sent nothing for [`TopNConfig::silence_timeout`] (muted,
//! unpublished) is freed. Decisions run at most every
//! [`TopNConfig::decide_every`], so the per-packet cost is one smoothing step
//! and one lookup.
//!
//! Levels are RFC 6464 (§3): `level` is −dBov, 0 (loudest) to 127
//! (silence). Inside, "loudness" is `127 − level`, in dB above −127 dBov.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::protocol::UserId;

/// Egress audio tracks of a top-N leg: the three loudest talkers.
pub const SLOTS: usize = 3;

/// RFC 6464 level of digital silence (−127 dBov).
pub const SILENT_LEVEL: u8 = 127;

/// Opus RTP ticks in one 20 ms packet at 48 kHz: the smallest step a slot's
/// timeline advances at a switch.
const PACKET_TICKS: u32 = 960;

/// How the mix picks and keeps talkers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopNConfig {
    /// A challenger must be this many dB louder (smoothed) than the quietest
    /// slot holder to take its slot.
    pub hysteresis_db: f32,
    /// A talker keeps a slot at least this long once it got it.
    pub min_hold: Duration,
    /// A source silent (no packet) this long loses its slot.
    pub silence_timeout: Duration,
    /// Slots are reconsidered at most this often.
    pub decide_every: Duration,
    /// `volume-indicator` cadence.
    pub indicator_every: Duration,
    /// A change of who holds the slots is indicated at once, but no sooner
    /// than this after the previous indicator.
    pub indicator_min_gap: Duration,
    /// Smoothing weight of each new packet's level (exponential average over
    /// packets; 0.2 at 20 ms packets ≈ a 100 ms time constant).
    pub smoothing: f32,
}

impl Default for TopNConfig {
    fn default() -> Self {
        Self {
            hysteresis_db: 6.0,
            min_hold: Duration::from_millis(500),
            silence_timeout: Duration::from_millis(500),
            decide_every: Duration::from_millis(50),
            indicator_every: Duration::from_millis(500),
            indicator_min_gap: Duration::from_millis(100),
            smoothing: 0.2,
        }
    }
}

/// Volume 0–100 of `volume-indicator` from a smoothed loudness: 0 at or
/// below −90 dBov, 100 at 0 dBov, linear in dB between (speech at −20 dBov
/// shows as 78).
pub fn volume_of(loudness: f32) -> u8 {
    let db_below_full = f32::from(SILENT_LEVEL) - loudness;
    ((90.0 - db_below_full) * 100.0 / 90.0)
        .clamp(0.0, 100.0)
        .round() as u8
}

/// One source of the mix: a published stream's audio.
#[derive(Debug)]
struct Source {
    user: UserId,
    /// Smoothed loudness, dB above −127 dBov.
    loudness: f32,
    last_packet: Option<Instant>,
    slot: Option<usize>,
}

impl Source {
    fn live(&self, now: Instant, timeout: Duration) -> bool {
        self.last_packet
            .is_some_and(|t| now.saturating_duration_since(t) < timeout)
    }
}

/// One slot's own RTP timeline: timestamps stay continuous across talkers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SlotClock {
    /// Added (wrapping) to the current talker's timestamps.
    offset: u32,
    /// The latest timestamp written and when.
    last: Option<(u32, Instant)>,
}

impl SlotClock {
    /// The egress timestamp of a packet stamped `ingress`; `switched` re-bases
    /// the timeline on this packet: it follows the last one written by the
    /// time elapsed since (at least one packet's duration).
    pub fn map(&mut self, ingress: u32, switched: bool, now: Instant) -> u32 {
        if switched {
            let next = match self.last {
                Some((ts, at)) => {
                    let elapsed = now.saturating_duration_since(at).as_micros() as u64 * 48 / 1000;
                    ts.wrapping_add((elapsed as u32).max(PACKET_TICKS))
                }
                None => ingress,
            };
            self.offset = next.wrapping_sub(ingress);
        }
        let out = ingress.wrapping_add(self.offset);
        let newer = self
            .last
            .is_none_or(|(ts, _)| (out.wrapping_sub(ts) as i32) > 0);
        if newer {
            self.last = Some((out, now));
        }
        out
    }
}

/// A slot and who feeds it.
#[derive(Debug, Default, Clone)]
struct Slot {
    /// Media id of the talker.
    source: Option<u64>,
    /// When it got the slot.
    since: Option<Instant>,
    /// The talker changed and its first packet has not been routed yet.
    switched: bool,
}

/// Where one ingress packet goes on a top-N leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// The slot (egress track index, `0..SLOTS`).
    pub slot: usize,
    /// First packet of a new talker in this slot: pause the slot's rewriter
    /// and re-base its clock.
    pub switched: bool,
}

/// The top-N state of one subscriber leg (module docs).
#[derive(Debug)]
pub struct TopNMix {
    config: TopNConfig,
    /// By media id. A `BTreeMap`: decisions and the indicator never depend on
    /// hash order.
    sources: BTreeMap<u64, Source>,
    slots: [Slot; SLOTS],
    next_decision: Option<Instant>,
    next_indicator: Option<Instant>,
    /// When the last indicator went and which slot holders it named.
    last_indicator: Option<(Instant, [Option<u64>; SLOTS])>,
}

impl TopNMix {
    /// An empty mix.
    pub fn new(config: TopNConfig) -> Self {
        Self {
            config,
            sources: BTreeMap::new(),
            slots: Default::default(),
            next_decision: None,
            next_indicator: None,
            last_indicator: None,
        }
    }

    /// Adds a source (a stream's audio, published by `user`); nothing if known.
    pub fn add_source(&mut self, media: u64, user: UserId) {
        self.sources.entry(media).or_insert(Source {
            user,
            loudness: 0.0,
            last_packet: None,
            slot: None,
        });
    }

    /// Removes a source and frees its slot.
    pub fn remove_source(&mut self, media: u64) {
        if let Some(slot) = self.sources.remove(&media).and_then(|s| s.slot)
            && let Some(s) = self.slots.get_mut(slot)
        {
            *s = Slot::default();
        }
    }

    /// The sources' media ids.
    pub fn source_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.sources.keys().copied()
    }

    /// Who holds each slot (media ids).
    pub fn holders(&self) -> [Option<u64>; SLOTS] {
        std::array::from_fn(|i| self.slots[i].source)
    }

    /// One packet of `media` with RFC 6464 `level` (`None`: the publisher
    /// sends none; counted as silence) arrived at `now`. Returns the slot it
    /// goes to, or `None` when its talker holds no slot.
    pub fn on_packet(&mut self, media: u64, level: Option<u8>, now: Instant) -> Option<Routed> {
        let source = self.sources.get_mut(&media)?;
        let loudness = f32::from(SILENT_LEVEL - level.unwrap_or(SILENT_LEVEL).min(SILENT_LEVEL));
        source.loudness = match source.last_packet {
            // A source back from silence starts from its level, not from 0.
            Some(t) if now.saturating_duration_since(t) < self.config.silence_timeout => {
                source.loudness + (loudness - source.loudness) * self.config.smoothing
            }
            _ => loudness,
        };
        source.last_packet = Some(now);
        if self.next_decision.is_none_or(|t| now >= t) {
            self.decide(now);
            self.next_decision = Some(now + self.config.decide_every);
        }
        let slot = self.sources.get(&media)?.slot?;
        let s = self.slots.get_mut(slot)?;
        let switched = std::mem::take(&mut s.switched);
        Some(Routed { slot, switched })
    }

    /// Frees slots of silent talkers, fills free slots with the loudest
    /// others, then lets a challenger louder by the hysteresis take the slot
    /// of the quietest holder that held it long enough.
    pub fn decide(&mut self, now: Instant) {
        let config = self.config;
        for slot in &mut self.slots {
            let stale = slot.source.is_none_or(|id| {
                self.sources
                    .get(&id)
                    .is_none_or(|s| !s.live(now, config.silence_timeout))
            });
            if stale && slot.source.is_some() {
                if let Some(s) = slot.source.and_then(|id| self.sources.get_mut(&id)) {
                    s.slot = None;
                }
                *slot = Slot::default();
            }
        }
        // Louder first; ties by media id, so the result is deterministic.
        let mut waiting: Vec<(u64, f32)> = self
            .sources
            .iter()
            .filter(|(_, s)| s.slot.is_none() && s.live(now, config.silence_timeout))
            .map(|(id, s)| (*id, s.loudness))
            .collect();
        waiting.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut waiting = waiting.into_iter().peekable();
        for i in 0..SLOTS {
            if self.slots[i].source.is_none()
                && let Some((id, _)) = waiting.next()
            {
                self.assign(i, id, now);
            }
        }
        while let Some(&(challenger, loudness)) = waiting.peek() {
            let quietest = (0..SLOTS)
                .filter_map(|i| {
                    let id = self.slots[i].source?;
                    Some((i, self.sources.get(&id)?.loudness))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let Some((slot, held)) = quietest else { break };
            let settled = self.slots[slot]
                .since
                .is_some_and(|t| now.saturating_duration_since(t) >= config.min_hold);
            if !settled || loudness < held + config.hysteresis_db {
                break;
            }
            waiting.next();
            if let Some(old) = self.slots[slot].source
                && let Some(s) = self.sources.get_mut(&old)
            {
                s.slot = None;
            }
            self.assign(slot, challenger, now);
        }
    }

    fn assign(&mut self, slot: usize, media: u64, now: Instant) {
        if let Some(s) = self.sources.get_mut(&media) {
            s.slot = Some(slot);
        }
        self.slots[slot] = Slot {
            source: Some(media),
            since: Some(now),
            switched: true,
        };
    }

    /// The `volume-indicator` due at `now`, if one is: the slot holders,
    /// loudest first, with their volume 0–100 ([`volume_of`]). One is due
    /// every [`TopNConfig::indicator_every`], and as soon as the slot
    /// holders changed (at most one per [`TopNConfig::indicator_min_gap`]).
    /// The first call starts the cadence.
    pub fn indicator(&mut self, now: Instant) -> Option<Vec<(UserId, u8)>> {
        let holders = self.holders();
        let changed = self.last_indicator.is_some_and(|(at, named)| {
            named != holders && now.saturating_duration_since(at) >= self.config.indicator_min_gap
        });
        match self.next_indicator {
            Some(t) if now < t && !changed => return None,
            _ => self.next_indicator = Some(now + self.config.indicator_every),
        }
        self.last_indicator = Some((now, holders));
        let mut speaking: Vec<(f32, &Source)> = self
            .slots
            .iter()
            .filter_map(|slot| self.sources.get(&slot.source?))
            .map(|s| (s.loudness, s))
            .collect();
        speaking.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.user.cmp(&b.1.user)));
        Some(
            speaking
                .into_iter()
                .map(|(loudness, s)| (s.user.clone(), volume_of(loudness)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(20);

    fn user(n: u64) -> UserId {
        UserId(format!("u{n}"))
    }

    /// Feeds one 20 ms packet of every source at its level; returns the
    /// routes of this round by media id.
    fn round(
        mix: &mut TopNMix,
        levels: &[(u64, u8)],
        now: Instant,
    ) -> BTreeMap<u64, Option<Routed>> {
        levels
            .iter()
            .map(|&(id, level)| (id, mix.on_packet(id, Some(level), now)))
            .collect()
    }

    fn mix_of(n: u64) -> TopNMix {
        let mut mix = TopNMix::new(TopNConfig::default());
        for id in 1..=n {
            mix.add_source(id, user(id));
        }
        mix
    }

    fn holders_sorted(mix: &TopNMix) -> Vec<u64> {
        let mut h: Vec<u64> = mix.holders().into_iter().flatten().collect();
        h.sort_unstable();
        h
    }

    #[test]
    fn picks_the_three_loudest_and_only_they_are_routed() {
        let mut mix = mix_of(5);
        // Levels: −dBov, smaller is louder. 5 and 4 are the quietest.
        let levels = [(1, 20), (2, 25), (3, 30), (4, 50), (5, 60)];
        let start = Instant::now();
        let mut now = start;
        for _ in 0..50 {
            let routes = round(&mut mix, &levels, now);
            now += TICK;
            if now - start > Duration::from_millis(200) {
                assert!(routes[&4].is_none() && routes[&5].is_none());
                let mut slots: Vec<usize> = [1, 2, 3]
                    .iter()
                    .map(|id| routes[id].expect("routed").slot)
                    .collect();
                slots.sort_unstable();
                assert_eq!(slots, vec![0, 1, 2]);
            }
        }
        let indicator = mix.indicator(now).expect("first indicator is due");
        let users: Vec<&str> = indicator.iter().map(|(u, _)| u.0.as_str()).collect();
        // Before smoothing settles, ties could reorder; by now the ranks hold.
        assert_eq!(users, ["u1", "u2", "u3"]);
        assert!(indicator[0].1 > indicator[1].1 && indicator[1].1 > indicator[2].1);
        assert!(mix.indicator(now + Duration::from_millis(100)).is_none());
        assert!(mix.indicator(now + Duration::from_millis(500)).is_some());
    }

    #[test]
    fn a_new_holder_is_indicated_without_waiting_for_the_cadence() {
        let mut mix = mix_of(4);
        let mut now = Instant::now();
        for _ in 0..40 {
            round(&mut mix, &[(1, 20), (2, 20), (3, 40), (4, 70)], now);
            now += TICK;
        }
        assert!(mix.indicator(now).is_some());
        let sent = now;
        // 4 gets loud and takes 3's slot well before the next 500 ms tick.
        let mut indicated = None;
        while indicated.is_none() && now < sent + Duration::from_millis(500) {
            round(&mut mix, &[(1, 20), (2, 20), (3, 40), (4, 5)], now);
            if let Some(users) = mix.indicator(now) {
                indicated = Some((now - sent, users));
            }
            now += TICK;
        }
        let (after, users) = indicated.expect("indicated before the cadence");
        assert!(after < Duration::from_millis(300), "after {after:?}");
        let named: Vec<UserId> = users.into_iter().map(|(u, _)| u).collect();
        assert!(
            named.contains(&user(4)) && !named.contains(&user(3)),
            "{named:?}"
        );
    }

    #[test]
    fn a_switch_is_flagged_once_on_the_first_packet() {
        let mut mix = mix_of(1);
        let now = Instant::now();
        let first = mix.on_packet(1, Some(30), now).expect("routed");
        assert!(first.switched);
        let second = mix.on_packet(1, Some(30), now + TICK).expect("routed");
        assert_eq!((second.slot, second.switched), (first.slot, false));
    }

    #[test]
    fn equal_talkers_do_not_flap() {
        // Four talkers whose levels wobble ±3 dB around the same mean: once
        // three hold the slots, nobody is displaced.
        let mut mix = mix_of(4);
        let start = Instant::now();
        let mut now = start;
        let mut changes = 0;
        let mut last = mix.holders();
        for i in 0..500u32 {
            let wobble = |id: u64| (30 + ((i as u64 * 7 + id * 13) % 7) as u8).saturating_sub(3);
            let levels: Vec<(u64, u8)> = (1..=4).map(|id| (id, wobble(id))).collect();
            round(&mut mix, &levels, now);
            now += TICK;
            // Count changes once the slots are first full.
            if mix.holders() != last {
                if last.iter().all(Option::is_some) {
                    changes += 1;
                }
                last = mix.holders();
            }
        }
        assert!(last.iter().all(Option::is_some));
        assert_eq!(changes, 0, "slots changed {changes} times");
    }

    #[test]
    fn a_quiet_talker_getting_loud_takes_over_the_quietest_slot() {
        let mut mix = mix_of(4);
        let start = Instant::now();
        let mut now = start;
        let mut levels = vec![(1, 20), (2, 25), (3, 40), (4, 70)];
        for _ in 0..50 {
            round(&mut mix, &levels, now);
            now += TICK;
        }
        assert_eq!(holders_sorted(&mix), vec![1, 2, 3]);
        let slot_of_3 = mix.holders().iter().position(|h| *h == Some(3));
        levels[3].1 = 10; // 4 gets loud
        let louder_at = now;
        let mut took_over = None;
        for _ in 0..50 {
            let routes = round(&mut mix, &levels, now);
            if took_over.is_none()
                && let Some(r) = routes[&4]
            {
                assert!(r.switched);
                assert_eq!(Some(r.slot), slot_of_3, "takes the quietest's slot");
                assert!(routes[&3].is_none());
                took_over = Some(now - louder_at);
            }
            now += TICK;
        }
        let after = took_over.expect("the loud talker got a slot");
        assert!(after <= Duration::from_millis(200), "took {after:?}");
        assert_eq!(holders_sorted(&mix), vec![1, 2, 4]);
    }

    #[test]
    fn a_new_holder_keeps_its_slot_for_the_minimum_hold() {
        let mut mix = mix_of(4);
        let start = Instant::now();
        let mut now = start;
        // Three talkers; 4 arrives later than the rest and is as loud as 3.
        for _ in 0..10 {
            round(&mut mix, &[(1, 20), (2, 20), (3, 30)], now);
            now += TICK;
        }
        // 4 appears much louder than 3, but 3 just got its slot: held 200 ms only.
        let mut routed_4_at = None;
        for _ in 0..40 {
            let routes = round(&mut mix, &[(1, 20), (2, 20), (3, 30), (4, 5)], now);
            if routed_4_at.is_none() && routes[&4].is_some() {
                routed_4_at = Some(now - start);
            }
            now += TICK;
        }
        let at = routed_4_at.expect("4 took a slot");
        assert!(
            at >= TopNConfig::default().min_hold,
            "displaced too early: {at:?}"
        );
    }

    #[test]
    fn a_silent_or_removed_talker_frees_its_slot() {
        let mut mix = mix_of(4);
        let mut now = Instant::now();
        for _ in 0..40 {
            round(&mut mix, &[(1, 20), (2, 20), (3, 20), (4, 60)], now);
            now += TICK;
        }
        assert_eq!(holders_sorted(&mix), vec![1, 2, 3]);
        // 1 stops sending (muted): after the silence timeout 4 gets in.
        for _ in 0..40 {
            round(&mut mix, &[(2, 20), (3, 20), (4, 60)], now);
            now += TICK;
        }
        assert_eq!(holders_sorted(&mix), vec![2, 3, 4]);
        mix.remove_source(2);
        assert_eq!(holders_sorted(&mix), vec![3, 4]);
        assert_eq!(mix.source_ids().collect::<Vec<_>>(), vec![1, 3, 4]);
    }

    #[test]
    fn slot_clock_is_continuous_across_talkers() {
        let mut clock = SlotClock::default();
        let t0 = Instant::now();
        assert_eq!(clock.map(1000, true, t0), 1000);
        assert_eq!(clock.map(1960, false, t0 + TICK), 1960);
        // Another talker with an unrelated timeline, 20 ms later.
        let out = clock.map(9_000_000, true, t0 + 2 * TICK);
        assert_eq!(out, 1960 + 960);
        assert_eq!(clock.map(9_000_960, false, t0 + 3 * TICK), 1960 + 1920);
        // A switch after a long pause jumps by the time elapsed.
        let out = clock.map(5, true, t0 + Duration::from_secs(1) + 3 * TICK);
        assert_eq!(out, 1960 + 1920 + 48_000);
    }

    #[test]
    fn volumes_map_dbov_onto_0_to_100() {
        assert_eq!(volume_of(127.0), 100);
        assert_eq!(volume_of(127.0 - 20.0), 78);
        assert_eq!(volume_of(127.0 - 90.0), 0);
        assert_eq!(volume_of(0.0), 0);
    }
}
