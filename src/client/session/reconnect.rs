//! Reconnection: the client gets back into its room by itself when its
//! connection drops (seed 001 `connection-state-changed`: `RECONNECTING`).
//!
//! ```text
//!  CONNECTING ──joined──▶ CONNECTED ──socket closed / keepalive unanswered /
//!       │                    ▲        client-banned 3 (server going down)──▶ RECONNECTING
//!       │                    │                                                   │
//!       │                    └──── resumed (same session, ids, links) ◀──────────┤ attempt now,
//!       │                    └──── joined again (token unknown: server restarted)┤ then backoff
//!       ▼                                                                        │
//!  DISCONNECTED ◀──── window over (reason 7), join refused, leave ───────────────┘
//! ```
//!
//! An attempt opens a new socket and presents the session's resume token
//! (`resume`). The server still holding the session answers `resumed` with the
//! room as it is now: the client diffs it against what it knew and tells the
//! application only what changed; links that survived (the media path did not
//! need the socket) carry on, and what the server dropped meanwhile is set up
//! again under the same ids. A server that does not know the token (it
//! restarted, or the session's window ran out) gets a fresh `join` on the same
//! socket: then every publication is published again (new ids,
//! [`RoomEvent::LocalStreamRepublished`]), the application sees the usual
//! stream removed/added events, and each lost subscription is restored when
//! its publisher's stream comes back.
//!
//! Attempts follow [`Backoff`] (the first at once) until
//! [`JoinConfig::reconnect_window`](super::super::JoinConfig::reconnect_window)
//! runs out. Requests made meanwhile fail with 90100008 instead of waiting.
//! A link whose ICE fails while the socket stays up is set up again alone
//! ([`Session::link_broke`]), the session untouched.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::RTCPeerConnectionState;

use super::super::ErrorCode;
use super::{
    ClientError, ClientResult, ConnectionState, Identity, JoinConfig, LinkId, PROTOCOL_VERSION,
    PeerLink, Publication, Reply, Request, RoomEvent, Session, SignalConnection, SignalEvent,
    StreamId, StreamInfo, SubscribeOptions, UserId, UserInfo, close_publication, close_signal,
    close_subscription, offer_publication, signed, unexpected,
};
use crate::protocol::LeaveReason;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;

/// Stalled connections queued from keepalive tasks to the actor. One is
/// enough: a second report of the same stall is dropped.
pub(super) const STALL_CAPACITY: usize = 1;

/// Delay before the second attempt; each later one doubles, up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_millis(250);

/// Longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// How long one attempt may take to open its socket and be answered: a
/// server that does not answer in this long is tried again, not waited for.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// Attempt delays: zero (the first attempt goes at once), then
/// [`FIRST_DELAY`], doubling up to [`MAX_DELAY`].
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::ZERO,
        }
    }
}

impl Backoff {
    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = if delay.is_zero() {
            FIRST_DELAY
        } else {
            (delay * 2).min(MAX_DELAY)
        };
        delay
    }
}

/// How to get back into the room: what the join was, and the session's token.
pub(super) struct Rejoin {
    pub(super) config: JoinConfig,
    /// From `joined`; empty when the server keeps no dropped sessions.
    pub(super) resume_token: String,
    /// The node joined and the others to try (`nodes`).
    pub(super) route: super::nodes::NodeRoute,
}

/// The [`ConnectionState::Reconnecting`] state's data.
pub(super) struct Reconnecting {
    /// Give up (reason 7) at this time.
    deadline: Instant,
    backoff: Backoff,
    /// The next attempt.
    next_at: tokio::time::Instant,
}

/// A subscription the server lost with its restart: subscribed again when a
/// stream of the same publisher, with the same media, appears.
pub(super) struct LostSubscription {
    publisher: UserId,
    video: bool,
    options: SubscribeOptions,
}

/// How an attempt failed.
enum Attempt {
    /// The server was not reachable or did not answer: try again.
    Retry(String),
    /// The server refused the join: trying again fails the same way.
    Refused(LeaveReason, ClientError),
}

