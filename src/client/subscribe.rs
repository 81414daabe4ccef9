//! Receiving: RTP from a subscription leg → depacketize → decoders on the
//! media pool → [`RemoteStream`].
//!
//! ```text
//!  video RTP task: reorder buffer (waits ~1 RTT for NACKed packets, [`super::jitter`])
//!                  → H.264 depacketize → access unit → playout delay ([`super::playout`],
//!                    the repair time when repairs happen, else none)
//!                                                     ─┐ SerialQueue (32), drop when full
//!                                                            ▼
//!  media pool: H.264 → I420 → read stamp → stats → VideoSlot (latest only)
//!  audio RTP task ──Opus packets, SerialQueue (10)──▶ media pool → bounded PCM queue (drop oldest)
//! ```
//!
//! Decoders run on [`crate::media::pool`]: one worker per core for the whole
//! process, each track's units decoded in order, one at a time.
//!
//! In receive-only mode (`JoinConfig::decode` false, for load tests) the
//! RTP tasks only count packets, bytes and sequence gaps: no depacketizing, no
//! decoding, no keyframe requests.
//!
//! A frame the decoder cannot use (a dropped access unit, a decode error, a gap
//! the reorder buffer gave up on) makes the RTP task send a PLI, at most every
//! [`KEYFRAME_REQUEST_INTERVAL`], until a keyframe decodes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::frame_log::{DropReason, FrameLog};
use super::jitter::{JitterConfig, Released, ReorderBuffer};
use super::media_tap::{TapSlot, TappedMedia};
use super::playout::{PlayoutBuffer, PlayoutConfig};
use super::stats::{ReceptionTracker, SequenceTracker, StreamStats};
use super::stream::{REMOTE_AUDIO_CAPACITY, VideoSlot};
use crate::media::opus_codec::has_fec;
use crate::media::pool::SerialQueue;
use crate::media::{AudioFrame, H264Decoder, OpusDecoder, now_us, read_stamp};

/// Access units queued for the video decode thread. When full the unit is
/// dropped (the decoder is behind) and a keyframe is requested. It holds what
/// the reorder buffer releases at once when a repair arrives: up to its
/// longest wait (`JitterConfig::max_wait`) of frames, at 30 fps 12 for
/// 400 ms (with 8, every repair that took more than a quarter second
/// overflowed it and cost a keyframe).
pub const ACCESS_UNIT_CAPACITY: usize = 32;

/// Packets the video task reads at most in one go when several already
/// wait (it fell behind): all of them enter the reorder buffer before it
/// gives up on a gap.
const READ_AHEAD: usize = 256;

/// Opus packets queued for the audio decode thread (200 ms).
pub const OPUS_PACKET_CAPACITY: usize = 10;

/// Minimum time between two PLIs from one subscriber (longer when the round
/// trip and the playout delay are: see `run_video`).
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

