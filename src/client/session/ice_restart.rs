//! ICE restarts of a live session's links (issue 11): a link whose ICE
//! disconnects (after [`GRACE`]) or fails is restarted in place, with new
//! ICE credentials over `restart-ice`, instead of being torn down. The
//! stream, its id, the subscription, DTLS and SRTP stay; the application and
//! the others in the room see nothing but a gap in the media.
//!
//! Each link has a small state machine, [`Recovery`]:
//!
//! ```text
//!            Disconnected                 GRACE over, still down
//!  Healthy ───────────────▶ Grace ──────────────────────────────▶ Restarting{1}
//!     ▲  ◀── Connected ──────┘   Failed (at once) ───────────────▶     │
//!     │                                                                │ not connected
//!     └──────────────────── Connected ◀─────── Restarting{n} ◀─────────┘ within ATTEMPT_TIMEOUT
//!                                                 │ n = MAX_ATTEMPTS and still down
//!                                                 ▼
//!                          rebuilt (`link_broke`: a new link, as before)
//! ```
//!
//! A restart needs the signalling socket: while the session is reconnecting
//! the attempt waits (the resumed session keeps the links).
//!
//! Why retry at all: after a restart, each candidate pair gets 1.4 s of
//! checks (`link::ICE_MAX_BINDING_REQUESTS`); if the network is still down
//! then, every pair has failed and ICE sends no more checks, so only the
//! next restart brings the link back once the network is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use tokio::time::Instant;
use webrtc::peer_connection::RTCPeerConnectionState;

use super::Session;
use crate::client::signal::SignalConnection;
use crate::client::{ClientError, ClientResult};
use crate::link::PeerLink;
use crate::protocol::{LinkId, Reply, Request};

/// How long a disconnected link may come back by itself before it is
/// restarted (ICE declares "disconnected" after 5 s without a packet).
pub(super) const GRACE: Duration = Duration::from_millis(500);
/// How long one restart attempt may take to connect before the next.
pub(super) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Restart attempts before the link is rebuilt from scratch (about 30 s).
pub(super) const MAX_ATTEMPTS: u32 = 15;

/// Where one link's recovery stands (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recovery {
    /// Connected, or never lost.
    Healthy,
    /// ICE is disconnected; restart at `until` unless it comes back.
    Grace { until: Instant },
    /// Restart attempt `attempt` went out at `since`; the next is due at
    /// `next` unless the link connects.
    Restarting {
        attempt: u32,
        started: Instant,
        next: Instant,
    },
}

impl Recovery {
    fn due(&self) -> Option<Instant> {
        match *self {
            Recovery::Healthy => None,
            Recovery::Grace { until } => Some(until),
            Recovery::Restarting { next, .. } => Some(next),
        }
    }
}

/// The sans-IO part: the next state on a link state change, and whether to
/// restart now.
pub(super) fn on_state(
    recovery: Recovery,
    state: RTCPeerConnectionState,
    now: Instant,
) -> (Recovery, bool) {
    match (recovery, state) {
        (_, RTCPeerConnectionState::Connected) => (Recovery::Healthy, false),
        (Recovery::Healthy, RTCPeerConnectionState::Disconnected) => {
            (Recovery::Grace { until: now + GRACE }, false)
        }
        // Failed: no point waiting for it to come back.
        (Recovery::Healthy | Recovery::Grace { .. }, RTCPeerConnectionState::Failed) => {
            (recovery, true)
        }
        // A restart under way: its own deadline decides.
        (other, _) => (other, false),
    }
}

/// What to do when a link's deadline is due.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Due {
    /// Send restart attempt `n`.
    Restart(u32),
    /// Give up restarting: rebuild the link.
    Rebuild,
}

/// The next step when `recovery` is due.
pub(super) fn when_due(recovery: Recovery) -> Option<Due> {
    match recovery {
        Recovery::Healthy => None,
        Recovery::Grace { .. } => Some(Due::Restart(1)),
        Recovery::Restarting { attempt, .. } if attempt >= MAX_ATTEMPTS => Some(Due::Rebuild),
        Recovery::Restarting { attempt, .. } => Some(Due::Restart(attempt + 1)),
    }
}

