//! The frame log: every received video frame of a subscription, with the RTP
//! packets it came in, for the stream debugger's timeline (issue 14 §1).
//!
//! ```text
//!  RTP task: packet arrives ──▶ FrameLog::packet   (a frame opens on a new RTP timestamp)
//!            unit dropped / skipped / decoder behind ──▶ FrameLog::settle
//!  media pool: decoded (+ decode time, when shown) ──▶ FrameLog::decoded
//!  reader (the debugger): FrameLog::since(cursor) ──▶ FrameRecord (with its packets)
//! ```
//!
//! Invariants:
//! - Off until [`FrameLogs::set_enabled`]: while off, each packet and frame
//!   costs one atomic load; nothing is kept or allocated.
//! - Bounded: the newest [`FRAME_LOG_CAPACITY`] frames (10 minutes at 30 fps)
//!   and [`PACKET_LOG_CAPACITY`] packets. Both rings are allocated once, at
//!   the first packet logged: 2.0 MB + 1.6 MB per stream (sizes in the
//!   test `memory_is_what_the_doc_says`), and never grow after.
//!   A frame older than the packet ring keeps its figures (seq range,
//!   counts, spread) but lists no packets.
//! - Frames are numbered in the order their first packet arrived; the
//!   numbers only grow, so a reader pulls what is new with
//!   [`FrameLog::since`] and gets back where to ask next time (frames that
//!   can still change are sent again).
//! - A frame belongs to its RTP timestamp: a packet joins the frame of its
//!   timestamp among the last [`MATCH_BACK`] frames, else opens a new one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::stats::FreezeTracker;
use crate::protocol::StreamId;

/// Frames kept per stream: 10 minutes at 30 fps.
pub const FRAME_LOG_CAPACITY: usize = 18_000;
/// Packets kept per stream (about 3.6 per frame at capacity; a keyframe
/// takes more, a delta frame at low bitrates one or two).
pub const PACKET_LOG_CAPACITY: usize = 65_536;
/// Frame logs a client keeps; the oldest stream's log goes first.
pub const FRAME_LOGS_MAX: usize = 64;
/// How far back (frames) a packet's timestamp is looked for: a retransmission
/// arrives within the reorder buffer's longest wait (400 ms, 12 frames).
const MATCH_BACK: usize = 32;
/// How far back (frames) an outcome's timestamp is looked for: the playout
/// buffer and the decoder's queue (32) hold frames between arrival and decode.
const SETTLE_BACK: usize = 256;
/// Frames a reader is sent again before the newest (they may still get a
/// late packet) besides every frame still pending (at most [`SETTLE_BACK`]
/// back).
const OPEN_TAIL: u64 = 8;

/// Why a frame was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// Packets of it were lost (the reorder buffer gave up on them), or
    /// its payload could not be depacketized.
    Incomplete,
    /// Complete, but after a loss the reorder buffer skipped to a keyframe:
    /// it refers to what was lost.
    BeforeKeyframe,
    /// Waiting in the playout buffer when a keyframe came for a decoder that
    /// needed one: dropped so the keyframe shows at once.
    SkippedForKeyframe,
    /// The decoder's queue was full (the decoder is behind).
    DecoderBehind,
    /// The decoder refused it.
    DecodeError,
}

impl DropReason {
    /// A few words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete (packets lost or too late)",
            Self::BeforeKeyframe => "refers to lost frames (skipped to a keyframe)",
            Self::SkippedForKeyframe => "skipped to show a keyframe",
            Self::DecoderBehind => "decoder behind (queue full)",
            Self::DecodeError => "decode error",
        }
    }
}

/// What became of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrameOutcome {
    /// Still being received, reordered, or waiting for its render time.
    #[default]
    Pending,
    /// Decoded (see [`FrameRecord::shown_us`] for whether it made a picture).
    Decoded,
    /// Not decoded.
    Dropped(DropReason),
}