/// Shared by the receive tasks and decode threads of one subscription.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) video: Arc<VideoSlot>,
    pub(crate) audio_tx: crossbeam_channel::Sender<AudioFrame>,
    pub(crate) audio_rx: crossbeam_channel::Receiver<AudioFrame>,
    pub(crate) stats: Arc<Mutex<StreamStats>>,
    pub(crate) ended: Arc<AtomicBool>,
    /// Encoded media for a recorder ([`super::RemoteStream::tap_media`]).
    pub(crate) tap: Arc<TapSlot>,
    /// Decode (else only count: see `JoinConfig::decode`).
    decode: bool,
    /// The video reorder buffer's bounds.
    jitter: JitterConfig,
    /// The video playout delay's bounds.
    playout: PlayoutConfig,
    /// Scales decoded audio (top-N slots: `super::top_n`).
    gain: Option<super::top_n::PlayoutGain>,
    /// Every video frame and its packets, when enabled (`frame_log.rs`).
    pub(crate) frames: FrameLog,
    /// Set when a paused subscription resumes (`session/standby.rs`): the
    /// video task shows pictures again only from a keyframe.
    pub(crate) resumed: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) fn new(decode: bool) -> Self {
        let (audio_tx, audio_rx) = crossbeam_channel::bounded(REMOTE_AUDIO_CAPACITY);
        Self {
            video: Arc::default(),
            audio_tx,
            audio_rx,
            stats: Arc::default(),
            ended: Arc::default(),
            tap: Arc::default(),
            decode,
            jitter: JitterConfig::default(),
            playout: PlayoutConfig::default(),
            gain: None,
            frames: FrameLog::detached(),
            resumed: Arc::default(),
        }
    }

    /// The same, its decoded audio scaled by `gain` (a top-N slot).
    pub(crate) fn with_gain(self, gain: super::top_n::PlayoutGain) -> Self {
        Self {
            gain: Some(gain),
            ..self
        }
    }

    /// The same with other reorder buffer bounds (tests).
    #[cfg(test)]
    pub(crate) fn with_jitter(self, jitter: JitterConfig) -> Self {
        Self { jitter, ..self }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, StreamStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Receives one remote track until it ends. Spawned per track.
    pub(crate) async fn run_track(self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        if !self.decode {
            return self.run_counting(track, kind).await;
        }
        match kind {
            RtpCodecKind::Video => self.run_video(track).await,
            _ => self.run_audio(track).await,
        }
    }

    /// Receive-only: counts packets, bytes, gaps, loss and jitter.
    async fn run_counting(self, track: Arc<dyn TrackRemote>, kind: RtpCodecKind) {
        let mut counter = TrackCounter::new(kind);
        while let Some(event) = track.poll().await {
            if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                counter.count(&self, &packet);
            }
        }
        self.ended.store(true, Ordering::Release);
    }

    async fn run_video(self, track: Arc<dyn TrackRemote>) {
        // The SFU asks the publisher for a keyframe when this link connects; we
        // only ask ourselves when something breaks (a gap, a decode error).
        let need_keyframe = Arc::new(AtomicBool::new(false));
        let mut decoder = match H264Decoder::new() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("cannot create the H.264 decoder: {e}");
                return;
            }
        };
        let (receiver, decoder_need) = (self.clone(), Arc::clone(&need_keyframe));
        let au_tx = SerialQueue::new(ACCESS_UNIT_CAPACITY, move |(ts, unit): (u32, Bytes)| {
            receiver.decode_video(&mut decoder, ts, &unit, &decoder_need);
        });
        let mut assembler = UnitAssembler::default();
        let mut counter = TrackCounter::new(RtpCodecKind::Video);
        let mut reorder = ReorderBuffer::new(self.jitter);
        let mut playout = PlayoutBuffer::new(self.playout);
        let mut counted = reorder.counters();
        let mut media_ssrc = None;
        let mut last_pli: Option<Instant> = None;
        // The reorder buffer skipped to a keyframe that has not started yet.
        let mut keyframe_coming = false;
        // Resumed after a pause: pictures refer to ones from before it until
        // a keyframe (`session/standby.rs`).
        let mut after_pause = false;
        loop {
            // Wake for the oldest gap's deadline, or the next unit's render
            // time, when no packet comes.
            let wake = match (reorder.deadline(), playout.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let event = match wake {
                Some(at) => tokio::select! {
                    event = track.poll() => Some(event),
                    () = tokio::time::sleep_until(at.into()) => None,
                },
                None => Some(track.poll().await),
            };
            let mut batch = Vec::new();
            match event {
                Some(None) => break,
                Some(Some(TrackRemoteEvent::OnRtpPacket(packet))) => batch.push(packet),
                Some(Some(_)) => continue,
                None => {}
            }
            // What was read off the socket while this task waited (late, on
            // a busy machine) goes in before any gap is given up: a repair
            // among it came within the wait.
            let mut ended = false;
            while batch.len() < READ_AHEAD {
                match track.poll().now_or_never() {
                    Some(Some(TrackRemoteEvent::OnRtpPacket(packet))) => batch.push(packet),
                    Some(Some(_)) => {}
                    Some(None) => {
                        ended = true;
                        break;
                    }
                    None => break,
                }
            }
            for packet in batch {
                if self.resumed.swap(false, Ordering::AcqRel) {
                    after_pause = true;
                    need_keyframe.store(true, Ordering::Release);
                }
                counter.count(&self, &packet);
                media_ssrc = Some(packet.header.ssrc);
                self.frames.packet(&packet, Instant::now());
                reorder.set_keyframe_wanted(need_keyframe.load(Ordering::Acquire));
                reorder.insert(packet, Instant::now());
            }
            reorder.expire(Instant::now());
            let now = Instant::now();
            playout.set_target(reorder.repair_delay(now));
            if reorder.counters() != counted {
                counted = reorder.counters();
                let mut stats = self.stats();
                stats.video_repaired = counted.repaired;
                stats.video_given_up = counted.given_up;
                stats.video_late = counted.late;
            }
            while let Some(released) = reorder.pop() {
                let assembled = match released {
                    Released::Packet(packet) => assembler.packet(&packet),
                    Released::Lost(_) => assembler.lost(),
                    Released::SkippedToKeyframe(_) => {
                        keyframe_coming = true;
                        assembler.lost()
                    }
                };
                if assembled.keyframe_follows {
                    keyframe_coming = false;
                }
                if assembled.dropped {
                    self.tap.offer(|| TappedMedia::VideoLost);
                    if let Some(ts) = assembled.dropped_timestamp {
                        self.frames.dropped(ts, DropReason::Incomplete);
                    }
                }
                if let Some(unit) = &assembled.complete {
                    self.tap.offer(|| TappedMedia::Video {
                        rtp_timestamp: assembled.timestamp,
                        at: Instant::now(),
                        unit: unit.clone(),
                    });
                }
                if assembled.complete.is_some() && assembled.keyframe {
                    after_pause = false;
                }
                if assembled.complete.is_some() && (keyframe_coming || after_pause) {
                    // Before the keyframe the reorder buffer skipped to, or
                    // the first after a resume: it refers to what was given
                    // up (or not received).
                    self.stats().frames_dropped += 1;
                    self.frames
                        .dropped(assembled.timestamp, DropReason::BeforeKeyframe);
                } else if let Some(unit) = assembled.complete {
                    playout.push(unit, assembled.timestamp, now);
                    if assembled.keyframe && need_keyframe.load(Ordering::Acquire) {
                        // What waits before it cannot decode: show it now.
                        let skipped = playout.skip_to_newest(now, |ts| {
                            self.frames.dropped(ts, DropReason::SkippedForKeyframe);
                        }) as u64;
                        if skipped > 0 {
                            self.stats().frames_dropped += skipped;
                        }
                    }
                }
                if assembled.dropped {
                    self.stats().frames_dropped += 1;
                    if !assembled.keyframe_follows && !keyframe_coming {
                        need_keyframe.store(true, Ordering::Release);
                    }
                }
            }
            let mut dropped = 0;
            while let Some((ts, unit)) = playout.pop(now) {
                if au_tx.try_push((ts, unit)).is_err() {
                    dropped += 1;
                    self.frames.dropped(ts, DropReason::DecoderBehind);
                }
            }
            {
                let mut stats = self.stats();
                stats.playout_delay_ms = playout.current().as_secs_f64() * 1e3;
                if dropped > 0 {
                    stats.frames_dropped += dropped;
                    need_keyframe.store(true, Ordering::Release);
                }
            }
            // Ask again only once an answer to the last request could have
            // been decoded: a round trip (about the typical repair) twice,
            // plus the playout delay; asking sooner only makes the
            // publisher send a second large keyframe into the same loss.
            let repeat_after =
                KEYFRAME_REQUEST_INTERVAL.max(reorder.repair_delay(now) * 2 + playout.current());
            if let Some(ssrc) = media_ssrc
                && (need_keyframe.load(Ordering::Acquire) || self.tap.keyframe_requested())
                && last_pli.is_none_or(|t| t.elapsed() >= repeat_after)
            {
                last_pli = Some(Instant::now());
                self.stats().keyframe_requests += 1;
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: ssrc,
                };
                track.write_rtcp(vec![Box::new(pli)]).await.ok(); // link closing
                self.tap.keyframe_request_sent();
            }
            if ended {
                break;
            }
        }
        self.ended.store(true, Ordering::Release);
    }

    /// Decodes one access unit (on the media pool).
    fn decode_video(
        &self,
        decoder: &mut H264Decoder,
        ts: u32,
        unit: &[u8],
        need_keyframe: &AtomicBool,
    ) {
        let started = Instant::now();
        let decoded = decoder.decode(unit);
        let took = started.elapsed();
        self.stats().decode_time_us += took.as_micros() as u64;
        match decoded {
            Ok(Some(frame)) => {
                need_keyframe.store(false, Ordering::Release);
                let stamp = read_stamp(&frame);
                let now = now_us();
                {
                    let mut stats = self.stats();
                    stats.frames_decoded += 1;
                    stats.freezes.on_frame(Instant::now());
                    stats.last_size = Some((frame.width, frame.height));
                    if stats.first_frame_at.is_none() {
                        stats.first_frame_at = Some(Instant::now());
                    }
                    if let Some(stamp) = stamp {
                        if stats
                            .last_frame_no
                            .is_some_and(|last| stamp.frame_no <= last)
                        {
                            stats.out_of_order_frames += 1;
                        }
                        stats.last_frame_no = Some(stamp.frame_no);
                        stats.record_latency(now.saturating_sub(stamp.capture_time_us));
                    }
                }
                self.video.store(frame);
                self.frames.decoded(ts, took, Some(Instant::now()));
            }
            Ok(None) => self.frames.decoded(ts, took, None),
            Err(e) => {
                tracing::debug!("H.264 decode: {e}");
                self.frames.dropped(ts, DropReason::DecodeError);
                self.stats().frames_dropped += 1;
                need_keyframe.store(true, Ordering::Release);
            }
        }
    }

    async fn run_audio(self, track: Arc<dyn TrackRemote>) {
        // Opus decodes at any rate/channel count; playout wants 48 kHz mono.
        let mut decoder = match OpusDecoder::new(48_000, 1) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("cannot create the Opus decoder: {e}");
                return;
            }
        };
        let receiver = self.clone();
        let packet_tx = SerialQueue::urgent(OPUS_PACKET_CAPACITY, move |input: AudioIn| {
            receiver.decode_audio(&mut decoder, input);
        });
        let mut counter = TrackCounter::new(RtpCodecKind::Audio);
        while let Some(event) = track.poll().await {
            let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                continue;
            };
            let lost = counter.count(&self, &packet);
            self.tap.offer(|| TappedMedia::Audio {
                rtp_timestamp: packet.header.timestamp,
                at: Instant::now(),
                packet: packet.payload.clone(),
            });
            // Conceal up to 3 lost frames (60 ms); longer gaps just resume. The
            // last lost frame comes back from this packet's in-band FEC data
            // when it has some.
            let lost = lost.min(3);
            for i in 0..lost {
                let input = if i + 1 == lost && has_fec(&packet.payload) {
                    AudioIn::Fec(packet.payload.clone())
                } else {
                    AudioIn::Lost
                };
                packet_tx.try_push(input).ok(); // decoder behind: skip concealment
            }
            packet_tx.try_push(AudioIn::Packet(packet.payload)).ok(); // decoder behind: drop
        }
        self.ended.store(true, Ordering::Release);
    }

    /// Decodes one Opus packet, rebuilds a lost one from the next one's FEC
    /// data, or conceals it, on the media pool.
    fn decode_audio(&self, decoder: &mut OpusDecoder, input: AudioIn) {
        let frame = match &input {
            AudioIn::Packet(data) => decoder.decode(data),
            AudioIn::Fec(next) => decoder.decode_fec(next),
            AudioIn::Lost => decoder.decode_lost(),
        };
        match frame {
            Ok(mut frame) => {
                if let Some(gain) = &self.gain {
                    gain.apply(&mut frame);
                }
                {
                    let mut stats = self.stats();
                    stats.audio_frames_decoded += 1;
                    match input {
                        AudioIn::Packet(_) => {}
                        AudioIn::Fec(_) => stats.audio_frames_recovered += 1,
                        AudioIn::Lost => stats.audio_frames_concealed += 1,
                    }
                }
                // Drop the oldest when the reader is behind: stay live.
                if let Err(crossbeam_channel::TrySendError::Full(frame)) =
                    self.audio_tx.try_send(frame)
                {
                    self.audio_rx.try_recv().ok();
                    self.audio_tx.try_send(frame).ok();
                }
            }
            Err(e) => tracing::debug!("Opus decode: {e}"),
        }
    }
}