/// The recovery of every link being brought back, and the restart round
/// trips in flight (they run beside the actor, so a server that does not
/// answer never holds up the session's other work, such as noticing that
/// its connection stalled).
#[derive(Default)]
pub(super) struct Links {
    states: BTreeMap<LinkId, Recovery>,
    tasks: BTreeMap<LinkId, JoinHandle<Outcome>>,
}

impl Links {
    fn get(&self, link_id: &LinkId) -> Option<&Recovery> {
        self.states.get(link_id)
    }

    fn remove(&mut self, link_id: &LinkId) {
        self.states.remove(link_id);
        if let Some(task) = self.tasks.remove(link_id) {
            task.abort();
        }
    }

    fn values(&self) -> impl Iterator<Item = &Recovery> {
        self.states.values()
    }

    fn iter(&self) -> impl Iterator<Item = (&LinkId, &Recovery)> {
        self.states.iter()
    }

    fn insert(&mut self, link_id: LinkId, recovery: Recovery) {
        self.states.insert(link_id, recovery);
    }

    /// How the link's last round trip ended, if it has (taking it).
    async fn finished(&mut self, link_id: LinkId) -> Option<Outcome> {
        if !self.tasks.get(&link_id)?.is_finished() {
            return None;
        }
        self.tasks.remove(&link_id)?.await.ok()
    }

    /// Runs a restart round trip for the link, ending the one before.
    fn spawn(&mut self, link_id: LinkId, task: JoinHandle<Outcome>) {
        if let Some(old) = self.tasks.insert(link_id, task) {
            old.abort();
        }
    }
}

/// How a restart round trip ended, as far as the next step cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Negotiated (or failed in a way another attempt may fix).
    Retry,
    /// The server no longer has the link (90000005: it dropped it as
    /// failed): only a new link helps.
    LinkGone,
}

/// Which way a link carries media, and the link.
enum Side {
    Publish(PeerLink),
    Subscribe(PeerLink),
}

/// One `restart-ice` round trip; returns the link's new local ufrag.
async fn negotiate(
    signal: &Arc<SignalConnection>,
    link_id: LinkId,
    side: Side,
) -> ClientResult<String> {
    let rtc = |e: crate::link::LinkError| ClientError::Rtc(e.to_string());
    let link = match side {
        Side::Publish(link) => {
            let offer = link.restart_offer().await.map_err(rtc)?;
            let reply = signal
                .request(Request::RestartIce {
                    link_id,
                    sdp: Some(offer),
                })
                .await?;
            let Reply::IceRestarted { sdp, .. } = reply else {
                return Err(super::unexpected(&reply));
            };
            link.apply_answer(sdp).await.map_err(rtc)?;
            link
        }
        Side::Subscribe(link) => {
            let reply = signal
                .request(Request::RestartIce { link_id, sdp: None })
                .await?;
            let Reply::IceRestarted { sdp, .. } = reply else {
                return Err(super::unexpected(&reply));
            };
            let answer = link.answer(sdp).await.map_err(rtc)?;
            signal
                .request(Request::Answer {
                    link_id,
                    sdp: answer,
                })
                .await?;
            link
        }
    };
    Ok(link.local_ufrag().await.unwrap_or_default())
}