/// One RTP packet of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PacketRecord {
    /// RTP sequence number.
    pub seq: u16,
    /// Bytes (payload + the 12-byte RTP header).
    pub size: u16,
    /// The RTP marker bit (the frame's last packet).
    pub marker: bool,
    /// When it arrived, µs since the log started.
    pub arrival_us: u64,
}

/// One received video frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameRecord {
    /// Its number in the log (order of first arrival; only grows).
    pub index: u64,
    /// RTP timestamp (90 kHz).
    pub rtp_timestamp: u32,
    /// Lowest sequence number received (in RTP's wrapping order).
    pub first_seq: u16,
    /// Highest sequence number received.
    pub last_seq: u16,
    /// Packets received (a duplicate counts again).
    pub packets: u32,
    /// Bytes received (payload + RTP header).
    pub bytes: u64,
    /// It starts an IDR picture (or carries the parameter sets).
    pub keyframe: bool,
    /// Its first packet's arrival, µs since the log started.
    pub first_arrival_us: u64,
    /// Its last packet's arrival (the spread is the difference).
    pub last_arrival_us: u64,
    /// Decoded, dropped (and why) or still pending.
    pub outcome: FrameOutcome,
    /// Time the decoder took, µs.
    pub decode_us: Option<u32>,
    /// When its picture became the stream's latest (handed to the display),
    /// µs since the log started; `None` when not (yet) shown.
    pub shown_us: Option<u64>,
    /// It ended a freeze (the SDK's definition, [`FreezeTracker`]: the gap
    /// since the picture before it, ms).
    pub freeze_ms: Option<f64>,
    /// Packets of it that arrived after it was settled (too late to help).
    pub late_packets: u32,
    /// Sequence numbers inside `first_seq..=last_seq` never received.
    pub missing_inside: u32,
    /// Sequence numbers missing between the frame before it and this one
    /// (whole frames lost, or the start of this one).
    pub gap_before: u32,
    /// Its packets in arrival order (empty when they left the packet ring).
    pub packet_list: Vec<PacketRecord>,
}

impl FrameRecord {
    /// Time between its first and last packet, µs.
    pub fn spread_us(&self) -> u64 {
        self.last_arrival_us.saturating_sub(self.first_arrival_us)
    }
}

/// What [`FrameLog::since`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameBatch {
    /// Frames numbered from the cursor on, oldest first.
    pub frames: Vec<FrameRecord>,
    /// The cursor for the next call: the oldest frame returned that can
    /// still change (a reader replaces its copies from there on).
    pub next: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    index: u64,
    ts: u32,
    first_seq: u16,
    last_seq: u16,
    packets: u32,
    bytes: u64,
    keyframe: bool,
    first_arrival_us: u64,
    last_arrival_us: u64,
    /// Global numbers of its first and last packet in the packet ring.
    first_packet: u64,
    last_packet: u64,
    outcome: FrameOutcome,
    decode_us: Option<u32>,
    shown_us: Option<u64>,
    freeze_ms: Option<f64>,
    late_packets: u32,
}

#[derive(Debug, Clone, Copy)]
struct PacketEntry {
    frame: u64,
    record: PacketRecord,
}

#[derive(Debug, Default)]
struct LogState {
    frames: VecDeque<Entry>,
    packets: VecDeque<PacketEntry>,
    next_frame: u64,
    next_packet: u64,
    freezes: FreezeTracker,
    last_shown: Option<Instant>,
}

#[derive(Debug)]
struct Inner {
    enabled: Arc<AtomicBool>,
    stream_id: StreamId,
    user: String,
    epoch: Instant,
    epoch_unix_ms: u64,
    state: Mutex<LogState>,
}

/// One subscription's frame log (see the module doc). Cheap to clone:
/// clones share the log.
#[derive(Debug, Clone)]
pub struct FrameLog(Arc<Inner>);

impl FrameLog {
    fn new(enabled: Arc<AtomicBool>, stream_id: StreamId, user: String) -> Self {
        Self(Arc::new(Inner {
            enabled,
            stream_id,
            user,
            epoch: Instant::now(),
            epoch_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            state: Mutex::default(),
        }))
    }

