//! `huddle record`: a player that subscribes to every stream of a room and
//! writes each one, as received (no re-encoding), into its own MP4 file
//! ([`crate::record`]), all on one room clock that starts when it joins.
//!
//! One writer thread per stream takes the subscription's [`MediaTap`] and
//! owns its [`Mp4Recorder`]; it asks for a keyframe (a PLI) whenever the
//! recorder waits for one. A stream that goes away closes its file; the rest
//! close when the run stops.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::client::{
    Client, ClientResult, Credential, JoinConfig, MediaTap, RoomEvent, SubscribeOptions,
    TappedMedia,
};
use crate::protocol::{AppId, Role, RoomId, StreamId, UserId};
use crate::record::{
    Mp4Recorder, RecordError, RecordResult, RecordingSummary, RoomClock, StreamRecorder,
};

/// How often the recorder drains its event channel.
const EVENT_POLL: Duration = Duration::from_millis(20);
/// How long a writer waits for media before it checks its stop flag.
const WRITER_POLL: Duration = Duration::from_millis(50);

/// What `huddle record` does.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// Signalling URL.
    pub server_url: String,
    /// App id.
    pub app_id: AppId,
    /// Signature source.
    pub credential: Credential,
    /// Room to record.
    pub room_id: RoomId,
    /// The recorder's user id (it joins as a player).
    pub user_id: UserId,
    /// Directory the files go to (created if missing).
    pub out_dir: PathBuf,
    /// Stop after this long (`None`: until the stop future).
    pub duration: Option<Duration>,
}

/// What a recording run wrote.
#[derive(Debug, Default)]
pub struct RecordReport {
    /// One entry per file written.
    pub files: Vec<RecordingSummary>,
    /// Streams whose file could not be written, and why.
    pub failed: Vec<(StreamId, RecordError)>,
}

/// One stream being written.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<RecordResult<RecordingSummary>>,
}

/// Records the room until `duration` passes or `stop` resolves.
pub async fn run(
    config: RecordConfig,
    stop: impl std::future::Future<Output = ()>,
) -> ClientResult<RecordReport> {
    std::fs::create_dir_all(&config.out_dir).map_err(|e| {
        crate::client::ClientError::InvalidOperation(format!(
            "cannot create {}: {e}",
            config.out_dir.display()
        ))
    })?;
    // Every file counts from here.
    let clock = RoomClock::start_now();
    let client = Client::new();
    let info = client
        .join(JoinConfig {
            server_url: config.server_url.clone(),
            app_id: config.app_id.clone(),
            room_id: config.room_id.clone(),
            user_id: config.user_id.clone(),
            user_name: format!("recorder {}", config.user_id.0),
            role: Role::Player,
            credential: config.credential.clone(),
            decode: true,
            reconnect_window: crate::client::DEFAULT_RECONNECT_WINDOW,
        })
        .await?;
    let mut writers = BTreeMap::new();
    let mut report = RecordReport::default();
    for stream in info.streams {
        start_writer(
            &client,
            &config,
            clock,
            stream.stream_id,
            &stream.user_id.0,
            &mut writers,
        )
        .await;
    }
    let deadline = config.duration.map(|d| tokio::time::Instant::now() + d);
    let mut tick = tokio::time::interval(EVENT_POLL);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => break,
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
        while let Ok(event) = client.events().try_recv() {
            match event {
                RoomEvent::StreamAdded(info) => {
                    let user = info.user_id.0.clone();
                    start_writer(&client, &config, clock, info.stream_id, &user, &mut writers)
                        .await;
                }
                RoomEvent::StreamRemoved { stream_id, .. } => {
                    if let Some(writer) = writers.remove(&stream_id) {
                        finish(stream_id, writer, &mut report).await;
                    }
                }
                _ => {}
            }
        }
    }
    for (stream_id, writer) in std::mem::take(&mut writers) {
        finish(stream_id, writer, &mut report).await;
    }
    client.leave().await.ok(); // leaving a room that already closed is fine
    Ok(report)
}

async fn start_writer(
    client: &Client,
    config: &RecordConfig,
    clock: RoomClock,
    stream_id: StreamId,
    publisher: &str,
    writers: &mut BTreeMap<StreamId, Writer>,
) {
    if writers.contains_key(&stream_id) {
        return;
    }
    let stream = match client
        .subscribe(stream_id, SubscribeOptions::default())
        .await
    {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(stream = stream_id.0, "record: subscribe failed: {e}");
            return;
        }
    };
    let path = config.out_dir.join(format!(
        "{}-{}-{}.mp4",
        file_part(&config.room_id.0),
        file_part(publisher),
        stream_id.0
    ));
    let tap = stream.tap_media();
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name(format!("record-{}", stream_id.0))
        .spawn(move || write_stream(&path, &tap, clock, &thread_stop));
    match thread {
        Ok(thread) => {
            writers.insert(stream_id, Writer { stop, thread });
        }
        Err(e) => tracing::warn!("record: cannot start a writer thread: {e}"),
    }
}

/// Ends one writer and collects what it wrote.
async fn finish(stream_id: StreamId, writer: Writer, report: &mut RecordReport) {
    writer.stop.store(true, Ordering::Release);
    let joined = tokio::task::spawn_blocking(move || writer.thread.join()).await;
    match joined {
        Ok(Ok(Ok(summary))) => report.files.push(summary),
        Ok(Ok(Err(e))) => report.failed.push((stream_id, e)),
        _ => tracing::warn!(stream = stream_id.0, "record: the writer thread panicked"),
    }
}

/// A writer thread: tap → recorder until stopped or the subscription ends.
fn write_stream(
    path: &std::path::Path,
    tap: &MediaTap,
    clock: RoomClock,
    stop: &AtomicBool,
) -> RecordResult<RecordingSummary> {
    let mut recorder = StreamRecorder::new(Mp4Recorder::create(path)?, clock);
    while !stop.load(Ordering::Acquire) {
        let item = match tap.recv_timeout(WRITER_POLL) {
            Ok(item) => item,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        match item {
            TappedMedia::Video {
                rtp_timestamp,
                at,
                unit,
            } => recorder.video(rtp_timestamp, at, &unit)?,
            TappedMedia::VideoLost => recorder.video_lost(),
            TappedMedia::Audio {
                rtp_timestamp,
                at,
                packet,
            } => recorder.audio(rtp_timestamp, at, &packet)?,
        }
        if recorder.wants_keyframe() {
            tap.request_keyframe();
        }
    }
    recorder.finish()
}

/// An id as a file name part: `[A-Za-z0-9_-]`, anything else as `_`.
fn file_part(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
