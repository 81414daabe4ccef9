//! Recording: received H.264 access units and Opus packets written, as they
//! are (no re-encoding), into one MP4 file per stream that common players open.
//!
//! Used by the client recorder (`huddle record`, [`crate::bot::record`]); the
//! server can feed it the same way from the SFU's ingress.
//!
//! ```text
//!  (arrival, RTP timestamp) ──TrackClock──▶ ticks on the room clock ──▶ Mp4Recorder ──▶ file.mp4
//!  StreamRecorder = both tracks' clocks + the Mp4Recorder (holds a track's first 0.5 s)
//! ```
//!
//! Invariants the files keep:
//! * **One room clock.** Every file of one recording counts from the same
//!   origin ([`RoomClock`]): a stream that arrives later starts later in its
//!   file (its first picture is held from 0, its sound starts with silence),
//!   so the files of one room play in sync side by side. A track's start is
//!   what the least delayed of its first 0.5 s of packets implies, not its
//!   first packet's arrival ([`TrackClock`]).
//! * **Video starts on a keyframe** (an IDR with its SPS/PPS), and after a
//!   loss ([`Mp4Recorder::video_lost`]) units are dropped until the next
//!   keyframe; the last good picture is held over the gap. The recorder says
//!   when it wants a keyframe ([`Mp4Recorder::wants_keyframe`]) so the caller
//!   can send a PLI.
//! * **Audio has no holes.** Missing 20 ms frames are filled with Opus
//!   silence, so audio time is sample-exact (MP4 has no per-sample timestamps).
//!
//! The muxer is `shiguredo_mp4` (Shiguredo's pure-Rust MP4 library, no
//! dependencies): it writes `avc1` (H.264) and `Opus`/`dOps` sample entries,
//! which `mp4` 0.14 (no Opus) and `webm` 2.x (VP8/VP9/AV1 only) do not.
//! Imports: nothing else in huddle.

mod clock;
mod mp4_file;
mod opus;
mod stream_recorder;

pub use clock::{RoomClock, TrackClock};
pub use mp4_file::{Mp4Recorder, RecordingSummary};
pub use opus::{OPUS_SILENCE_MONO, opus_packet_samples};
pub use stream_recorder::StreamRecorder;

/// RTP clock rate of H.264 (RFC 6184 §8.2.1) and the video track's timescale.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;
/// RTP clock rate of Opus (RFC 7587 §4.1) and the audio track's timescale.
pub const AUDIO_CLOCK_RATE: u32 = 48_000;

/// Why a recording could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Creating or writing the file failed (disk full, no such directory,
    /// permissions). Not retryable without fixing the output directory.
    #[error("recording file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The muxer refused a sample or the final boxes (a bug, or an SPS it
    /// cannot parse). The file is left incomplete.
    #[error("MP4 muxer: {0}")]
    Mux(String),
    /// Nothing was recorded (no keyframe, no audio): the file was removed.
    #[error("nothing was recorded")]
    Empty,
}

/// `Result` of this module.
pub type RecordResult<T> = Result<T, RecordError>;
