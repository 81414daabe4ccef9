//! The debugger's session file: everything it shows, in one JSON document,
//! written by `Save session…` and `--record-debug FILE`, read back by
//! `huddle inspect FILE` (issue 14 §1).
//!
//! A file that is not one (truncated, another format, a newer version) is a
//! clear [`DebugFileError`], never a panic; what is read is bounded again
//! (a hand-edited file cannot make a ring hold more than its bound).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::history::History;
use super::timeline::StreamTimeline;
use crate::client::{SIGNAL_LOG_CAPACITY, SignalRecord};

/// The `format` field of every session file.
pub const FORMAT: &str = "huddle-debug";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// Everything the debugger shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugData {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// When the session started, Unix ms (plot times count from it).
    pub started_unix_ms: u64,
    /// The room, as the window title names it.
    pub room: String,
    /// The plotted series.
    pub history: History,
    /// The signalling log, oldest first.
    pub signalling: Vec<SignalRecord>,
    /// Each stream's selected ICE pair, as last asked (by stream id).
    pub selected_pairs: BTreeMap<u64, String>,
    /// Each received video stream's frames (by stream id). Absent in files
    /// written before the timeline existed: they read as none (the field is
    /// additive, so the version stays 1 both ways).
    #[serde(default)]
    pub timeline: BTreeMap<u64, StreamTimeline>,
}

