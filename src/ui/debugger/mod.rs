//! The stream debugger (issue 14 §1): live plots of every stream's and
//! link's statistics, the signalling log, each link's SDP and ICE, saved to
//! and read from one JSON file.
//!
//! ```text
//!  Client ── stats_report (1/s) ─▶ Sampler task ─▶ bounded channel ─▶ Debugger::poll ─▶ History
//!  Client::signal_log (bounded) ─────────── since(seq) each pass ──▶ DebugData::signalling
//!  Client::frame_logs (bounded, on while a debugger lives) ─ since(cursor) 5/s ─▶ DebugData::timeline
//!  DebugData ─▶ panel::show (plots, log, links) ─▶ file.rs (Save session…, --record-debug, inspect)
//! ```
//!
//! Everything shown comes from the SDK (its stats report and its signalling
//! log): there is no second stats path. A [`Debugger`] is either live (fed
//! by a room's client) or offline (a file opened with `huddle inspect`); the
//! panel draws both the same way.

pub mod file;
pub mod history;
pub mod inspect;
pub mod links;
pub mod panel;
pub mod plot_view;
pub mod sampler;
pub mod server_tab;
pub mod server_view;
pub mod timeline;
pub mod timeline_view;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::client::{Client, SignalLog};
use file::{DebugData, DebugFileError};
use sampler::Sampler;

/// How often `--record-debug` rewrites its file.
const RECORD_EVERY: Duration = Duration::from_secs(5);

/// Where the data comes from.
enum Source {
    /// A room's client.
    Live {
        sampler: Sampler,
        log: SignalLog,
        /// The next signalling record to pull.
        next_seq: u64,
        /// The frame logs' reader (switches them on while it lives).
        frames: timeline::Puller,
    },
    /// A file (`huddle inspect`).
    Offline,
}

/// The debugger of one room session (or of a file).
pub struct Debugger {
    /// What it shows and saves.
    pub data: DebugData,
    source: Source,
    /// The panel's own state (tab, selection, filters).
    pub panel: panel::PanelState,
    /// `--record-debug FILE`, rewritten every [`RECORD_EVERY`].
    record_to: Option<PathBuf>,
    last_record: Instant,
    rt: Option<Handle>,
    /// The Server tab's source (`GET /rooms/{id}`); live debuggers only.
    pub server: Option<server_view::ServerView>,
}

impl Debugger {
    /// Starts following `client` (in `room`); `wake` asks the UI to repaint.
    pub fn live(
        rt: &Handle,
        client: &Client,
        room: String,
        record_to: Option<PathBuf>,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let log = client.signal_log().clone();
        log.set_enabled(true);
        Self {
            data: DebugData::new(room),
            source: Source::Live {
                sampler: Sampler::start(rt, client.clone(), wake),
                log,
                next_seq: 0,
                frames: timeline::Puller::start(client.frame_logs().clone()),
            },
            panel: panel::PanelState::default(),
            record_to,
            last_record: Instant::now(),
            rt: Some(rt.clone()),
            server: None,
        }
    }

    /// Shows a saved session.
    pub fn offline(data: DebugData) -> Self {
        Self {
            data,
            source: Source::Offline,
            panel: panel::PanelState::default(),
            record_to: None,
            last_record: Instant::now(),
            rt: None,
            server: None,
        }
    }

    /// Whether it follows a room (not a file).
    pub fn is_live(&self) -> bool {
        matches!(self.source, Source::Live { .. })
    }

    /// Shows the server's view of the room in the Server tab: fetched from
    /// the HTTP origin of `signalling_url` every 2 s in the background, with
    /// `token` as X-AUTH-TOKEN. Only for a live debugger.
    pub fn follow_server(
        &mut self,
        signalling_url: &str,
        token: String,
        wake: impl Fn() + Send + 'static,
    ) {
        if let Some(rt) = &self.rt {
            self.server = Some(server_view::ServerView::start(
                rt,
                signalling_url,
                &self.data.room,
                token,
                wake,
            ));
        }
    }

    /// Takes in what the SDK produced since the last pass (non-blocking).
    pub fn poll(&mut self) {
        self.take_in();
        if let Some(server) = &mut self.server {
            server.poll();
        }
        if self.record_to.is_some() && self.last_record.elapsed() >= RECORD_EVERY {
            self.last_record = Instant::now();
            self.write_record(false);
        }
    }

    fn take_in(&mut self) {
        self.take_in_frames(false);
        let Source::Live {
            sampler,
            log,
            next_seq,
            ..
        } = &mut self.source
        else {
            return;
        };
        for sample in sampler.drain() {
            sampler::record(&mut self.data.history, sample.t, &sample.report);
            for (stream, pair) in sample.pairs.into_iter().flatten() {
                let text = format!(
                    "{:?} {} <-> {:?} {}",
                    pair.local.kind, pair.local.address, pair.remote.kind, pair.remote.address
                );
                self.data.selected_pairs.insert(stream, text);
            }
        }
        let records = log.since(*next_seq);
        if let Some(last) = records.last() {
            *next_seq = last.seq + 1;
            self.data.add_signalling(records);
        }
    }

    /// Pulls the frame logs (at most every `timeline::PULL_EVERY` unless
    /// `force`), unless the timeline is paused.
    fn take_in_frames(&mut self, force: bool) {
        if let Source::Live { frames, .. } = &mut self.source
            && (force || self.panel.timeline.paused_at.is_none())
        {
            frames.pull(&mut self.data.timeline, force);
        }
    }

    /// Saves to `path` now.
    pub fn save(&self, path: &std::path::Path) -> Result<(), DebugFileError> {
        self.data.save(path)
    }

    /// Writes the `--record-debug` file: in the background while the session
    /// runs (`blocking == false`), at once when it ends.
    fn write_record(&self, blocking: bool) {
        let Some(path) = self.record_to.clone() else {
            return;
        };
        let json = match self.data.to_json() {
            Ok(json) => json,
            Err(e) => return tracing::warn!("--record-debug: {e}"),
        };
        let write = move || {
            if let Err(e) = file::write_atomic(&path, &json) {
                tracing::warn!("--record-debug: {e}");
            }
        };
        match (&self.rt, blocking) {
            (Some(rt), false) => {
                // The join handle is not needed: errors are logged.
                drop(rt.spawn_blocking(write));
            }
            _ => write(),
        }
    }
}

impl Drop for Debugger {
    fn drop(&mut self) {
        // The record file holds the whole session once the room is left.
        self.take_in();
        self.take_in_frames(true);
        self.write_record(true);
    }
}