/// Completes at `at`; never when there is no attempt to make.
pub(super) async fn due(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Identifies a connection for stall reports (its address; a report about a
/// connection that has been replaced meanwhile is ignored).
pub(super) fn connection_key(signal: &Arc<SignalConnection>) -> usize {
    Arc::as_ptr(signal) as usize
}

/// Whether a `client-banned` with this reason is worth coming back from: the
/// server going down (3) is, as it may be restarting; being replaced or
/// removed is not.
pub(super) fn comes_back(reason: LeaveReason) -> bool {
    matches!(reason, LeaveReason::ServiceUnavailable)
}

/// The reason a refused join back ends the session with.
fn refusal_reason(code: ErrorCode) -> LeaveReason {
    match code {
        ErrorCode::SignatureExpired => LeaveReason::SignatureExpired,
        _ => LeaveReason::ServerException,
    }
}

impl Session {
    /// When the next attempt is due, while reconnecting.
    pub(super) fn next_attempt(&self) -> Option<tokio::time::Instant> {
        self.reconnecting.as_ref().map(|r| r.next_at)
    }

    /// Whether a lost connection is reconnected (joined, with a window).
    pub(super) fn may_reconnect(&self) -> bool {
        self.rejoin
            .as_ref()
            .is_some_and(|r| !r.config.reconnect_window.is_zero())
    }

    /// The socket closed or failed under a joined client: reconnect within the
    /// window, or end the session.
    pub(super) async fn connection_lost(&mut self) {
        // Dropped, not closed: a dead socket would hold a close for seconds.
        // Dropping aborts its tasks.
        drop(self.signal.take());
        let window = self
            .rejoin
            .as_ref()
            .map_or(Duration::ZERO, |r| r.config.reconnect_window);
        if window.is_zero() {
            self.rejoin = None;
            self.close_all().await;
            self.set_state_because(
                ConnectionState::Disconnected,
                Some(LeaveReason::ReconnectTimeout),
            );
            return;
        }
        tracing::info!("connection lost; reconnecting for up to {window:?}");
        let mut backoff = Backoff::default();
        let first = backoff.next_delay();
        self.reconnecting = Some(Reconnecting {
            deadline: Instant::now() + window,
            backoff,
            next_at: tokio::time::Instant::now() + first,
        });
        self.set_state(ConnectionState::Reconnecting);
    }

    /// A keepalive found `connection` unanswering: treat it as lost, unless it
    /// has been replaced meanwhile.
    pub(super) async fn on_stall(&mut self, connection: usize) {
        let current = self.signal.as_ref().map(connection_key);
        if current == Some(connection) {
            tracing::info!("the server stopped answering");
            self.connection_lost().await;
        }
    }

    /// One attempt to get back into the room.
    pub(super) async fn reconnect_attempt(&mut self, signal_tx: &mpsc::Sender<SignalEvent>) {
        let Some(mut reconnecting) = self.reconnecting.take() else {
            return;
        };
        let now = Instant::now();
        if now >= reconnecting.deadline {
            self.give_up(LeaveReason::ReconnectTimeout, None).await;
            return;
        }
        let limit = (reconnecting.deadline - now).min(ATTEMPT_TIMEOUT);
        let attempt = tokio::time::timeout(limit, self.attempt(signal_tx)).await;
        let outcome = match attempt {
            Ok(outcome) => outcome,
            Err(_) => Err(Attempt::Retry(format!("no answer within {limit:?}"))),
        };
        match outcome {
            Ok(restore) => {
                self.set_state(ConnectionState::Connected);
                self.restore_after(restore).await;
            }
            Err(Attempt::Retry(why)) => {
                let delay = reconnecting.backoff.next_delay();
                tracing::info!("reconnect attempt failed ({why}); next in {delay:?}");
                reconnecting.next_at = tokio::time::Instant::now() + delay;
                self.reconnecting = Some(reconnecting);
            }
            Err(Attempt::Refused(reason, e)) => self.give_up(reason, Some(e)).await,
        }
    }

    async fn give_up(&mut self, reason: LeaveReason, error: Option<ClientError>) {
        tracing::info!("reconnecting gave up: {reason}");
        self.reconnecting = None;
        self.rejoin = None;
        self.restore.clear();
        if let Some(signal) = self.signal.take() {
            close_signal(signal).await;
        }
        self.close_all().await;
        if let Some(e) = error {
            self.emit(RoomEvent::Error {
                code: e.code(),
                message: e.to_string(),
            });
        }
        self.set_state_because(ConnectionState::Disconnected, Some(reason));
    }

    /// Opens a socket and resumes, or joins again. On success the session is
    /// connected (`self.signal` set) and what is left to restore is returned.
    async fn attempt(&mut self, signal_tx: &mpsc::Sender<SignalEvent>) -> Result<Restore, Attempt> {
        let Some(rejoin) = &self.rejoin else {
            return Err(Attempt::Refused(
                LeaveReason::UserExit,
                ClientError::InvalidOperation("not joined".into()),
            ));
        };
        let config = rejoin.config.clone();
        let token = rejoin.resume_token.clone();
        // Through the proxy, with the TLS settings, the join used; to the
        // node joined, or the next one when that is gone (`nodes`).
        let url = self.proxy.url_for(rejoin.route.target()).to_owned();
        let tls = self
            .proxy
            .connector(&url)
            .map_err(|e| Attempt::Refused(LeaveReason::ServerException, e))?;
        let signal =
            match SignalConnection::connect(&url, tls, signal_tx.clone(), self.signal_log.clone())
                .await
            {
                Ok(signal) => signal,
                Err(e) => {
                    if let Some(rejoin) = &mut self.rejoin {
                        rejoin.route.unreachable();
                    }
                    return Err(Attempt::Retry(e.to_string()));
                }
            };
        let signal = Arc::new(signal);
        if !token.is_empty() {
            let resume = Request::Resume {
                app_id: config.app_id.clone(),
                room_id: config.room_id.clone(),
                user_id: config.user_id.clone(),
                resume_token: token,
            };
            match signal.request(resume).await {
                Ok(Reply::Resumed {
                    me,
                    users,
                    streams,
                    publications,
                    subscriptions,
                    program,
                    ..
                }) => {
                    self.signal = Some(signal);
                    self.emit(RoomEvent::ProgramChanged { program, by: None });
                    if let Some(identity) = &mut self.identity {
                        identity.me = me;
                    }
                    tracing::info!("session resumed");
                    // Restarts that went out on the dead connection: again now.
                    self.recovery_resumed();
                    return Ok(Restore::Resumed {
                        users,
                        streams,
                        publications,
                        subscriptions,
                    });
                }
                Ok(other) => return Err(Attempt::Retry(unexpected(&other).to_string())),
                // Not known here (any more): join again on this socket.
                Err(ClientError::Server { code, message }) => {
                    tracing::info!("resume refused ({}: {message}); joining again", code.code());
                }
                Err(e) => return Err(Attempt::Retry(e.to_string())),
            }
        }
        // The credential as renewals left it (a renewed signature).
        let credential = self
            .identity
            .as_ref()
            .map_or_else(|| config.credential.clone(), |i| i.credential.clone());
        let (ctime, signature) = signed(
            &credential,
            &config.app_id,
            &config.room_id,
            &config.user_id,
        );
        let join = Request::Join {
            protocol_version: PROTOCOL_VERSION,
            app_id: config.app_id.clone(),
            room_id: config.room_id.clone(),
            user_id: config.user_id.clone(),
            user_name: self
                .identity
                .as_ref()
                .map_or_else(|| config.user_name.clone(), |i| i.me.user_name.clone()),
            role: self.identity.as_ref().map_or(config.role, |i| i.me.role),
            ctime,
            signature,
        };
        // The join may be sent on to the room's node (`nodes`).
        self.signal = Some(Arc::clone(&signal));
        let answer = self.join_following(signal, url, join, signal_tx).await;
        let signal = self.signal.take();
        match answer {
            Ok((
                node_url,
                Reply::Joined {
                    room_id,
                    me,
                    users,
                    streams,
                    resume_token,
                    ice_servers,
                    nodes,
                    program,
                    ..
                },
            )) => {
                self.signal = signal;
                self.rtc_ip = super::rtc_ip_for(&node_url);
                self.emit(RoomEvent::ProgramChanged { program, by: None });
                self.ice = self.turn.policy(ice_servers);
                self.identity = Some(Identity {
                    app_id: config.app_id.clone(),
                    room_id,
                    me,
                    credential,
                });
                if let Some(rejoin) = &mut self.rejoin {
                    rejoin.resume_token = resume_token;
                    rejoin.route.rejoined(&node_url, &config.server_url, &nodes);
                }
                tracing::info!("joined again at {node_url}");
                Ok(Restore::Rejoined { users, streams })
            }
            Ok((_, other)) => {
                if let Some(signal) = signal {
                    close_signal(signal).await;
                }
                Err(Attempt::Retry(unexpected(&other).to_string()))
            }
            // A cluster that cannot place the room now (Redis away, nodes
            // disagreeing for a moment): another attempt may succeed.
            Err(e @ ClientError::Server { code, .. }) if super::nodes::retryable(code) => {
                Err(Attempt::Retry(e.to_string()))
            }
            Err(e @ ClientError::Server { code, .. }) => {
                Err(Attempt::Refused(refusal_reason(code), e))
            }
            Err(e) => Err(Attempt::Retry(e.to_string())),
        }
    }

    /// Brings the application's view and the media back in line with the
    /// server after an attempt succeeded.
    async fn restore_after(&mut self, restore: Restore) {
        match restore {
            Restore::Resumed {
                users,
                streams,
                publications,
                subscriptions,
            } => {
                self.diff_users(users, LeaveReason::UserExit);
                self.diff_streams(streams);
                // What the server dropped while we were away (a link that
                // failed): set up again.
                let lost: Vec<StreamId> = self
                    .publications
                    .keys()
                    .filter(|id| !publications.contains(id))
                    .copied()
                    .collect();
                let mut new_ids = std::collections::BTreeMap::new();
                for stream_id in lost {
                    if let Some(new_id) = self.republish_or_report(stream_id).await {
                        new_ids.insert(stream_id, new_id);
                    }
                }
                self.relay_again(&new_ids, false).await;
                let lost: Vec<StreamId> = self
                    .subscriptions
                    .keys()
                    .filter(|id| !subscriptions.contains(id))
                    .copied()
                    .collect();
                for stream_id in lost {
                    self.resubscribe(stream_id).await;
                }
            }
            Restore::Rejoined { users, streams } => {
                // A new server: none of the old ids mean anything there.
                for (_, s) in std::mem::take(&mut self.subscriptions) {
                    self.restore.push(LostSubscription {
                        publisher: s.stream.info.user_id.clone(),
                        video: s.stream.info.video.is_some(),
                        options: s.options,
                    });
                    close_subscription(s).await;
                }
                for (stream_id, info) in std::mem::take(&mut self.streams) {
                    self.emit(RoomEvent::StreamRemoved {
                        stream_id,
                        user_id: info.user_id,
                    });
                }
                self.diff_users(users, LeaveReason::ServiceUnavailable);
                let published: Vec<StreamId> = self.publications.keys().copied().collect();
                let mut new_ids = std::collections::BTreeMap::new();
                for stream_id in published {
                    if let Some(new_id) = self.republish_or_report(stream_id).await {
                        new_ids.insert(stream_id, new_id);
                    }
                }
                for stream in streams {
                    self.streams.insert(stream.stream_id, stream.clone());
                    self.restore_subscription(&stream).await;
                    self.emit(RoomEvent::StreamAdded(stream));
                }
                self.relink_top_n().await;
                self.relay_again(&new_ids, true).await;
            }
        }
    }

    /// Tells the application who left and who joined while it was away.
    fn diff_users(&mut self, users: Vec<UserInfo>, gone: LeaveReason) {
        let now: std::collections::BTreeMap<UserId, UserInfo> =
            users.into_iter().map(|u| (u.user_id.clone(), u)).collect();
        let left: Vec<UserId> = self
            .users
            .keys()
            .filter(|id| !now.contains_key(*id))
            .cloned()
            .collect();
        for user_id in left {
            self.emit(RoomEvent::PeerLeave {
                user_id,
                reason: gone,
            });
        }
        for (user_id, user) in &now {
            match self.users.get(user_id) {
                None => self.emit(RoomEvent::PeerJoin(user.clone())),
                Some(known) if known.role != user.role => self.emit(RoomEvent::PeerRoleChanged {
                    user_id: user_id.clone(),
                    role: user.role,
                }),
                Some(known) if known.user_name != user.user_name => {
                    self.emit(RoomEvent::RemoteUserNameChanged {
                        user_id: user_id.clone(),
                        user_name: user.user_name.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        self.users = now;
    }

    /// Tells the application which streams went, came or changed while it was
    /// away (same server: ids are stable).
    fn diff_streams(&mut self, streams: Vec<StreamInfo>) {
        let now: std::collections::BTreeMap<StreamId, StreamInfo> =
            streams.into_iter().map(|s| (s.stream_id, s)).collect();
        let gone: Vec<(StreamId, StreamInfo)> = self
            .streams
            .iter()
            .filter(|(id, _)| !now.contains_key(*id))
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        for (stream_id, info) in gone {
            if let Some(s) = self.subscriptions.remove(&stream_id) {
                // Its link is the server's to close; ours goes now.
                tokio::spawn(close_subscription(s));
            }
            self.emit(RoomEvent::StreamRemoved {
                stream_id,
                user_id: info.user_id,
            });
        }
        for (stream_id, info) in &now {
            match self.streams.get(stream_id) {
                None => self.emit(RoomEvent::StreamAdded(info.clone())),
                Some(known) if known != info => self.emit(RoomEvent::StreamUpdated(info.clone())),
                Some(_) => {}
            }
        }
        self.streams = now;
    }

    /// Subscribes again to a stream lost with a server restart, now that its
    /// publisher published it again.
    pub(super) async fn restore_subscription(&mut self, stream: &StreamInfo) {
        let Some(at) = self
            .restore
            .iter()
            .position(|l| l.publisher == stream.user_id && l.video == stream.video.is_some())
        else {
            return;
        };
        let lost = self.restore.remove(at);
        if self.subscriptions.contains_key(&stream.stream_id) {
            return;
        }
        match self.subscribe(stream.stream_id, lost.options).await {
            Ok(_) => tracing::info!("subscription to {} restored", stream.stream_id),
            Err(e) => self.emit(RoomEvent::Error {
                code: e.code(),
                message: format!("restoring the subscription to {}: {e}", stream.stream_id),
            }),
        }
    }

    /// Subscribes again to a stream whose subscription link is gone, feeding
    /// the same [`super::RemoteStream`] the application holds.
    async fn resubscribe(&mut self, stream_id: StreamId) {
        let Some(old) = self.subscriptions.remove(&stream_id) else {
            return;
        };
        for task in &old.tasks {
            task.abort();
        }
        old.link.close().await;
        if !self.streams.contains_key(&stream_id) {
            old.stream.ended.store(true, Ordering::Release);
            return;
        }
        let receiver = old.receiver.clone();
        let result = match self
            .subscribe_into(stream_id, old.options, Some(receiver))
            .await
        {
            // A paused subscription stays paused on its new link (`standby.rs`).
            Ok(_) if old.paused => self.pause_subscription(stream_id, true).await,
            other => other.map(|_| ()),
        };
        if let Err(e) = result {
            old.stream.ended.store(true, Ordering::Release);
            self.emit(RoomEvent::Error {
                code: e.code(),
                message: format!("subscribing again to {stream_id}: {e}"),
            });
        }
    }

    /// The new id, when the stream is published again.
    async fn republish_or_report(&mut self, stream_id: StreamId) -> Option<StreamId> {
        match self.republish(stream_id).await {
            Ok(new_id) => {
                if new_id != stream_id {
                    self.emit(RoomEvent::LocalStreamRepublished {
                        previous: stream_id,
                        stream_id: new_id,
                    });
                }
                Some(new_id)
            }
            Err(e) => {
                self.emit(RoomEvent::Error {
                    code: e.code(),
                    message: format!("publishing {stream_id} again: {e}"),
                });
                None
            }
        }
    }

    /// Publishes a stream again on a new link: same sources, encoders and
    /// tracks, a new id from the server. On failure the publication ends.
    async fn republish(&mut self, stream_id: StreamId) -> ClientResult<StreamId> {
        let mut p = self.publications.remove(&stream_id).ok_or_else(|| {
            ClientError::InvalidParameter(format!("stream {stream_id} is not published here"))
        })?;
        p.link_task.abort();
        p.link.close().await;
        p.pipeline.unlink();
        match self.publish_on_new_link(&mut p).await {
            Ok((new_id, link, link_id, signals)) => {
                let video = p
                    .tracks
                    .iter()
                    .find(|(kind, _)| *kind == RtpCodecKind::Video)
                    .map(|(_, t)| Arc::clone(t));
                p.pipeline.relink(video, link.send_estimate().cloned());
                p.link = link;
                p.link_id = link_id;
                p.link_task = self.spawn_link_task(link_id, signals);
                let audio_muted = p.pipeline.audio_muted.load(Ordering::Acquire);
                let video_muted = p.pipeline.video_muted.load(Ordering::Acquire);
                self.publications.insert(new_id, p);
                if (audio_muted || video_muted)
                    && let Ok(signal) = self.signal()
                {
                    signal
                        .request(Request::UpdateStream {
                            stream_id: new_id,
                            audio_muted,
                            video_muted,
                        })
                        .await?;
                }
                Ok(new_id)
            }
            Err(e) => {
                close_publication(p).await;
                Err(e)
            }
        }
    }

    async fn publish_on_new_link(
        &mut self,
        p: &mut Publication,
    ) -> ClientResult<(StreamId, PeerLink, LinkId, crate::link::LinkSignals)> {
        let signal = self.signal()?;
        let rtc = |e: crate::link::LinkError| ClientError::Rtc(e.to_string());
        let (link, signals) = PeerLink::publisher(self.rtc_ip, &self.ice, p.congestion)
            .await
            .map_err(rtc)?;
        let result = async {
            for (_, track) in &p.tracks {
                link.pc()
                    .add_track(Arc::clone(track) as Arc<dyn TrackLocal>)
                    .await
                    .map_err(|e| ClientError::Rtc(e.to_string()))?;
            }
            offer_publication(
                &signal,
                &link,
                p.audio,
                p.video,
                p.is_screen,
                &p.resolutions,
            )
            .await
        }
        .await;
        match result {
            Ok((stream_id, link_id)) => Ok((stream_id, link, link_id, signals)),
            Err(e) => {
                link.close().await;
                Err(e)
            }
        }
    }

    /// A link's ICE failed while the session is up: set it up again (a new
    /// link for the same subscription, or the publication published again)
    /// without touching the rest of the session. Returns whether it handled
    /// the change.
    pub(super) async fn link_broke(
        &mut self,
        link_id: LinkId,
        state: RTCPeerConnectionState,
    ) -> bool {
        if state != RTCPeerConnectionState::Failed
            || self.signal.is_none()
            || self.reconnecting.is_some()
        {
            // Disconnected may come back by itself; while reconnecting, the
            // reconnection sets up what the server dropped.
            return false;
        }
        let subscribed = self
            .subscriptions
            .iter()
            .find(|(_, s)| s.link_id == link_id)
            .map(|(id, _)| *id);
        if let Some(stream_id) = subscribed {
            tracing::info!(
                link = link_id.0,
                "subscription link failed; setting it up again"
            );
            if let Ok(signal) = self.signal() {
                // The server may not have noticed yet: end its side first.
                signal
                    .request(Request::Unsubscribe {
                        stream_id,
                        audio: true,
                        video: true,
                    })
                    .await
                    .ok(); // already gone there: fine
            }
            self.resubscribe(stream_id).await;
            return true;
        }
        let published = self
            .publications
            .iter()
            .find(|(_, p)| p.link_id == link_id)
            .map(|(id, _)| *id);
        if let Some(stream_id) = published {
            tracing::info!(link = link_id.0, "publish link failed; publishing again");
            if let Ok(signal) = self.signal() {
                signal.request(Request::Unpublish { stream_id }).await.ok(); // already unpublished there: fine
            }
            match self.republish_or_report(stream_id).await {
                Some(new_id) => {
                    let new_ids = std::iter::once((stream_id, new_id)).collect();
                    self.relay_again(&new_ids, false).await;
                }
                None => self.end_suspended_relays_of(stream_id).await,
            }
            return true;
        }
        false
    }
}

/// What an attempt left to restore.
enum Restore {
    /// The server kept the session.
    Resumed {
        users: Vec<UserInfo>,
        streams: Vec<StreamInfo>,
        publications: Vec<StreamId>,
        subscriptions: Vec<StreamId>,
    },
    /// The session is new.
    Rejoined {
        users: Vec<UserInfo>,
        streams: Vec<StreamInfo>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_once_grows_and_is_capped() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays[0], Duration::ZERO);
        assert_eq!(delays[1], FIRST_DELAY);
        assert_eq!(delays[2], FIRST_DELAY * 2);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(*delays.last().unwrap(), MAX_DELAY);
    }
}