/// One step of the audio decoder.
enum AudioIn {
    /// A received packet.
    Packet(Bytes),
    /// The frame before this packet was lost: rebuild it from its FEC data.
    Fec(Bytes),
    /// A lost frame without FEC data: conceal it.
    Lost,
}

/// What [`UnitAssembler`] made of one released packet.
#[derive(Default)]
struct Assembled {
    /// An access unit ended broken (a packet of it lost, or undecodable).
    dropped: bool,
    /// A whole access unit, ready to decode.
    complete: Option<Bytes>,
    /// The RTP timestamp of `complete`.
    timestamp: u32,
    /// The unit starting with this packet is a keyframe: a `dropped` unit
    /// before it needs no keyframe request.
    keyframe_follows: bool,
    /// `complete` is a keyframe.
    keyframe: bool,
    /// The RTP timestamp of the unit `dropped` is about, when known.
    dropped_timestamp: Option<u32>,
}

/// H.264 access units from packets in sequence order (after the reorder
/// buffer): a new RTP timestamp starts a unit, the marker bit ends it, and a
/// loss breaks the unit it falls in. A loss between units cannot be placed,
/// so it breaks the one that starts after it too (it lost its start, or a
/// whole frame it refers to went missing).
struct UnitAssembler {
    depacketizer: H264Packet,
    unit: Vec<u8>,
    broken: bool,
    /// Packets were given up on since the last released packet.
    loss_pending: bool,
    timestamp: Option<u32>,
    /// The unit being assembled started with a keyframe packet.
    keyframe: bool,
}

