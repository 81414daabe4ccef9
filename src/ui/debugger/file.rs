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
        d
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