impl DebugData {
    /// An empty session of `room`, starting now.
    pub fn new(room: String) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            started_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            room,
            history: History::default(),
            signalling: Vec::new(),
            selected_pairs: BTreeMap::new(),
            timeline: BTreeMap::new(),
        }
    }

    /// Adds signalling records, keeping the newest [`SIGNAL_LOG_CAPACITY`].
    pub fn add_signalling(&mut self, records: Vec<SignalRecord>) {
        self.signalling.extend(records);
        let excess = self.signalling.len().saturating_sub(SIGNAL_LOG_CAPACITY);
        self.signalling.drain(..excess);
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Result<String, DebugFileError> {
        serde_json::to_string(self).map_err(|e| DebugFileError::Encode(e.to_string()))
    }

    /// Parses a document.
    pub fn from_json(text: &str) -> Result<Self, DebugFileError> {
        // The header first: a file of another kind says so, not "missing field".
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let header: Header = serde_json::from_str(text).map_err(|e| DebugFileError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if header.format.as_deref() != Some(FORMAT) {
            return Err(DebugFileError::NotADebugFile);
        }
        match header.version {
            Some(VERSION) => {}
            v => return Err(DebugFileError::Version(v.unwrap_or(0))),
        }
        let mut data: Self = serde_json::from_str(text).map_err(|e| DebugFileError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        data.history.trim();
        for (stream, timeline) in &mut data.timeline {
            timeline
                .check()
                .map_err(|message| DebugFileError::Timeline {
                    stream: *stream,
                    message,
                })?;
        }
        let records = std::mem::take(&mut data.signalling);
        data.add_signalling(records);
        Ok(data)
    }

    /// Writes the document to `path` (whole, through a temporary file beside
    /// it, so a reader never sees half a file).
    pub fn save(&self, path: &Path) -> Result<(), DebugFileError> {
        write_atomic(path, &self.to_json()?)
    }

    /// Reads a document from `path`.
    pub fn load(path: &Path) -> Result<Self, DebugFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| DebugFileError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Self::from_json(&text)
    }
}

/// Writes `text` to `path` through `path.tmp`.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), DebugFileError> {
    let io = |e: std::io::Error| DebugFileError::Io {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Why a session file could not be written or read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DebugFileError {
    /// The file could not be read or written (missing, no permission, disk
    /// full). Retrying helps once that is fixed.
    #[error("{message}: {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// Not JSON, or cut short (a truncated file ends in "EOF while parsing").
    #[error("not a complete huddle debug file (line {line}, column {column}): {message}")]
    Json {
        /// Where parsing stopped.
        line: usize,
        /// Column.
        column: usize,
        /// serde's message.
        message: String,
    },
    /// JSON, but not a huddle debug session (no `"format": "huddle-debug"`).
    #[error("not a huddle debug file (no \"format\": \"{FORMAT}\")")]
    NotADebugFile,
    /// A stream's frame timeline that cannot be: frames out of order, a
    /// frame inconsistent with itself (a hand-edited or corrupted file).
    #[error("the timeline of stream {stream} is malformed: {message}")]
    Timeline {
        /// The stream.
        stream: u64,
        /// What is wrong, naming the frame.
        message: String,
    },
    /// A debug file of a version this build does not read.
    #[error("huddle debug file version {0}; this huddle reads version {VERSION}")]
    Version(u32),
    /// The session could not be encoded (should not happen).
    #[error("cannot encode the session: {0}")]
    Encode(String),
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::client::signal_log::Direction;
    use crate::ui::debugger::history::Metric;

    fn sample() -> DebugData {
        let mut d = DebugData::new("standup".into());
        for t in 0..30 {
            d.history
                .push("all links", Metric::Bitrate, f64::from(t), 900.0);
        }
        d.add_signalling(vec![SignalRecord {
            seq: 0,
            at_ms: 1,
            direction: Direction::Out,
            kind: "publish".into(),
            text: r#"{"id":1,"type":"publish","sdp":"v=0"}"#.into(),
        }]);
        d.selected_pairs
            .insert(7, "host 127.0.0.1:1 <-> host 127.0.0.1:2".into());
        d.timeline.insert(7, timeline_of_real_log());
        d
    }

    /// A timeline as the SDK's frame log makes it: a keyframe of three
    /// packets, then a frame after a lost packet.
    fn timeline_of_real_log() -> StreamTimeline {
        use crate::client::FrameLogs;
        let logs = FrameLogs::default();
        logs.set_enabled(true);
        let log = logs.attach(crate::protocol::StreamId(7), "alice");
        let packet = |seq: u16, ts: u32, marker: bool, payload: &'static [u8]| rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                sequence_number: seq,
                timestamp: ts,
                marker,
                ..Default::default()
            },
            payload: bytes::Bytes::from_static(payload),
        };
        let t0 = std::time::Instant::now();
        // An IDR slice's FU-A start, middle and end, then a P slice.
        log.packet(&packet(100, 3000, false, &[0x7c, 0x85, 1, 2]), t0);
        log.packet(&packet(101, 3000, false, &[0x7c, 0x05, 3]), t0);
        log.packet(&packet(102, 3000, true, &[0x7c, 0x45, 4]), t0);
        log.packet(&packet(104, 6000, true, &[0x41, 9, 9]), t0);
        let mut t = StreamTimeline {
            user: "alice".into(),
            epoch_unix_ms: log.epoch_unix_ms(),
            ..Default::default()
        };
        t.merge(log.snapshot());
        t
    }

    #[test]
    fn the_timeline_goes_into_the_file_and_comes_back() {
        let d = sample();
        let t = &d.timeline[&7];
        assert_eq!(t.frames.len(), 2);
        assert!(t.frames[0].keyframe && !t.frames[1].keyframe);
        assert_eq!(t.frames[1].gap_before, 1);
        let back = DebugData::from_json(&d.to_json().unwrap()).unwrap();
        assert_eq!(back.timeline, d.timeline);
        let seqs: Vec<u16> = back.timeline[&7].frames[0]
            .packet_list
            .iter()
            .map(|p| p.seq)
            .collect();
        assert_eq!(seqs, vec![100, 101, 102]);
        // A file from before the timeline reads, with none.
        let mut old: serde_json::Value = serde_json::from_str(&d.to_json().unwrap()).unwrap();
        old.as_object_mut().unwrap().remove("timeline");
        let read = DebugData::from_json(&old.to_string()).unwrap();
        assert!(read.timeline.is_empty());
        assert_eq!(read.signalling, d.signalling);
    }

    #[test]
    fn a_malformed_timeline_is_a_one_line_error() {
        let json = sample().to_json().unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        // Frames out of order.
        let frames = v["timeline"]["7"]["frames"].as_array_mut().unwrap();
        frames.swap(0, 1);
        let err = DebugData::from_json(&v.to_string()).unwrap_err();
        assert!(
            matches!(err, DebugFileError::Timeline { stream: 7, .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert_eq!(
            text,
            "the timeline of stream 7 is malformed: frame 0 listed after frame 1"
        );
        // A wrong type where a frame's field should be: the JSON error.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["timeline"]["7"]["frames"][0]["firstSeq"] = serde_json::json!("one hundred");
        let err = DebugData::from_json(&v.to_string()).unwrap_err();
        assert!(matches!(err, DebugFileError::Json { .. }), "{err:?}");
        assert!(!err.to_string().contains('\n'), "{err}");
        // More packets listed than counted, a sequence number out of range.
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["timeline"]["7"]["frames"][1]["packets"] = serde_json::json!(0);
        let err = DebugData::from_json(&v.to_string()).unwrap_err();
        assert!(
            err.to_string().contains("1 packets listed, 0 counted"),
            "{err}"
        );
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["timeline"]["7"]["frames"][1]["packetList"][0]["seq"] = serde_json::json!(70000);
        assert!(matches!(
            DebugData::from_json(&v.to_string()),
            Err(DebugFileError::Json { .. })
        ));
    }

    #[test]
    fn a_saved_session_reads_back_the_same() {
        let dir = std::env::temp_dir().join(format!("huddle-debugger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("session.json");
        let d = sample();
        d.save(&path).unwrap();
        assert_eq!(DebugData::load(&path).unwrap(), d);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn truncated_foreign_and_newer_files_are_clear_errors() {
        let json = sample().to_json().unwrap();
        for cut in [1, json.len() / 3, json.len() / 2, json.len() - 1] {
            match DebugData::from_json(&json[..cut]) {
                Err(DebugFileError::Json { message, .. }) => {
                    assert!(message.contains("EOF"), "{message}")
                }
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        assert_eq!(
            DebugData::from_json(r#"{"users":[]}"#),
            Err(DebugFileError::NotADebugFile)
        );
        assert_eq!(
            DebugData::from_json(r#"{"format":"huddle-debug","version":9}"#),
            Err(DebugFileError::Version(9))
        );
        assert!(matches!(
            DebugData::from_json(r#"{"format":"huddle-debug","version":1,"history":7}"#),
            Err(DebugFileError::Json { .. })
        ));
        assert!(matches!(
            DebugData::load(Path::new("/nonexistent/huddle-debugger.json")),
            Err(DebugFileError::Io { .. })
        ));
        let text = DebugData::load(Path::new("/nonexistent/x.json"))
            .unwrap_err()
            .to_string();
        assert!(text.ends_with("/nonexistent/x.json"), "{text}");
    }
}
