//! One stream's MP4 file, written as samples arrive (sample data appended to
//! `mdat` at once, the `moov` index written by [`Mp4Recorder::finish`]).
//!
//! Video state machine: `WaitingForKeyframe` → (IDR with SPS/PPS) →
//! `Recording` → (a lost unit) → `WaitingForKeyframe` … Every sample's
//! duration is only known when the next one arrives, so the last video sample
//! waits in `pending`; a gap simply lengthens it (the picture is held).

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use shiguredo_mp4::TrackKind;
use shiguredo_mp4::bitstream::h264::{
    H264NalUnitType, H264SampleEntryConfig, LengthSize, build_avc1_box, parse_annexb_nal_units,
};
use shiguredo_mp4::bitstream::opus::{ChannelCount, OpusSampleEntryConfig, build_opus_box};
use shiguredo_mp4::boxes::SampleEntry;
use shiguredo_mp4::mux::{Mp4FileMuxer, Sample};

use super::opus::{OPUS_SILENCE_MONO, opus_packet_samples};
use super::{AUDIO_CLOCK_RATE, RecordError, RecordResult, VIDEO_CLOCK_RATE};

/// Duration of the last video sample when no next one came (1/30 s).
const LAST_VIDEO_SAMPLE: u32 = VIDEO_CLOCK_RATE / 30;
/// One 20 ms Opus frame, the unit holes are filled with.
const SILENCE_SAMPLES: u64 = 960;
/// Opus pre-skip written in `dOps` (RFC 7845 §4.2; libopus' usual 6.5 ms).
const OPUS_PRE_SKIP: u16 = 312;

/// The video track's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoState {
    /// Dropping units until an IDR with SPS and PPS (start, or after a loss).
    WaitingForKeyframe,
    /// Appending every unit.
    Recording,
}

/// A video sample whose duration is not known yet.
struct PendingVideo {
    ticks: u64,
    data: Vec<u8>,
    keyframe: bool,
    entry: Option<SampleEntry>,
}

/// What a finished recording holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingSummary {
    /// The file.
    pub path: PathBuf,
    /// Video samples written.
    pub video_frames: u64,
    /// Video units dropped while waiting for a keyframe.
    pub video_dropped: u64,
    /// Audio packets written (received ones).
    pub audio_packets: u64,
    /// Silent 20 ms frames written into holes and before the first packet.
    pub audio_silence: u64,
}

/// One stream's MP4 recording (H.264 `avc1` + Opus), times in ticks of the
/// room clock ([`super::RoomClock`]).
pub struct Mp4Recorder {
    path: PathBuf,
    out: BufWriter<File>,
    position: u64,
    muxer: Mp4FileMuxer,
    video: VideoState,
    /// SPS and PPS of the current sample entry.
    parameter_sets: Option<(Vec<u8>, Vec<u8>)>,
    pending: Option<PendingVideo>,
    /// Where the audio track ends (48 kHz ticks); `None` before any audio.
    audio_end: Option<u64>,
    summary: RecordingSummary,
}