    /// A log that keeps everything and belongs to no client (tests of the
    /// receive path).
    #[cfg(test)]
    pub(crate) fn enabled_for_tests() -> Self {
        Self::new(Arc::new(AtomicBool::new(true)), StreamId(1), "test".into())
    }

    /// A log that belongs to no client and keeps nothing (a receiver not
    /// attached to a [`FrameLogs`]).
    pub(crate) fn detached() -> Self {
        Self::new(Arc::default(), StreamId(0), String::new())
    }

    /// The stream it logs.
    pub fn stream_id(&self) -> StreamId {
        self.0.stream_id
    }

    /// The stream's publisher.
    pub fn user(&self) -> &str {
        &self.0.user
    }

    /// When the log started (its times count from it), Unix ms.
    pub fn epoch_unix_ms(&self) -> u64 {
        self.0.epoch_unix_ms
    }

    /// Whether frames are kept.
    pub fn is_enabled(&self) -> bool {
        self.0.enabled.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // Each change leaves consistent data: keep using it after a panic.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.0.epoch).as_micros() as u64
    }

    /// A video packet arrived at `at` (before reordering).
    pub(crate) fn packet(&self, packet: &rtc::rtp::Packet, at: Instant) {
        if !self.is_enabled() {
            return;
        }
        let header = &packet.header;
        let keyframe = crate::link::nack::starts_keyframe(&packet.payload);
        let size = (packet.payload.len() + 12).min(usize::from(u16::MAX)) as u16;
        self.record_packet(
            header.sequence_number,
            header.timestamp,
            size,
            header.marker,
            keyframe,
            at,
        );
    }

    fn record_packet(&self, seq: u16, ts: u32, size: u16, marker: bool, key: bool, at: Instant) {
        let arrival_us = self.micros(at);
        let mut state = self.lock();
        let state = &mut *state;
        if state.frames.capacity() == 0 {
            // Once, at the first packet: the rings never grow after.
            state.frames.reserve_exact(FRAME_LOG_CAPACITY);
            state.packets.reserve_exact(PACKET_LOG_CAPACITY);
        }
        let packet_no = state.next_packet;
        let found = state
            .frames
            .iter_mut()
            .rev()
            .take(MATCH_BACK)
            .find(|f| f.ts == ts);
        let frame = match found {
            Some(f) => {
                if f.outcome != FrameOutcome::Pending {
                    f.late_packets += 1;
                }
                if seq_before(seq, f.first_seq) {
                    f.first_seq = seq;
                }
                if seq_before(f.last_seq, seq) {
                    f.last_seq = seq;
                }
                f.packets += 1;
                f.bytes += u64::from(size);
                f.keyframe |= key;
                f.last_arrival_us = arrival_us;
                f.last_packet = packet_no;
                f.index
            }
            None => {
                if state.frames.len() == FRAME_LOG_CAPACITY {
                    state.frames.pop_front();
                }
                let index = state.next_frame;
                state.next_frame += 1;
                state.frames.push_back(Entry {
                    index,
                    ts,
                    first_seq: seq,
                    last_seq: seq,
                    packets: 1,
                    bytes: u64::from(size),
                    keyframe: key,
                    first_arrival_us: arrival_us,
                    last_arrival_us: arrival_us,
                    first_packet: packet_no,
                    last_packet: packet_no,
                    outcome: FrameOutcome::Pending,
                    decode_us: None,
                    shown_us: None,
                    freeze_ms: None,
                    late_packets: 0,
                });
                index
            }
        };
        if state.packets.len() == PACKET_LOG_CAPACITY {
            state.packets.pop_front();
        }
        state.next_packet += 1;
        state.packets.push_back(PacketEntry {
            frame,
            record: PacketRecord {
                seq,
                size,
                marker,
                arrival_us,
            },
        });
    }

