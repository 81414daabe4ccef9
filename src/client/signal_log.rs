//! The signalling log: every frame this client sends and receives on its
//! signalling WebSocket, with the time it passed, for the app's stream
//! debugger (issue 14 §1) and for bug reports.
//!
//! Invariants:
//! - Off until [`SignalLog::set_enabled`]: while off, a frame costs one
//!   atomic load and nothing is kept.
//! - Bounded: the newest [`SIGNAL_LOG_CAPACITY`] frames are kept; older ones
//!   are dropped and counted ([`SignalLog::dropped`]).
//! - Every record has a sequence number that only grows, so a reader pulls
//!   what is new with [`SignalLog::since`] without copying the rest.
//! - The text is the frame exactly as it went over the wire (signatures and
//!   resume tokens included: the log is for the user's own eyes and files).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Frames kept; older ones are dropped first.
pub const SIGNAL_LOG_CAPACITY: usize = 2000;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Server → client.
    In,
    /// Client → server.
    Out,
    /// Not on the wire: the SDK's own note of a link's state change
    /// (`{"type":"link-state","linkId":N,"state":"connected"}`), in line with
    /// the frames around it.
    Local,
}

/// One signalling frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalRecord {
    /// Grows by one per frame recorded.
    pub seq: u64,
    /// When it was sent or read, Unix milliseconds.
    pub at_ms: u64,
    /// Which way.
    pub direction: Direction,
    /// Its kind, for filtering: a request's `type` (`publish`), `reply:RESULT`
    /// (`reply:published`), `event:TYPE` (`event:stream-added`) or `error`.
    pub kind: String,
    /// The frame's JSON text, as sent or received.
    pub text: String,
}

#[derive(Debug, Default)]
struct LogState {
    next_seq: u64,
    dropped: u64,
    records: VecDeque<SignalRecord>,
}

#[derive(Debug, Default)]
struct Inner {
    enabled: AtomicBool,
    state: Mutex<LogState>,
}

/// A client's signalling log (see the module doc). Cheap to clone: clones
/// share the log.
#[derive(Debug, Clone, Default)]
pub struct SignalLog(Arc<Inner>);

impl SignalLog {
    /// Starts (or stops) keeping frames. What was kept stays.
    pub fn set_enabled(&self, on: bool) {
        self.0.enabled.store(on, Ordering::Release);
    }

    /// Whether frames are kept.
    pub fn is_enabled(&self) -> bool {
        self.0.enabled.load(Ordering::Acquire)
    }

    /// Records one frame (when enabled).
    pub(crate) fn record(&self, direction: Direction, text: &str) {
        if !self.is_enabled() {
            return;
        }
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let kind = kind_of(text);
        let mut state = self.lock();
        let seq = state.next_seq;
        state.next_seq += 1;
        if state.records.len() == SIGNAL_LOG_CAPACITY {
            state.records.pop_front();
            state.dropped += 1;
        }
        state.records.push_back(SignalRecord {
            seq,
            at_ms,
            direction,
            kind,
            text: text.to_owned(),
        });
    }

    /// Records a link's peer-connection state change (ICE and DTLS
    /// together, as webrtc-rs reports them), as a [`Direction::Local`] record
    /// of kind `link-state`.
    pub(crate) fn note_link_state(&self, link_id: u64, state: &str) {
        if self.is_enabled() {
            let text = serde_json::json!({"type": "link-state", "linkId": link_id, "state": state});
            self.record(Direction::Local, &text.to_string());
        }
    }

    /// The kept frames whose sequence number is `seq` or more, oldest first.
    pub fn since(&self, seq: u64) -> Vec<SignalRecord> {
        let state = self.lock();
        // Sequence numbers are consecutive in the ring: skip by arithmetic.
        let first = state.records.front().map_or(0, |r| r.seq);
        let skip = seq.saturating_sub(first) as usize;
        state.records.iter().skip(skip).cloned().collect()
    }

    /// Frames dropped because the log was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock leaves consistent data (each
        // change is one push or pop): keep using it.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The kind of a frame (see [`SignalRecord::kind`]); `?` for text that is not
/// a JSON object with a `type`.
pub fn kind_of(text: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return "?".to_owned();
    };
    let field = |v: &serde_json::Value, name: &str| {
        v.get(name)
            .and_then(|t| t.as_str())
            .unwrap_or("?")
            .to_owned()
    };
    match value.get("type").and_then(|t| t.as_str()) {
        Some("reply") => format!("reply:{}", field(&value, "result")),
        Some("event") => match value.get("event") {
            Some(event) => format!("event:{}", field(event, "type")),
            None => "event:?".to_owned(),
        },
        Some(kind) => kind.to_owned(),
        None => "?".to_owned(),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn nothing_is_kept_until_enabled() {
        let log = SignalLog::default();
        log.record(Direction::Out, r#"{"id":1,"type":"ping"}"#);
        assert!(log.since(0).is_empty());
        log.set_enabled(true);
        log.record(Direction::Out, r#"{"id":2,"type":"ping"}"#);
        assert_eq!(log.since(0).len(), 1);
    }

    #[test]
    fn the_log_keeps_the_newest_frames_only() {
        let log = SignalLog::default();
        log.set_enabled(true);
        for i in 0..SIGNAL_LOG_CAPACITY + 25 {
            log.record(
                Direction::In,
                &format!(r#"{{"type":"reply","id":{i},"result":"pong"}}"#),
            );
        }
        let all = log.since(0);
        assert_eq!(all.len(), SIGNAL_LOG_CAPACITY);
        assert_eq!(log.dropped(), 25);
        assert_eq!(all.first().map(|r| r.seq), Some(25));
        let tail = log.since(SIGNAL_LOG_CAPACITY as u64 + 20);
        assert_eq!(tail.len(), 5);
        assert_eq!(
            tail.first().map(|r| r.seq),
            Some(SIGNAL_LOG_CAPACITY as u64 + 20)
        );
    }

    #[test]
    fn kinds_name_requests_replies_events_and_errors() {
        assert_eq!(
            kind_of(r#"{"id":3,"type":"publish","sdp":"v=0"}"#),
            "publish"
        );
        assert_eq!(
            kind_of(r#"{"type":"reply","id":3,"result":"published"}"#),
            "reply:published"
        );
        assert_eq!(
            kind_of(r#"{"type":"event","event":{"type":"stream-added"}}"#),
            "event:stream-added"
        );
        assert_eq!(kind_of(r#"{"type":"error","id":1,"code":9}"#), "error");
        assert_eq!(kind_of("not json"), "?");
    }
}