impl Mp4Recorder {
    /// Creates `path` and writes the MP4 header.
    pub fn create(path: &Path) -> RecordResult<Self> {
        let io = |source| RecordError::Io {
            path: path.to_path_buf(),
            source,
        };
        let muxer = Mp4FileMuxer::new().map_err(mux)?;
        let mut out = BufWriter::new(File::create(path).map_err(io)?);
        out.write_all(muxer.initial_boxes_bytes()).map_err(io)?;
        let position = muxer.initial_boxes_bytes().len() as u64;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            position,
            muxer,
            video: VideoState::WaitingForKeyframe,
            parameter_sets: None,
            pending: None,
            audio_end: None,
            summary: RecordingSummary {
                path: path.to_path_buf(),
                ..RecordingSummary::default()
            },
        })
    }

    /// The video track waits for a keyframe: the caller should request one
    /// (PLI), rate-limited on its side.
    pub fn wants_keyframe(&self) -> bool {
        self.video == VideoState::WaitingForKeyframe
    }

    /// A video unit was lost (a packet given up on, a queue overflow): drop
    /// everything up to the next keyframe, whose decoding does not depend on it.
    pub fn video_lost(&mut self) {
        self.video = VideoState::WaitingForKeyframe;
    }

    /// One H.264 access unit (Annex B) at `ticks` (90 kHz) on the room clock.
    pub fn push_video(&mut self, ticks: u64, annexb: &[u8]) -> RecordResult<()> {
        let Ok(nals) = parse_annexb_nal_units(annexb) else {
            // Undecodable framing: treat as a loss.
            self.summary.video_dropped += 1;
            self.video = VideoState::WaitingForKeyframe;
            return Ok(());
        };
        let mut sps = None;
        let mut pps = None;
        let mut idr = false;
        let mut data = Vec::with_capacity(annexb.len() + 16);
        for nal in &nals {
            match nal.nal_unit_type {
                H264NalUnitType::Sps => sps = Some(nal.data),
                H264NalUnitType::Pps => pps = Some(nal.data),
                // Access unit delimiters carry nothing a file needs.
                H264NalUnitType::Aud => {}
                other => {
                    idr |= other == H264NalUnitType::IdrSlice;
                    data.extend_from_slice(&(nal.data.len() as u32).to_be_bytes());
                    data.extend_from_slice(nal.data);
                }
            }
        }
        let mut entry = None;
        if let (Some(sps), Some(pps)) = (sps, pps)
            && self
                .parameter_sets
                .as_ref()
                .is_none_or(|(s, p)| s != sps || p != pps)
        {
            let config = H264SampleEntryConfig {
                length_size: LengthSize::FourBytes,
            };
            match build_avc1_box(&[sps.to_vec()], &[pps.to_vec()], &config) {
                Ok(avc1) => {
                    entry = Some(SampleEntry::Avc1(avc1));
                    self.parameter_sets = Some((sps.to_vec(), pps.to_vec()));
                }
                Err(e) => tracing::debug!("recording: SPS/PPS refused: {e}"),
            }
        }
        if self.video == VideoState::WaitingForKeyframe {
            if !idr || self.parameter_sets.is_none() || data.is_empty() {
                self.summary.video_dropped += 1;
                return Ok(());
            }
            self.video = VideoState::Recording;
        }
        let mut ticks = ticks;
        if let Some(previous) = self.pending.take() {
            // A sample that goes back in time (a publisher restart) gets the
            // shortest duration instead.
            ticks = ticks.max(previous.ticks + 1);
            let duration = ticks - previous.ticks;
            self.append_video(previous, duration)?;
        } else if self.summary.video_frames == 0 {
            // The first picture is held from the room origin.
            self.pending = Some(PendingVideo {
                ticks: 0,
                data,
                keyframe: true,
                entry,
            });
            return Ok(());
        }
        self.pending = Some(PendingVideo {
            ticks,
            data,
            keyframe: idr,
            entry,
        });
        Ok(())
    }

    /// One Opus packet at `ticks` (48 kHz) on the room clock. Holes before it
    /// are filled with silence; a packet that lies wholly before the audio
    /// already written (a late duplicate) is dropped.
    pub fn push_audio(&mut self, ticks: u64, packet: &[u8]) -> RecordResult<()> {
        let Some(samples) = opus_packet_samples(packet) else {
            return Ok(());
        };
        let end = self.audio_end.unwrap_or(0);
        if self.audio_end.is_some() && ticks + u64::from(samples) / 2 < end {
            return Ok(());
        }
        // Fill whole 20 ms frames of silence up to this packet.
        let mut filled = end;
        while filled + SILENCE_SAMPLES <= ticks + SILENCE_SAMPLES / 2 {
            self.append_audio(&OPUS_SILENCE_MONO, SILENCE_SAMPLES as u32)?;
            self.summary.audio_silence += 1;
            filled += SILENCE_SAMPLES;
        }
        self.append_audio(packet, samples)?;
        self.summary.audio_packets += 1;
        self.audio_end = Some(filled + u64::from(samples));
        Ok(())
    }

    /// Writes the last sample and the index, and closes the file. A file with
    /// nothing in it is removed ([`RecordError::Empty`]).
    pub fn finish(mut self) -> RecordResult<RecordingSummary> {
        if let Some(last) = self.pending.take() {
            self.append_video(last, u64::from(LAST_VIDEO_SAMPLE))?;
        }
        if self.summary.video_frames == 0 && self.summary.audio_packets == 0 {
            drop(self.out);
            std::fs::remove_file(&self.path).ok(); // already gone is fine
            return Err(RecordError::Empty);
        }
        let path = self.path.clone();
        let io = |source| RecordError::Io {
            path: path.clone(),
            source,
        };
        let finalized = self.muxer.finalize().map_err(mux)?;
        self.out.flush().map_err(io)?;
        let file = self.out.get_mut();
        for (offset, bytes) in finalized.offset_and_bytes_pairs() {
            file.seek(SeekFrom::Start(offset)).map_err(io)?;
            file.write_all(bytes).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        Ok(self.summary)
    }

    fn append_video(&mut self, sample: PendingVideo, duration: u64) -> RecordResult<()> {
        let duration = u32::try_from(duration).unwrap_or(u32::MAX);
        self.append(
            TrackKind::Video,
            sample.entry,
            sample.keyframe,
            VIDEO_CLOCK_RATE,
            duration,
            &sample.data,
        )?;
        self.summary.video_frames += 1;
        Ok(())
    }

    fn append_audio(&mut self, packet: &[u8], samples: u32) -> RecordResult<()> {
        let entry = self.audio_end.is_none().then(|| {
            SampleEntry::Opus(build_opus_box(&OpusSampleEntryConfig {
                channel_count: ChannelCount::Mono,
                pre_skip: OPUS_PRE_SKIP,
                input_sample_rate: AUDIO_CLOCK_RATE,
                output_gain: 0,
            }))
        });
        if entry.is_some() {
            self.audio_end = Some(0);
        }
        self.append(
            TrackKind::Audio,
            entry,
            true,
            AUDIO_CLOCK_RATE,
            samples,
            packet,
        )
    }

    fn append(
        &mut self,
        track_kind: TrackKind,
        sample_entry: Option<SampleEntry>,
        keyframe: bool,
        timescale: u32,
        duration: u32,
        data: &[u8],
    ) -> RecordResult<()> {
        let sample = Sample {
            track_kind,
            sample_entry,
            keyframe,
            timescale: NonZeroU32::new(timescale).unwrap_or(NonZeroU32::MIN),
            duration,
            composition_time_offset: None,
            data_offset: self.position,
            data_size: data.len(),
        };
        self.muxer.append_sample(&sample).map_err(mux)?;
        self.out.write_all(data).map_err(|source| RecordError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.position += data.len() as u64;
        Ok(())
    }
}

fn mux(e: shiguredo_mp4::mux::MuxError) -> RecordError {
    RecordError::Mux(e.to_string())
}

#[cfg(test)]
mod test {
    use super::*;

    /// A 20 ms SILK packet (TOC config 1, one frame) with a made-up payload.
    const PACKET: [u8; 4] = [0x08, 1, 2, 3];

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("huddle-{name}-{}.mp4", std::process::id()))
    }

    #[test]
    fn audio_holes_and_the_lead_in_are_filled_with_silence() {
        let path = temp("audio-holes");
        let mut recorder = Mp4Recorder::create(&path).expect("create");
        // First packet 100 ms after the origin: 5 silent frames before it.
        recorder.push_audio(4_800, &PACKET).expect("push");
        recorder.push_audio(4_800 + 960, &PACKET).expect("push");
        // 3 frames lost.
        recorder.push_audio(4_800 + 5 * 960, &PACKET).expect("push");
        // A late duplicate of a written frame is dropped.
        recorder.push_audio(4_800 + 960, &PACKET).expect("push");
        // Slightly early (jitter) still goes after the last one.
        recorder
            .push_audio(4_800 + 6 * 960 - 100, &PACKET)
            .expect("push");
        assert!(recorder.wants_keyframe(), "no video yet");
        let summary = recorder.finish().expect("finish");
        assert_eq!(summary.audio_packets, 4);
        assert_eq!(summary.audio_silence, 5 + 3);
        assert_eq!(summary.video_frames, 0);
        assert!(path.metadata().expect("file").len() > 100);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn a_recording_without_media_is_removed() {
        let path = temp("empty");
        let mut recorder = Mp4Recorder::create(&path).expect("create");
        // Not a keyframe, not even H.264: dropped.
        recorder
            .push_video(0, &[0, 0, 0, 1, 0x41, 1])
            .expect("push");
        recorder.push_video(3000, b"garbage").expect("push");
        recorder
            .push_audio(0, &[])
            .expect("an empty packet is skipped");
        assert!(matches!(recorder.finish(), Err(RecordError::Empty)));
        assert!(!path.exists());
    }
}