    fn pending_frame(state: &mut LogState, ts: u32) -> Option<&mut Entry> {
        state
            .frames
            .iter_mut()
            .rev()
            .take(SETTLE_BACK)
            .find(|f| f.ts == ts && f.outcome == FrameOutcome::Pending)
    }

    /// The frame of RTP timestamp `ts` was not decoded, for `reason`.
    pub(crate) fn dropped(&self, ts: u32, reason: DropReason) {
        if !self.is_enabled() {
            return;
        }
        if let Some(f) = Self::pending_frame(&mut self.lock(), ts) {
            f.outcome = FrameOutcome::Dropped(reason);
        }
    }

    /// The frame of `ts` was decoded in `took`; its picture (if it made one)
    /// became the stream's latest at `shown`.
    pub(crate) fn decoded(&self, ts: u32, took: Duration, shown: Option<Instant>) {
        if !self.is_enabled() {
            return;
        }
        let shown_us = shown.map(|at| self.micros(at));
        let mut state = self.lock();
        let state = &mut *state;
        let mut freeze_ms = None;
        if let Some(at) = shown {
            let before = state.freezes.count;
            state.freezes.on_frame(at);
            if state.freezes.count > before {
                freeze_ms = state
                    .last_shown
                    .map(|last| at.saturating_duration_since(last).as_secs_f64() * 1e3);
            }
            state.last_shown = Some(at);
        }
        if let Some(f) = Self::pending_frame(state, ts) {
            f.outcome = FrameOutcome::Decoded;
            f.decode_us = Some(took.as_micros().min(u128::from(u32::MAX)) as u32);
            f.shown_us = shown_us;
            f.freeze_ms = freeze_ms;
        }
    }

    /// Frames numbered `cursor` or more, oldest first, with their packets;
    /// and where to ask next time.
    pub fn since(&self, cursor: u64) -> FrameBatch {
        let state = self.lock();
        let first = state.frames.front().map_or(0, |f| f.index);
        let skip = cursor.saturating_sub(first) as usize;
        let first_packet = state
            .packets
            .front()
            .map_or(0, |_| state.next_packet - state.packets.len() as u64);
        let mut frames = Vec::with_capacity(state.frames.len().saturating_sub(skip));
        for (i, f) in state.frames.iter().enumerate().skip(skip) {
            let previous = i.checked_sub(1).and_then(|p| state.frames.get(p));
            let span = u32::from(f.last_seq.wrapping_sub(f.first_seq)) + 1;
            let gap_before = previous.map_or(0, |p| {
                let d = f.first_seq.wrapping_sub(p.last_seq);
                // Only forward gaps: a frame overtaken by the next one is no gap.
                if d > 1 && d < 0x8000 {
                    u32::from(d) - 1
                } else {
                    0
                }
            });
            let packet_list = if f.first_packet >= first_packet {
                let from = (f.first_packet - first_packet) as usize;
                let to = (f.last_packet + 1).saturating_sub(first_packet) as usize;
                state
                    .packets
                    .range(from..to.min(state.packets.len()))
                    .filter(|p| p.frame == f.index)
                    .map(|p| p.record)
                    .collect()
            } else {
                Vec::new()
            };
            frames.push(FrameRecord {
                index: f.index,
                rtp_timestamp: f.ts,
                first_seq: f.first_seq,
                last_seq: f.last_seq,
                packets: f.packets,
                bytes: f.bytes,
                keyframe: f.keyframe,
                first_arrival_us: f.first_arrival_us,
                last_arrival_us: f.last_arrival_us,
                outcome: f.outcome,
                decode_us: f.decode_us,
                shown_us: f.shown_us,
                freeze_ms: f.freeze_ms,
                late_packets: f.late_packets,
                missing_inside: span.saturating_sub(f.packets),
                gap_before,
                packet_list,
            });
        }
        let open_from = state.next_frame.saturating_sub(OPEN_TAIL);
        // A frame that never settles (its outcome lost) holds the cursor
        // back by at most SETTLE_BACK frames, so only those are searched
        // (not the whole ring, several times a second per stream).
        let settled_by = state.next_frame.saturating_sub(SETTLE_BACK as u64);
        let pending = state
            .frames
            .iter()
            .skip(settled_by.saturating_sub(first) as usize)
            .find(|f| f.outcome == FrameOutcome::Pending)
            .map_or(u64::MAX, |f| f.index);
        let next = pending.min(open_from).max(settled_by);
        FrameBatch { frames, next }
    }

