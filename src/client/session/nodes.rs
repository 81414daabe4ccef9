//! Servers of several nodes (`huddle serve --redis`): a join may be answered
//! `redirect` (the room lives on another node: join there), and a client
//! whose node went away gets back in through another node.
//!
//! [`NodeRoute`] is which URLs the client may use and which one is next: the
//! node it joined (where `resume` goes), then the URL the application
//! configured and the live nodes the `joined` reply listed. An attempt that
//! cannot even open its socket moves on to the next URL; the next one that
//! answers either knows the session (resume), or holds the room (join), or
//! sends the client to the room's node. A dead node's room is claimed by the
//! next join once the dead node's registration has expired (the cluster's
//! TTL), so the client lands on a live node by itself.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{ClientError, ClientResult, Reply, Request, Session, SignalConnection, SignalEvent};

/// Redirects one join follows before it gives up (nodes that disagree
/// about a room's owner, for at most the TTL after a node died).
pub(super) const MAX_REDIRECTS: usize = 3;

/// URLs a client keeps to reconnect through (joined, configured, listed and
/// formerly listed nodes).
pub(super) const MAX_KNOWN_NODES: usize = 16;

/// The signalling URLs a joined client may use, and the one to try next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NodeRoute {
    /// The node it joined first, then the others, without repeats.
    urls: Vec<String>,
    /// Index into `urls` of the URL the next attempt uses.
    next: usize,
}

impl NodeRoute {
    /// After joining at `joined_at`, with the application's `configured` URL
    /// and the `nodes` the server listed.
    pub(super) fn new(joined_at: &str, configured: &str, nodes: &[String]) -> Self {
        let mut urls = vec![joined_at.to_owned()];
        for url in std::iter::once(configured).chain(nodes.iter().map(String::as_str)) {
            if !urls.iter().any(|u| same_url(u, url)) {
                urls.push(url.to_owned());
            }
        }
        Self { urls, next: 0 }
    }

    /// The URL of the next attempt.
    pub(super) fn target(&self) -> &str {
        self.urls.get(self.next).map_or("", String::as_str)
    }

    /// After joining again at `joined_at`: that node first, then the
    /// configured URL, the nodes listed now and those known before (a node
    /// that was down when the list was made may be back by the next drop),
    /// at most [`MAX_KNOWN_NODES`].
    pub(super) fn rejoined(&mut self, joined_at: &str, configured: &str, nodes: &[String]) {
        let before = std::mem::take(&mut self.urls);
        let mut route = Self::new(joined_at, configured, nodes);
        for url in before {
            if route.urls.len() < MAX_KNOWN_NODES && !route.urls.iter().any(|u| same_url(u, &url)) {
                route.urls.push(url);
            }
        }
        *self = route;
    }

    /// Adds the nodes a `nodes-changed` listed (at most
    /// [`MAX_KNOWN_NODES`] in all); the next target does not change.
    pub(super) fn learn(&mut self, nodes: &[String]) {
        for url in nodes {
            if self.urls.len() < MAX_KNOWN_NODES && !self.urls.iter().any(|u| same_url(u, url)) {
                self.urls.push(url.clone());
            }
        }
    }

    /// The target could not be reached: the next attempt tries the next URL.
    pub(super) fn unreachable(&mut self) {
        if !self.urls.is_empty() {
            self.next = (self.next + 1) % self.urls.len();
        }
    }
}

/// Whether a refused join back into the room is worth another attempt:
/// 90100211 (the cluster cannot claim the room now) and 90100203 (redirected
/// too often: nodes disagreeing while a dead node's claims expire).
pub(super) fn retryable(code: crate::protocol::ErrorCode) -> bool {
    use crate::protocol::ErrorCode;
    matches!(code, ErrorCode::SaveRoomError | ErrorCode::JoinRoomFail)
}

/// Whether two URLs name one node (a trailing `/` aside).
fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Session {
    /// `nodes-changed`: more nodes to reconnect through.
    pub(super) fn nodes_changed(&mut self, nodes: &[String]) {
        if let Some(rejoin) = &mut self.rejoin {
            rejoin.route.learn(nodes);
            tracing::debug!(
                "the cluster's nodes now: {nodes:?}; known: {:?}",
                rejoin.route
            );
        }
    }

    /// Sends `join` on `signal` (connected to `url`, and already the
    /// session's `self.signal`); while the answer is `redirect`, opens a
    /// socket to the URL it names, makes it `self.signal` and joins there.
    /// Returns the URL of the node that answered, and its answer.
    pub(super) async fn join_following(
        &mut self,
        signal: Arc<SignalConnection>,
        url: String,
        join: Request,
        signal_tx: &mpsc::Sender<SignalEvent>,
    ) -> ClientResult<(String, Reply)> {
        let mut signal = signal;
        let mut url = url;
        for _ in 0..=MAX_REDIRECTS {
            match signal.request(join.clone()).await? {
                Reply::Redirect {
                    node_id,
                    url: there,
                    ..
                } => {
                    tracing::info!("room is on node {node_id}; joining at {there}");
                    if let Some(old) = self.signal.take() {
                        super::close_signal(old).await;
                    }
                    let tls = self.proxy.connector(&there)?;
                    signal = Arc::new(
                        SignalConnection::connect(
                            &there,
                            tls,
                            signal_tx.clone(),
                            self.signal_log.clone(),
                        )
                        .await?,
                    );
                    self.signal = Some(Arc::clone(&signal));
                    self.rtc_ip = super::rtc_ip_for(&there);
                    url = there;
                }
                reply => return Ok((url, reply)),
            }
        }
        Err(ClientError::Server {
            code: crate::protocol::ErrorCode::JoinRoomFail,
            message: format!("redirected more than {MAX_REDIRECTS} times; last to {url}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_joined_node_comes_first_then_the_others_in_turn() {
        let nodes = ["ws://b:2".to_owned(), "ws://a:1/".to_owned()];
        let mut route = NodeRoute::new("ws://b:2", "ws://a:1", &nodes);
        assert_eq!(route.target(), "ws://b:2");
        route.unreachable();
        assert_eq!(route.target(), "ws://a:1");
        route.unreachable();
        assert_eq!(route.target(), "ws://b:2", "no repeats, and it wraps");
        let single = NodeRoute::new("ws://a:1", "ws://a:1", &[]);
        assert_eq!(single.urls.len(), 1);
        // Joined again at a while b was down (not listed): b is kept.
        route.rejoined("ws://a:1", "ws://a:1", &["ws://a:1".to_owned()]);
        assert_eq!(route.urls, ["ws://a:1", "ws://b:2"]);
        assert_eq!(route.target(), "ws://a:1");
        // A node that started later, from `nodes-changed`.
        route.learn(&["ws://b:2".to_owned(), "ws://c:3".to_owned()]);
        assert_eq!(route.urls, ["ws://a:1", "ws://b:2", "ws://c:3"]);
        assert_eq!(route.target(), "ws://a:1");
    }
}
