//! The client's end of the signalling WebSocket.
//!
//! [`SignalConnection::connect`] spawns two tasks: a writer that owns the sink,
//! and a reader that routes each server frame either to the oneshot of the request
//! it answers, or, for pushed events, to the room-session actor's channel. A
//! request therefore never waits behind an event, and events are never lost
//! behind a slow request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::signal_log::Direction;
use super::{ClientError, ClientResult};
use crate::protocol::{self, ClientMessage, Event, Reply, Request, RequestId, ServerMessage};

/// Capacity of the outgoing frame queue (actor → writer task). Requests wait
/// when it is full; it only fills if the server stops reading.
const OUTGOING_CAPACITY: usize = 64;

/// How long a request waits for its reply before failing with 90000004.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

type Pending = Arc<Mutex<HashMap<RequestId, oneshot::Sender<ClientResult<Reply>>>>>;

/// What the reader task passes to the actor.
#[derive(Debug)]
pub enum SignalEvent {
    /// A server-pushed event.
    Event(Event),
    /// A server error not tied to a request.
    Error(protocol::ErrorReply),
    /// The socket closed or failed.
    Closed(String),
}

/// A connected signalling socket.
pub struct SignalConnection {
    out: mpsc::Sender<Message>,
    pending: Pending,
    next_id: AtomicU64,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Set by the reader when the socket has closed, before it reports
    /// [`SignalEvent::Closed`]: tells a report about this connection from a
    /// late one about a connection it replaced.
    closed: Arc<AtomicBool>,
}

impl SignalConnection {
    /// Connects to `url` (`ws://host:port`, `.../ws`, or `wss://` with the
    /// `tls` connector from `ProxyConfig::connector`); pushed events go to
    /// `events`.
    pub async fn connect(
        url: &str,
        tls: Option<tokio_tungstenite::Connector>,
        events: mpsc::Sender<SignalEvent>,
        log: super::SignalLog,
    ) -> ClientResult<Self> {
        let connect = tokio_tungstenite::connect_async_tls_with_config(url, None, false, tls);
        let (socket, _) = tokio::time::timeout(REPLY_TIMEOUT, connect)
            .await
            .map_err(|_| ClientError::ConnectTimeout(url.to_owned()))?
            .map_err(|e| ClientError::Connect(format!("{e}: {url}")))?;
        let (mut sink, mut stream) = socket.split();
        let (out, mut out_rx) = mpsc::channel::<Message>(OUTGOING_CAPACITY);
        let pending: Pending = Arc::default();

        let writer_log = log.clone();
        let writer = tokio::spawn(async move {
            while let Some(message) = out_rx.recv().await {
                if let Message::Text(text) = &message {
                    writer_log.record(Direction::Out, text.as_str());
                }
                let closing = matches!(message, Message::Close(_));
                if sink.send(message).await.is_err() || closing {
                    break;
                }
            }
            sink.close().await.ok(); // best effort: the server may be gone
        });

        let reader_pending = Arc::clone(&pending);
        let closed = Arc::new(AtomicBool::new(false));
        let reader_closed = Arc::clone(&closed);
        let reader = tokio::spawn(async move {
            let why = loop {
                let text = match stream.next().await {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        break format!(
                            "closed by server{}",
                            frame.map(|f| format!(": {}", f.reason)).unwrap_or_default()
                        );
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break format!("socket error: {e}"),
                    None => break "socket closed".to_owned(),
                };
                log.record(Direction::In, text.as_str());
                let message: ServerMessage = match serde_json::from_str(text.as_str()) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!("unparseable server message: {e}");
                        continue;
                    }
                };
                match message {
                    ServerMessage::Reply { id, reply } => {
                        if let Some(tx) = take(&reader_pending, id) {
                            tx.send(Ok(reply)).ok(); // the requester may have timed out
                        }
                    }
                    ServerMessage::Error(err) => {
                        match err.id.and_then(|id| take(&reader_pending, id)) {
                            Some(tx) => {
                                tx.send(Err(ClientError::Server {
                                    code: err.code,
                                    message: err.message,
                                }))
                                .ok();
                            }
                            None => {
                                if events.send(SignalEvent::Error(err)).await.is_err() {
                                    break "actor gone".to_owned();
                                }
                            }
                        }
                    }
                    ServerMessage::Event { event } => {
                        if events.send(SignalEvent::Event(event)).await.is_err() {
                            break "actor gone".to_owned();
                        }
                    }
                }
            };
            // Fail every request still waiting: no reply will come.
            let waiting: Vec<_> = lock(&reader_pending).drain().collect();
            for (_, tx) in waiting {
                tx.send(Err(ClientError::Disconnected(why.clone()))).ok();
            }
            reader_closed.store(true, Ordering::Release);
            events.send(SignalEvent::Closed(why)).await.ok();
        });

        Ok(Self {
            out,
            pending,
            next_id: AtomicU64::new(1),
            tasks: vec![writer, reader],
            closed,
        })
    }

    /// Whether the socket has closed (the reader ended).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Sends a request and waits for its reply (or error, or [`REPLY_TIMEOUT`]).
    pub async fn request(&self, request: Request) -> ClientResult<Reply> {
        let id = RequestId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let text = protocol::encode(&ClientMessage { id, request });
        if self.out.send(Message::Text(text.into())).await.is_err() {
            take(&self.pending, id);
            return Err(ClientError::Disconnected("signalling socket closed".into()));
        }
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Disconnected("signalling socket closed".into())),
            Err(_) => {
                take(&self.pending, id);
                Err(ClientError::Timeout)
            }
        }
    }

    /// Sends a raw text frame (tests use this to send malformed input).
    pub async fn send_raw(&self, text: String) -> ClientResult<()> {
        self.out
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| ClientError::Disconnected("signalling socket closed".into()))
    }

    /// Closes the socket and stops both tasks.
    pub async fn close(mut self) {
        // Ends the writer after the close frame; the reader ends when the server
        // answers it (or the timeout below aborts it via Drop).
        self.out.send(Message::Close(None)).await.ok();
        for task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                tracing::debug!("signalling task did not end in time");
            }
        }
    }
}

impl Drop for SignalConnection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock(
    pending: &Pending,
) -> std::sync::MutexGuard<'_, HashMap<RequestId, oneshot::Sender<ClientResult<Reply>>>> {
    // Poisoning can only come from a panic inside insert/remove; the map is intact.
    pending.lock().unwrap_or_else(|e| e.into_inner())
}

fn take(pending: &Pending, id: RequestId) -> Option<oneshot::Sender<ClientResult<Reply>>> {
    lock(pending).remove(&id)
}