impl Default for UnitAssembler {
    fn default() -> Self {
        Self {
            depacketizer: H264Packet::default(),
            unit: Vec::with_capacity(64 * 1024),
            broken: false,
            loss_pending: false,
            timestamp: None,
            keyframe: false,
        }
    }
}

impl UnitAssembler {
    fn packet(&mut self, packet: &rtc::rtp::Packet) -> Assembled {
        let mut out = Assembled::default();
        // Padding only (RFC 3550 §5.1; a browser probing its bandwidth sends
        // hundreds a second): it fills its place in the sequence and is part
        // of no picture. Only a marker bit on it, ending the unit being
        // assembled, counts.
        let padding = packet.payload.is_empty();
        if padding && !(packet.header.marker && self.timestamp == Some(packet.header.timestamp)) {
            return out;
        }
        let mut keyframe_start = false;
        if self.timestamp != Some(packet.header.timestamp) {
            // A new timestamp starts a new access unit; an unfinished one is broken.
            out.dropped = !self.unit.is_empty() || self.broken;
            if out.dropped {
                out.dropped_timestamp = self.timestamp;
            }
            self.unit.clear();
            self.broken = false;
            self.timestamp = Some(packet.header.timestamp);
            keyframe_start = crate::link::nack::starts_keyframe(&packet.payload);
            out.keyframe_follows = keyframe_start;
            self.keyframe = keyframe_start;
        }
        // A keyframe does not depend on what was lost before it.
        if std::mem::take(&mut self.loss_pending) && !keyframe_start {
            self.broken = true;
        }
        if !padding {
            match self.depacketizer.depacketize(&packet.payload) {
                Ok(nal) => self.unit.extend_from_slice(&nal),
                Err(_) => self.broken = true,
            }
        }
        if packet.header.marker {
            if self.broken {
                out.dropped = true;
                out.dropped_timestamp = Some(packet.header.timestamp);
            } else if !self.unit.is_empty() {
                out.complete = Some(Bytes::copy_from_slice(&self.unit));
                out.timestamp = packet.header.timestamp;
                out.keyframe = self.keyframe;
            }
            self.unit.clear();
            self.broken = false;
            self.timestamp = None;
        }
        out
    }

