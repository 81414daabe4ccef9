//! Server-side recording: `start-recording` / `stop-recording`
//! (docs/protocol.md "Recording"). The SFU's forwarder hands a recorded
//! stream's ingress RTP to a writer thread ([`PublishedMedia::start_recording`]),
//! which depacketizes H.264 into access units and writes them and the Opus
//! packets, as they are, into one MP4 file per stream ([`crate::record`]).
//!
//! Permission: recording is off unless the server has a `record_dir`
//! (`--record-dir`, `huddle.toml`); then any joiner of a room may start and
//! stop recordings of that room (a player may not: 90100022). A recording
//! belongs to its room, not to the session that started it.
//!
//! All files of one recording share one clock (the recording's start), so
//! they play in sync. Loss: a sequence gap in the video (lost, reordered, or
//! dropped because the writer fell behind) drops units until the next
//! keyframe, which the writer requests from the publisher (PLI, at most every
//! [`KEYFRAME_REQUEST_INTERVAL`]). A stream unpublished while recorded has its
//! file completed at once; `stop-recording` still lists it. A whole-room
//! recording (no `streamId`) also takes streams published while it runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;

use super::sfu::{PublishedMedia, RecordedPacket};
use crate::protocol::{ErrorCode, RecordedFile, RoomId, StreamId, StreamInfo};
use crate::record::{
    Mp4Recorder, RecordError, RecordResult, RecordingSummary, RoomClock, StreamRecorder,
};

/// Minimum time between two keyframe requests of one recorded stream.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Why a recording request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The server has no `record_dir`: recording is off. Not retryable.
    #[error("recording is off on this server (no record_dir)")]
    Disabled,
    /// No recording with this id in the caller's room.
    #[error("no recording {0} in this room")]
    UnknownRecord(i32),
    /// The requested `recordId` is taken by a running recording.
    #[error("record id {0} is in use")]
    RecordIdInUse(i32),
    /// The stream is recorded already (by another recording).
    #[error("stream {0} is recorded already")]
    AlreadyRecorded(StreamId),
    /// A whole-room recording of a room without streams.
    #[error("the room has no stream to record")]
    NothingToRecord,
    /// The recording's directory or a file could not be created.
    #[error("cannot create the recording: {0}")]
    Io(#[source] RecordError),
}

impl RecordingError {
    /// The seed code it is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            RecordingError::Disabled
            | RecordingError::AlreadyRecorded(_)
            | RecordingError::NothingToRecord => ErrorCode::InvalidOperation,
            RecordingError::UnknownRecord(_) | RecordingError::RecordIdInUse(_) => {
                ErrorCode::InvalidParameter
            }
            RecordingError::Io(_) => ErrorCode::InternalError,
        }
    }
}

/// One stream of a recording.
struct StreamWriter {
    stream_id: StreamId,
    media: Arc<PublishedMedia>,
    thread: JoinHandle<RecordResult<RecordingSummary>>,
}

/// One running recording.
struct Recording {
    room_id: RoomId,
    /// Started without a `streamId`: streams published later join it.
    whole_room: bool,
    /// Its directory.
    dir: PathBuf,
    /// The clock all its files count from.
    clock: RoomClock,
    writers: Vec<StreamWriter>,
}

/// Every running recording of the server.
pub(crate) struct Recordings {
    dir: Option<PathBuf>,
    running: Mutex<HashMap<i32, Recording>>,
    next_id: AtomicI32,
}