    /// Every frame kept, oldest first.
    pub fn snapshot(&self) -> Vec<FrameRecord> {
        self.since(0).frames
    }
}

/// Whether sequence number `a` comes before `b` (RFC 3550 wrapping order).
fn seq_before(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

#[derive(Debug, Default)]
struct Registry {
    enabled: Arc<AtomicBool>,
    logs: Mutex<BTreeMap<StreamId, FrameLog>>,
}

/// A client's frame logs, one per subscribed video stream, all switched on
/// and off together. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct FrameLogs(Arc<Registry>);

impl FrameLogs {
    /// Starts (or stops) keeping frames in every log. What was kept stays.
    pub fn set_enabled(&self, on: bool) {
        self.0.enabled.store(on, Ordering::Release);
    }

    /// Whether frames are kept.
    pub fn is_enabled(&self) -> bool {
        self.0.enabled.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<StreamId, FrameLog>> {
        self.0.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log of `stream_id`, if it was ever subscribed.
    pub fn get(&self, stream_id: StreamId) -> Option<FrameLog> {
        self.lock().get(&stream_id).cloned()
    }

    /// Every log, by stream id.
    pub fn all(&self) -> Vec<FrameLog> {
        self.lock().values().cloned().collect()
    }

    /// The log of `stream_id` (published by `user`): the one it had, when it
    /// is subscribed again, else a new one.
    pub(crate) fn attach(&self, stream_id: StreamId, user: &str) -> FrameLog {
        let mut logs = self.lock();
        let enabled = Arc::clone(&self.0.enabled);
        let log = logs
            .entry(stream_id)
            .or_insert_with(|| FrameLog::new(enabled, stream_id, user.to_owned()))
            .clone();
        while logs.len() > FRAME_LOGS_MAX {
            logs.pop_first();
        }
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_micros(33_333);

    fn log() -> FrameLog {
        let logs = FrameLogs::default();
        logs.set_enabled(true);
        logs.attach(StreamId(7), "alice")
    }

    /// Sends frame `n` (timestamp n × 3000) as `packets` packets from `seq`,
    /// at `t0 + n × FRAME`, 1 ms apart; returns the next seq.
    fn frame(log: &FrameLog, t0: Instant, n: u32, seq: u16, packets: u16, key: bool) -> u16 {
        for i in 0..packets {
            let at = t0 + FRAME * n + Duration::from_millis(u64::from(i));
            log.record_packet(
                seq.wrapping_add(i),
                n * 3000,
                1000 + i,
                i + 1 == packets,
                key && i == 0,
                at,
            );
        }
        seq.wrapping_add(packets)
    }

    #[test]
    fn a_frame_lists_its_packets_seq_range_and_spread() {
        let log = log();
        let t0 = Instant::now();
        let mut seq = frame(&log, t0, 0, 100, 5, true);
        seq = frame(&log, t0, 1, seq, 2, false);
        let frames = log.snapshot();
        assert_eq!(frames.len(), 2);
        let key = &frames[0];
        assert!(key.keyframe && !frames[1].keyframe);
        assert_eq!((key.first_seq, key.last_seq, key.packets), (100, 104, 5));
        assert_eq!(key.bytes, 1000 + 1001 + 1002 + 1003 + 1004);
        let seqs: Vec<u16> = key.packet_list.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![100, 101, 102, 103, 104]);
        assert_eq!(key.spread_us(), 4000);
        assert!(key.packet_list.last().is_some_and(|p| p.marker));
        assert_eq!(frames[1].first_seq, 105);
        assert_eq!(seq, 107);
        assert_eq!(frames[1].gap_before, 0);
    }

    #[test]
    fn a_reordered_packet_joins_its_frame_and_a_lost_one_is_a_gap() {
        let log = log();
        let t0 = Instant::now();
        // Frame 0: seq 10..=12 with 11 arriving after frame 1 started.
        log.record_packet(10, 0, 500, false, true, t0);
        log.record_packet(12, 0, 500, true, false, t0 + FRAME / 2);
        log.record_packet(13, 3000, 500, true, false, t0 + FRAME);
        log.record_packet(11, 0, 500, false, false, t0 + FRAME * 2);
        // Frame 2 lost entirely (seq 14, 15), frame 3 at 16..=17 missing 17's
        // companion 16: received 17 only.
        log.record_packet(17, 9000, 500, true, false, t0 + FRAME * 3);
        let frames = log.snapshot();
        assert_eq!(frames.len(), 3);
        assert_eq!((frames[0].first_seq, frames[0].last_seq), (10, 12));
        assert_eq!(frames[0].packets, 3);
        assert_eq!(frames[0].missing_inside, 0);
        let order: Vec<u16> = frames[0].packet_list.iter().map(|p| p.seq).collect();
        assert_eq!(order, vec![10, 12, 11], "arrival order");
        assert_eq!(frames[0].spread_us(), (FRAME * 2).as_micros() as u64);
        assert_eq!(frames[1].gap_before, 0);
        assert_eq!(frames[2].gap_before, 3, "14, 15, 16 never came");
        // A frame with a hole inside.
        log.record_packet(20, 12000, 500, false, false, t0 + FRAME * 4);
        log.record_packet(22, 12000, 500, true, false, t0 + FRAME * 4);
        let last = log.snapshot().pop().expect("frame");
        assert_eq!(last.missing_inside, 1);
        assert_eq!(last.gap_before, 2);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let log = log();
        let t0 = Instant::now();
        let seq = frame(&log, t0, 0, 65_534, 4, false);
        assert_eq!(seq, 2);
        frame(&log, t0, 1, seq, 1, false);
        let frames = log.snapshot();
        assert_eq!((frames[0].first_seq, frames[0].last_seq), (65_534, 1));
        assert_eq!(frames[0].missing_inside, 0);
        assert_eq!(frames[1].gap_before, 0);
    }

    #[test]
    fn outcomes_land_on_their_frames_and_late_packets_are_counted() {
        let log = log();
        let t0 = Instant::now();
        let mut seq = 0;
        for n in 0..4 {
            seq = frame(&log, t0, n, seq, 2, n == 0);
        }
        log.decoded(0, Duration::from_micros(900), Some(t0 + FRAME));
        log.dropped(3000, DropReason::Incomplete);
        log.dropped(6000, DropReason::DecoderBehind);
        // A packet of frame 1 after it was given up on.
        log.record_packet(2, 3000, 300, false, false, t0 + FRAME * 5);
        let f = log.snapshot();
        assert_eq!(f[0].outcome, FrameOutcome::Decoded);
        assert_eq!(f[0].decode_us, Some(900));
        assert!(f[0].shown_us.is_some());
        assert_eq!(f[1].outcome, FrameOutcome::Dropped(DropReason::Incomplete));
        assert_eq!(f[1].late_packets, 1);
        assert_eq!(
            f[2].outcome,
            FrameOutcome::Dropped(DropReason::DecoderBehind)
        );
        assert_eq!(f[3].outcome, FrameOutcome::Pending);
        // A second outcome for a settled frame changes nothing.
        log.decoded(3000, Duration::ZERO, None);
        assert_eq!(
            log.snapshot()[1].outcome,
            FrameOutcome::Dropped(DropReason::Incomplete)
        );
    }

    #[test]
    fn a_long_pause_between_shown_frames_is_a_freeze() {
        let log = log();
        let t0 = Instant::now();
        let mut seq = 0;
        for n in 0..40 {
            seq = frame(&log, t0, n, seq, 1, n == 0);
            // Frames 0..30 shown every 33 ms, then nothing for a second.
            let shown = if n < 30 {
                FRAME * n
            } else {
                FRAME * n + Duration::from_secs(1)
            };
            log.decoded(n * 3000, Duration::from_micros(500), Some(t0 + shown));
        }
        let f = log.snapshot();
        let freezes: Vec<u64> = f
            .iter()
            .filter(|f| f.freeze_ms.is_some())
            .map(|f| f.index)
            .collect();
        assert_eq!(freezes, vec![30]);
        assert!(f[30].freeze_ms.is_some_and(|ms| ms > 1000.0));
    }

    #[test]
    fn the_rings_are_bounded_and_the_cursor_resends_open_frames() {
        let log = log();
        let t0 = Instant::now();
        let mut seq = 0;
        let total = FRAME_LOG_CAPACITY as u32 + 500;
        for n in 0..total {
            // 5 packets a frame: more than the packet ring keeps.
            seq = frame(&log, t0, n, seq, 5, n % 60 == 0);
            log.decoded(n * 3000, Duration::from_micros(100), Some(t0 + FRAME * n));
        }
        let all = log.snapshot();
        assert_eq!(all.len(), FRAME_LOG_CAPACITY);
        assert_eq!(all[0].index, 500);
        assert_eq!(all.last().map(|f| f.index), Some(u64::from(total) - 1));
        // The oldest frames outlived their packets, the newest list them.
        assert!(all[0].packet_list.is_empty());
        assert_eq!(all.last().map(|f| f.packet_list.len()), Some(5));
        let with_packets = all.iter().filter(|f| !f.packet_list.is_empty()).count();
        assert!(
            with_packets <= PACKET_LOG_CAPACITY / 5 + 1,
            "{with_packets}"
        );
        {
            let state = log.lock();
            assert_eq!(state.frames.capacity(), FRAME_LOG_CAPACITY);
            assert!(state.packets.len() <= PACKET_LOG_CAPACITY);
        }
        // A reader that has everything asks again from the open tail only.
        let batch = log.since(u64::from(total) - 1);
        assert_eq!(batch.frames.len(), 1);
        assert_eq!(batch.next, u64::from(total) - OPEN_TAIL);
        // A pending frame holds the cursor back.
        frame(&log, t0, total, seq, 1, false);
        let pending_at = u64::from(total);
        let batch = log.since(u64::from(total) - 20);
        assert_eq!(batch.frames.len(), 21);
        assert!(batch.next <= pending_at);
    }

    #[test]
    fn a_disabled_log_keeps_nothing() {
        let logs = FrameLogs::default();
        let log = logs.attach(StreamId(1), "bob");
        log.packet(
            &rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    sequence_number: 1,
                    timestamp: 3000,
                    marker: true,
                    ..Default::default()
                },
                payload: bytes::Bytes::from_static(&[0x65, 0x88]),
            },
            Instant::now(),
        );
        assert!(log.snapshot().is_empty());
        assert_eq!(log.lock().frames.capacity(), 0, "nothing allocated");
        logs.set_enabled(true);
        log.record_packet(1, 3000, 100, true, true, Instant::now());
        assert_eq!(log.snapshot().len(), 1);
        assert_eq!(logs.get(StreamId(1)).map(|l| l.snapshot().len()), Some(1));
        assert_eq!(logs.all().len(), 1);
    }

    #[test]
    fn memory_is_what_the_doc_says() {
        // The module doc states 2.0 MB + 1.6 MB per stream.
        let frames = FRAME_LOG_CAPACITY * std::mem::size_of::<Entry>();
        let packets = PACKET_LOG_CAPACITY * std::mem::size_of::<PacketEntry>();
        println!("frame ring {frames} B, packet ring {packets} B");
        assert!(frames <= 2_050_000, "{frames}");
        assert!(packets <= 1_600_000, "{packets}");
    }
}