    /// Packets were given up on: the unit they fall in cannot decode.
    fn lost(&mut self) -> Assembled {
        if self.timestamp.is_some() {
            self.broken = true;
        }
        self.loss_pending = true;
        Assembled::default()
    }
}

/// One track's sequence gaps and RFC 3550 reception, folded into the
/// stream's stats once per packet.
struct TrackCounter {
    video: bool,
    sequence: SequenceTracker,
    reception: ReceptionTracker,
}

impl TrackCounter {
    fn new(kind: RtpCodecKind) -> Self {
        Self {
            video: kind == RtpCodecKind::Video,
            sequence: SequenceTracker::default(),
            reception: ReceptionTracker::new(clock_rate(kind)),
        }
    }

    /// Counts `packet` in `receiver`'s stats; returns the packets the sequence
    /// says were lost just before it.
    fn count(&mut self, receiver: &Receiver, packet: &rtc::rtp::Packet) -> u64 {
        let header = &packet.header;
        let lost = self.sequence.push(header.sequence_number);
        self.reception
            .push(header.sequence_number, header.timestamp);
        let mut stats = receiver.stats();
        let bytes = (packet.payload.len() + 12) as u64;
        if self.video {
            stats.video_packets += 1;
            stats.video_bytes += bytes;
            stats.video_reception = self.reception.report();
        } else {
            stats.audio_packets += 1;
            stats.audio_bytes += bytes;
            stats.audio_reception = self.reception.report();
        }
        stats.bytes += bytes;
        stats.packets_lost += lost;
        lost
    }
}

fn clock_rate(kind: RtpCodecKind) -> u32 {
    match kind {
        RtpCodecKind::Video => crate::link::VIDEO_CLOCK_RATE,
        _ => crate::link::OPUS_CLOCK_RATE,
    }
}

#[cfg(test)]
#[path = "subscribe_tests.rs"]
mod tests;