impl Recordings {
    /// Recordings written under `dir`; `None`: recording is off.
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            running: Mutex::default(),
            next_id: AtomicI32::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Recording>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts recording `streams` of `room_id` (`whole_room`: and the ones
    /// published later); returns the record id and the streams recorded.
    pub(crate) fn start(
        &self,
        room_id: &RoomId,
        streams: Vec<(StreamInfo, Arc<PublishedMedia>)>,
        whole_room: bool,
        record_id: Option<i32>,
    ) -> Result<(i32, Vec<StreamId>), RecordingError> {
        let dir = self.dir.as_ref().ok_or(RecordingError::Disabled)?;
        if streams.is_empty() {
            return Err(RecordingError::NothingToRecord);
        }
        let mut running = self.lock();
        let record_id = match record_id {
            Some(id) if running.contains_key(&id) => {
                return Err(RecordingError::RecordIdInUse(id));
            }
            Some(id) => id,
            None => loop {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                if !running.contains_key(&id) {
                    break id;
                }
            },
        };
        let dir = dir.join(record_id.to_string());
        std::fs::create_dir_all(&dir).map_err(|source| {
            RecordingError::Io(RecordError::Io {
                path: dir.clone(),
                source,
            })
        })?;
        let clock = RoomClock::start_now();
        let mut writers: Vec<StreamWriter> = Vec::with_capacity(streams.len());
        for (info, media) in streams {
            let started = start_writer(&file_path(&dir, room_id, &info), &media, clock);
            match started {
                Ok(thread) => writers.push(StreamWriter {
                    stream_id: info.stream_id,
                    media,
                    thread,
                }),
                Err(e) => {
                    // Undo what started: no half recording.
                    for writer in &writers {
                        writer.media.stop_recording();
                    }
                    return Err(match e {
                        None => RecordingError::AlreadyRecorded(info.stream_id),
                        Some(e) => RecordingError::Io(e),
                    });
                }
            }
        }
        let stream_ids = writers.iter().map(|w| w.stream_id).collect();
        running.insert(
            record_id,
            Recording {
                room_id: room_id.clone(),
                whole_room,
                dir,
                clock,
                writers,
            },
        );
        Ok((record_id, stream_ids))
    }

    /// A stream was published in `room_id`: whole-room recordings of it
    /// record it too, on their clock.
    pub(crate) fn add_published(
        &self,
        room_id: &RoomId,
        info: StreamInfo,
        media: Arc<PublishedMedia>,
    ) {
        let mut running = self.lock();
        for recording in running
            .values_mut()
            .filter(|r| r.whole_room && &r.room_id == room_id)
        {
            let path = file_path(&recording.dir, room_id, &info);
            match start_writer(&path, &media, recording.clock) {
                Ok(thread) => recording.writers.push(StreamWriter {
                    stream_id: info.stream_id,
                    media: Arc::clone(&media),
                    thread,
                }),
                // One recording per stream: the first whole-room one has it.
                Err(None) => {}
                Err(Some(e)) => tracing::warn!(stream = info.stream_id.0, "recording: {e}"),
            }
        }
    }

    /// Stops every recording and waits for its files (server shutdown).
    pub(crate) async fn stop_all(&self) {
        let running: Vec<Recording> = self.lock().drain().map(|(_, r)| r).collect();
        for recording in running {
            let files = finish(recording.writers).await;
            tracing::info!(
                room = %recording.room_id.0,
                "recording stopped at shutdown: {} files",
                files.len()
            );
        }
    }

    /// Stops a recording of `room_id` and waits for its files.
    pub(crate) async fn stop(
        &self,
        room_id: &RoomId,
        record_id: i32,
    ) -> Result<Vec<RecordedFile>, RecordingError> {
        let recording = {
            let mut running = self.lock();
            match running.get(&record_id) {
                Some(r) if &r.room_id == room_id => running.remove(&record_id),
                _ => None,
            }
        }
        .ok_or(RecordingError::UnknownRecord(record_id))?;
        Ok(finish(recording.writers).await)
    }
}

/// Stops the writers and collects their files.
async fn finish(writers: Vec<StreamWriter>) -> Vec<RecordedFile> {
    let mut files = Vec::new();
    for writer in writers {
        writer.media.stop_recording();
        let joined = tokio::task::spawn_blocking(move || writer.thread.join()).await;
        match joined {
            Ok(Ok(Ok(summary))) => files.push(RecordedFile {
                stream_id: writer.stream_id,
                path: summary.path.display().to_string(),
                video_frames: summary.video_frames,
                audio_packets: summary.audio_packets,
            }),
            Ok(Ok(Err(RecordError::Empty))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(stream = writer.stream_id.0, "recording failed: {e}")
            }
            _ => tracing::warn!(stream = writer.stream_id.0, "recording writer panicked"),
        }
    }
    files
}

/// `<dir>/<room>-<user>-<stream>.mp4` (ids are `[A-Za-z0-9_-]`: checked at join).
fn file_path(dir: &Path, room_id: &RoomId, info: &StreamInfo) -> PathBuf {
    dir.join(format!(
        "{}-{}-{}.mp4",
        room_id.0, info.user_id.0, info.stream_id.0
    ))
}

/// Starts one stream's writer thread. `Err(None)`: the stream is recorded
/// already.
fn start_writer(
    path: &Path,
    media: &Arc<PublishedMedia>,
    clock: RoomClock,
) -> Result<JoinHandle<RecordResult<RecordingSummary>>, Option<RecordError>> {
    let recorder = Mp4Recorder::create(path).map_err(Some)?;
    let Some(rx) = media.start_recording() else {
        drop(recorder);
        std::fs::remove_file(path).ok(); // created just now
        return Err(None);
    };
    let media = Arc::clone(media);
    std::thread::Builder::new()
        .name("recording".into())
        .spawn(move || write_stream(recorder, &rx, clock, &media))
        .map_err(|source| {
            Some(RecordError::Io {
                path: path.to_path_buf(),
                source,
            })
        })
}

/// The writer thread: RTP → access units / Opus packets → file, until the
/// recording or the stream stops.
fn write_stream(
    recorder: Mp4Recorder,
    rx: &crossbeam_channel::Receiver<RecordedPacket>,
    clock: RoomClock,
    media: &PublishedMedia,
) -> RecordResult<RecordingSummary> {
    let mut recorder = StreamRecorder::new(recorder, clock);
    let mut units = UnitAssembler::default();
    let mut last_request: Option<Instant> = None;
    for RecordedPacket { video, at, packet } in rx.iter() {
        if !video {
            recorder.audio(packet.header.timestamp, at, &packet.payload)?;
            continue;
        }
        match units.packet(&packet) {
            Unit::Lost => recorder.video_lost(),
            Unit::Complete(unit) => recorder.video(packet.header.timestamp, at, &unit)?,
            Unit::Partial => {}
        }
        if recorder.wants_keyframe()
            && last_request.is_none_or(|t| t.elapsed() >= KEYFRAME_REQUEST_INTERVAL)
        {
            last_request = Some(Instant::now());
            media.request_keyframe();
        }
    }
    recorder.finish()
}

/// What one video packet completed.
enum Unit {
    /// Nothing yet.
    Partial,
    /// A sequence gap: the unit it falls in is lost.
    Lost,
    /// A whole access unit (Annex B).
    Complete(Vec<u8>),
}

/// H.264 access units from RTP in arrival order: a new timestamp starts one,
/// the marker bit ends it, a sequence gap breaks it (no reordering here: a
/// late packet counts as lost).
#[derive(Default)]
struct UnitAssembler {
    depacketizer: H264Packet,
    unit: Vec<u8>,
    timestamp: Option<u32>,
    last_sequence: Option<u16>,
    broken: bool,
}

impl UnitAssembler {
    fn packet(&mut self, packet: &rtc::rtp::Packet) -> Unit {
        let sequence = packet.header.sequence_number;
        let mut lost = false;
        if let Some(last) = self.last_sequence {
            let step = sequence.wrapping_sub(last);
            if step == 0 || step > 0x8000 {
                return Unit::Partial; // a duplicate or a late packet: skip
            }
            lost = step != 1;
        }
        self.last_sequence = Some(sequence);
        if self.timestamp != Some(packet.header.timestamp) {
            self.unit.clear();
            self.broken = false;
            self.timestamp = Some(packet.header.timestamp);
        }
        if lost {
            self.broken = true;
        }
        // Padding only (RFC 3550 §5.1, a browser probing its bandwidth):
        // it keeps the sequence going and adds nothing to the unit.
        if !packet.payload.is_empty() {
            match self.depacketizer.depacketize(&packet.payload) {
                Ok(nal) => self.unit.extend_from_slice(&nal),
                Err(_) => self.broken = true,
            }
        }
        let done = packet.header.marker;
        let result = match (done, self.broken) {
            (true, false) if !self.unit.is_empty() => {
                Unit::Complete(std::mem::take(&mut self.unit))
            }
            _ if lost => Unit::Lost,
            _ => Unit::Partial,
        };
        if done {
            self.unit.clear();
            self.timestamp = None;
        }
        result
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use rtc::rtp::Header;

    fn packet(seq: u16, timestamp: u32, marker: bool, payload: &'static [u8]) -> rtc::rtp::Packet {
        rtc::rtp::Packet {
            header: Header {
                version: 2,
                sequence_number: seq,
                timestamp,
                marker,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(payload),
        }
    }

    /// FU-A (RFC 6184 §5.8) of an IDR slice: start, middle, end.
    const FU_START: &[u8] = &[0x7c, 0x85, 1, 2];
    const FU_MIDDLE: &[u8] = &[0x7c, 0x05, 3, 4];
    const FU_END: &[u8] = &[0x7c, 0x45, 5, 6];
    const P_SLICE: &[u8] = &[0x41, 9, 9];

    /// As the SDK's assembler (`client::subscribe`): padding-only packets,
    /// inside a unit or between units, lose nothing.
    #[test]
    fn padding_only_packets_break_no_unit() {
        let mut units = UnitAssembler::default();
        assert!(matches!(
            units.packet(&packet(10, 0, false, FU_START)),
            Unit::Partial
        ));
        assert!(matches!(
            units.packet(&packet(11, 0, false, &[])),
            Unit::Partial
        ));
        let Unit::Complete(unit) = units.packet(&packet(12, 0, true, FU_END)) else {
            panic!("padding inside the unit broke it");
        };
        assert_eq!(unit, [0, 0, 0, 1, 0x65, 1, 2, 5, 6]);
        assert!(matches!(
            units.packet(&packet(13, 0, false, &[])),
            Unit::Partial
        ));
        assert!(matches!(
            units.packet(&packet(14, 3000, true, P_SLICE)),
            Unit::Complete(_)
        ));
    }

    #[test]
    fn units_complete_on_the_marker_and_a_gap_loses_the_unit() {
        let mut units = UnitAssembler::default();
        assert!(matches!(
            units.packet(&packet(10, 0, false, FU_START)),
            Unit::Partial
        ));
        assert!(matches!(
            units.packet(&packet(11, 0, false, FU_MIDDLE)),
            Unit::Partial
        ));
        let Unit::Complete(unit) = units.packet(&packet(12, 0, true, FU_END)) else {
            panic!("a whole unit");
        };
        assert_eq!(unit, [0, 0, 0, 1, 0x65, 1, 2, 3, 4, 5, 6]);
        // One frame, one packet.
        assert!(matches!(
            units.packet(&packet(13, 3000, true, P_SLICE)),
            Unit::Complete(_)
        ));
        // The middle of the next IDR is lost: the unit is, too.
        assert!(matches!(
            units.packet(&packet(14, 6000, false, FU_START)),
            Unit::Partial
        ));
        assert!(matches!(
            units.packet(&packet(16, 6000, true, FU_END)),
            Unit::Lost
        ));
        // A late packet is skipped, a duplicate too; the next unit is whole again.
        assert!(matches!(
            units.packet(&packet(15, 6000, false, FU_MIDDLE)),
            Unit::Partial
        ));
        assert!(matches!(
            units.packet(&packet(17, 9000, true, P_SLICE)),
            Unit::Complete(_)
        ));
        assert!(matches!(
            units.packet(&packet(17, 9000, true, P_SLICE)),
            Unit::Partial
        ));
        // A gap before a unit's first packet loses that unit.
        assert!(matches!(
            units.packet(&packet(19, 12000, true, P_SLICE)),
            Unit::Lost
        ));
        // Across the sequence wrap.
        let mut units = UnitAssembler::default();
        assert!(matches!(
            units.packet(&packet(65535, 0, true, P_SLICE)),
            Unit::Complete(_)
        ));
        assert!(matches!(
            units.packet(&packet(0, 3000, true, P_SLICE)),
            Unit::Complete(_)
        ));
    }
}