/// Sleeps until `at`, or forever.
pub(super) async fn due(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Session {
    /// When the next link recovery step is due.
    pub(super) fn next_recovery(&self) -> Option<Instant> {
        self.recovery.values().filter_map(Recovery::due).min()
    }

    /// Follows a link's state; returns whether the change was handled here
    /// (a restart started or the link is being watched).
    pub(super) async fn recovery_on_state(
        &mut self,
        link_id: LinkId,
        state: RTCPeerConnectionState,
    ) {
        let now = Instant::now();
        let before = self
            .recovery
            .get(&link_id)
            .copied()
            .unwrap_or(Recovery::Healthy);
        let (after, restart_now) = on_state(before, state, now);
        if let (
            Recovery::Restarting {
                attempt, started, ..
            },
            Recovery::Healthy,
        ) = (before, after)
        {
            let ufrag = self.link_ufrag(link_id).await.unwrap_or_default();
            tracing::info!(
                link = link_id.0,
                attempt,
                ufrag,
                "ICE restart succeeded: link connected again after {} ms",
                started.elapsed().as_millis()
            );
        }
        self.set_recovery(link_id, after);
        if restart_now {
            self.restart_attempt(link_id, 1).await;
        }
    }

    /// Runs the recovery steps that are due.
    pub(super) async fn on_recovery_due(&mut self) {
        let now = Instant::now();
        let due: Vec<(LinkId, Recovery)> = self
            .recovery
            .iter()
            .filter(|(_, r)| r.due().is_some_and(|at| at <= now))
            .map(|(id, r)| (*id, *r))
            .collect();
        for (link_id, recovery) in due {
            if !self.owns_link(link_id) {
                self.recovery.remove(&link_id);
                continue;
            }
            if self.reconnecting.is_some() || self.signal.is_none() {
                // The resumed session keeps the links: look again later.
                self.set_recovery(
                    link_id,
                    match recovery {
                        Recovery::Restarting {
                            attempt, started, ..
                        } => Recovery::Restarting {
                            attempt,
                            started,
                            next: now + ATTEMPT_TIMEOUT,
                        },
                        _ => Recovery::Grace {
                            until: now + ATTEMPT_TIMEOUT,
                        },
                    },
                );
                continue;
            }
            if matches!(recovery, Recovery::Restarting { .. }) && self.link_ice_connected(link_id) {
                // The last restart connected, and the peer connection's
                // state did not say so (it does not always after a restart).
                self.recovery_on_state(link_id, RTCPeerConnectionState::Connected)
                    .await;
                continue;
            }
            if self.recovery.finished(link_id).await == Some(Outcome::LinkGone) {
                tracing::info!(
                    link = link_id.0,
                    "the server dropped the link; rebuilding it"
                );
                self.rebuild(link_id).await;
                continue;
            }
            match when_due(recovery) {
                Some(Due::Restart(n)) => self.restart_attempt(link_id, n).await,
                Some(Due::Rebuild) => {
                    tracing::warn!(
                        link = link_id.0,
                        "{MAX_ATTEMPTS} ICE restarts did not bring the link back; rebuilding it"
                    );
                    self.rebuild(link_id).await;
                }
                None => {}
            }
        }
    }

    /// The session is back on a new connection: links waiting to be
    /// restarted (whose last attempt may have gone out on the dead one)
    /// try at once.
    pub(super) fn recovery_resumed(&mut self) {
        let now = Instant::now();
        for recovery in self.recovery.states.values_mut() {
            match recovery {
                Recovery::Healthy => {}
                Recovery::Grace { until } => *until = now,
                Recovery::Restarting { next, .. } => *next = now,
            }
        }
    }

    fn set_recovery(&mut self, link_id: LinkId, recovery: Recovery) {
        if recovery == Recovery::Healthy {
            // A round trip still in flight finishes (its answer may be what
            // the server still waits for).
            self.recovery.states.remove(&link_id);
        } else {
            self.recovery.insert(link_id, recovery);
        }
    }

    fn owns_link(&self, link_id: LinkId) -> bool {
        self.publications.values().any(|p| p.link_id == link_id)
            || self.subscriptions.values().any(|s| s.link_id == link_id)
    }

    fn link_ice_connected(&self, link_id: LinkId) -> bool {
        self.publications
            .values()
            .find(|p| p.link_id == link_id)
            .map(|p| &p.link)
            .or_else(|| {
                self.subscriptions
                    .values()
                    .find(|s| s.link_id == link_id)
                    .map(|s| &s.link)
            })
            .is_some_and(crate::link::PeerLink::ice_connected)
    }

    async fn link_ufrag(&self, link_id: LinkId) -> Option<String> {
        if let Some(p) = self.publications.values().find(|p| p.link_id == link_id) {
            return p.link.local_ufrag().await;
        }
        let s = self.subscriptions.values().find(|s| s.link_id == link_id)?;
        s.link.local_ufrag().await
    }

    /// Starts restart attempt `attempt` of a link: the round trip runs
    /// beside the actor; the link's state (or the next deadline) says how
    /// it went.
    async fn restart_attempt(&mut self, link_id: LinkId, attempt: u32) {
        let now = Instant::now();
        let started = match self.recovery.get(&link_id) {
            Some(Recovery::Restarting { started, .. }) => *started,
            _ => now,
        };
        self.set_recovery(
            link_id,
            Recovery::Restarting {
                attempt,
                started,
                next: now + ATTEMPT_TIMEOUT,
            },
        );
        let Ok(signal) = self.signal() else {
            return; // reconnecting: the next deadline looks again
        };
        let link = if let Some(p) = self.publications.values().find(|p| p.link_id == link_id) {
            Side::Publish(p.link.clone())
        } else if let Some(s) = self.subscriptions.values().find(|s| s.link_id == link_id) {
            Side::Subscribe(s.link.clone())
        } else {
            return;
        };
        tracing::info!(link = link_id.0, attempt, "ICE restart");
        let task = tokio::spawn(async move {
            match negotiate(&signal, link_id, link).await {
                Ok(ufrag) => {
                    tracing::debug!(link = link_id.0, attempt, ufrag, "ICE restart negotiated");
                    Outcome::Retry
                }
                Err(ClientError::Server {
                    code: crate::protocol::ErrorCode::InvalidParameter,
                    message,
                }) => {
                    tracing::info!(link = link_id.0, "ICE restart refused ({message})");
                    Outcome::LinkGone
                }
                Err(e) => {
                    tracing::info!(link = link_id.0, attempt, "ICE restart failed: {e}");
                    Outcome::Retry
                }
            }
        });
        self.recovery.spawn(link_id, task);
    }

    /// The fallback: a new link for the subscription or publication.
    async fn rebuild(&mut self, link_id: LinkId) {
        self.recovery.remove(&link_id);
        self.emit(crate::client::RoomEvent::Error {
            code: crate::protocol::ErrorCode::SubscribedUserConnectError,
            message: format!("media link {link_id} failed; setting it up again"),
        });
        self.link_broke(link_id, RTCPeerConnectionState::Failed)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disconnected_waits_a_grace_then_restarts_with_bounded_retries() {
        let now = Instant::now();
        let (r, go) = on_state(Recovery::Healthy, RTCPeerConnectionState::Disconnected, now);
        assert_eq!(r, Recovery::Grace { until: now + GRACE });
        assert!(!go);
        assert_eq!(when_due(r), Some(Due::Restart(1)));
        // Back by itself within the grace: nothing to do.
        let (r2, go) = on_state(r, RTCPeerConnectionState::Connected, now);
        assert_eq!((r2, go), (Recovery::Healthy, false));
        let restarting = |attempt| Recovery::Restarting {
            attempt,
            started: now,
            next: now,
        };
        assert_eq!(when_due(restarting(1)), Some(Due::Restart(2)));
        assert_eq!(when_due(restarting(MAX_ATTEMPTS)), Some(Due::Rebuild));
        // A state change during a restart does not start another one.
        let (r3, go) = on_state(restarting(3), RTCPeerConnectionState::Failed, now);
        assert_eq!((r3, go), (restarting(3), false));
    }

    #[test]
    fn failed_restarts_at_once() {
        let now = Instant::now();
        let (r, go) = on_state(Recovery::Healthy, RTCPeerConnectionState::Failed, now);
        assert!(go);
        assert_eq!(r, Recovery::Healthy);
        assert_eq!(
            on_state(r, RTCPeerConnectionState::Connected, now).0,
            Recovery::Healthy
        );
    }
}
