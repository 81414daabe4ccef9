//! The accept loop: every TCP connection of the server starts here.
//!
//! axum's `serve` has no header timeout, no connection limits, and forgets a
//! connection once it is upgraded to a WebSocket, so a shutdown could return
//! while sessions were still saying goodbye. [`serve`] is the server's own
//! loop over hyper's HTTP/1 connection builder:
//!
//! * **Admission.** At most `max_connections` connections are open at once,
//!   and at most `max_connections_per_ip` from one address. The excess is
//!   closed as soon as it is accepted and counted (`connectionsRefused`).
//! * **Header timeout.** A connection must send a complete request head (for
//!   a WebSocket, the upgrade request) within `header_timeout` of opening, and
//!   of each response while it stays open, or hyper closes it: a client that
//!   sends nothing, or half a request, cannot hold a connection (slowloris).
//! * **TLS.** With a certificate (`ServerConfig::tls`), each connection
//!   first completes a TLS handshake, within `header_timeout` too; then it is
//!   HTTP as above.
//! * **Ownership.** Each accepted connection gets one [`ConnectionToken`]. Its
//!   task holds it, and so does every request it serves; a WebSocket upgrade
//!   moves a clone into the session. The connection counts as open (limits,
//!   the `connections` gauge) and shutdown waits for it until the last clone is
//!   dropped: for a WebSocket, when its session has said goodbye.
//!
//! Invariant: [`ConnectionLimits::open`] is the number of live tokens, and an
//! address appears in the per-address table only while it has one.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::{Limits, Shared};

/// At most one warning per this interval about refused connections (an attack
/// would otherwise turn into a log flood); the others are counted.
const REFUSAL_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// How long to pause accepting after an error that is not about one
/// connection (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Open connections, in total and per source address.
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// `max_connections` are open.
    #[error("the server holds its maximum of {0} connections")]
    Total(usize),
    /// `max_connections_per_ip` are open from this address.
    #[error("{0} connections are open from this address already")]
    PerIp(usize),
}

/// One admitted connection's place in [`ConnectionLimits`]; released on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    /// Limits as `limits` says.
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            counts: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Two counters changed together under the lock: consistent after a
        // panic elsewhere.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a connection from `ip`, or says which limit is full.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        // An IPv4 client on a dual-stack socket is the same address either way.
        let ip = ip.to_canonical();
        let mut counts = self.lock();
        if counts.total >= self.max_total {
            return Err(Refusal::Total(self.max_total));
        }
        let from_ip = counts.per_ip.entry(ip).or_default();
        if *from_ip >= self.max_per_ip {
            return Err(Refusal::PerIp(self.max_per_ip));
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(Slot {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.lock().total
    }

    /// Addresses with a connection open now.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.lock().per_ip.len()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// Keeps one accepted connection open in the server's books (see the module
/// docs). Cheap to clone; the connection ends in the books with the last clone.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionToken(#[allow(dead_code)] Arc<Held>);

#[derive(Debug)]
struct Held {
    _slot: Slot,
    /// Shutdown waits until every receiver of its channel is gone.
    _tracked: watch::Receiver<()>,
}

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, tells every session to end, and waits (at most
/// `shutdown_grace`) until every connection, sessions included, is closed.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let (tracker, _) = watch::channel(());
    let header_timeout = shared.config.limits.header_timeout;
    let tls = shared
        .config
        .tls
        .as_ref()
        .map(super::tls::TlsConfig::acceptor);
    let mut refusals = RefusalLog::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let slot = match shared.connections.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                shared
                    .metrics
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                refusals.refused(peer, refusal);
                drop(stream); // closes it
                continue;
            }
        };
        let token = ConnectionToken(Arc::new(Held {
            _slot: slot,
            _tracked: tracker.subscribe(),
        }));
        tokio::spawn(serve_connection(
            stream,
            tls.clone(),
            router.clone(),
            token,
            header_timeout,
            shared.shutdown.subscribe(),
        ));
    }
    drop(listener);
    shared.shutdown.send_replace(true);
    let grace = shared.config.shutdown_grace;
    if tokio::time::timeout(grace, tracker.closed()).await.is_err() {
        tracing::warn!(
            open = tracker.receiver_count(),
            "connections still open {grace:?} after shutdown began; returning without them"
        );
    }
}

/// One connection: the TLS handshake when the server has a certificate,
/// then [`serve_http`].
async fn serve_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    router: Router,
    token: ConnectionToken,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(acceptor) = tls else {
        return serve_http(stream, router, token, header_timeout, shutdown).await;
    };
    // The handshake has the request head's deadline: a client that opens a
    // connection and stalls in TLS holds it no longer than one that stalls
    // in HTTP.
    let handshake = tokio::time::timeout(header_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                // Plain HTTP to a TLS port, an untrusted certificate: the
                // client's business.
                tracing::debug!("TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake not done within {header_timeout:?}");
                return;
            }
        },
        true = async { shutdown.wait_for(|down| *down).await.is_ok() } => return,
    };
    serve_http(stream, router, token, header_timeout, shutdown).await;
}

/// HTTP/1 on one connection with a header timeout, upgrades allowed. Ends
/// when the connection closes or is upgraded (the session then holds the
/// token).
async fn serve_http<I>(
    io: I,
    router: Router,
    token: ConnectionToken,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let router = TowerToHyperService::new(router);
        let token = token.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // For `ws_upgrade`, which hands it to the session.
            request.extensions_mut().insert(token.clone());
            hyper::service::Service::call(&router, request)
        })
    };
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connection = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        true = async { shutdown.wait_for(|down| *down).await.is_ok() } => {
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        // Timeouts, resets, malformed requests: the client's business.
        tracing::debug!("connection closed: {e}");
    }
}

/// Rate-limits the warning about refused connections: at most one per
/// [`REFUSAL_WARN_INTERVAL`], saying how many were refused since the last.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unreported: u64,
}

impl RefusalLog {
    fn refused(&mut self, peer: SocketAddr, refusal: Refusal) {
        self.unreported += 1;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < REFUSAL_WARN_INTERVAL)
        {
            tracing::debug!(%peer, "connection refused: {refusal}");
            return;
        }
        tracing::warn!(
            %peer,
            refused = self.unreported,
            "connection refused: {refusal} (refused since the last warning: see `refused`; all: connectionsRefused in /metrics)"
        );
        self.last = Some(now);
        self.unreported = 0;
    }
}

/// Handles an error from `accept`: one connection's failure is skipped, any
/// other (file descriptors exhausted...) pauses accepting briefly.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept failed: {e}; pausing {ACCEPT_ERROR_PAUSE:?}");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_ip: usize) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits::new(&Limits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            ..Limits::default()
        }))
    }

    #[test]
    fn one_address_gets_its_share_and_no_more() {
        let table = limits(10, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = table.admit(a).expect("first");
        let _a2 = table.admit(a).expect("second");
        assert_eq!(table.admit(a).unwrap_err(), Refusal::PerIp(2));
        let _b1 = table.admit(b).expect("another address is not affected");
        assert_eq!(table.open(), 3);
        drop(a1);
        let _a3 = table.admit(a).expect("a closed connection frees its place");
        assert_eq!(table.open(), 3);
    }

    #[test]
    fn the_total_caps_every_address() {
        let table = limits(2, 5);
        let _one = table.admit([10, 0, 0, 1].into()).expect("one");
        let _two = table.admit([10, 0, 0, 2].into()).expect("two");
        assert_eq!(
            table.admit([10, 0, 0, 3].into()).unwrap_err(),
            Refusal::Total(2)
        );
    }

    #[test]
    fn every_place_returns_and_no_address_is_left_behind() {
        let table = limits(100, 100);
        let slots: Vec<_> = (0..50u8)
            .map(|i| table.admit([10, 0, 0, i % 7].into()).expect("admit"))
            .collect();
        assert_eq!((table.open(), table.addresses()), (50, 7));
        drop(slots);
        assert_eq!((table.open(), table.addresses()), (0, 0));
    }

    #[test]
    fn a_mapped_ipv4_address_counts_as_the_ipv4_address() {
        let table = limits(10, 1);
        let v4: IpAddr = [192, 0, 2, 1].into();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        let _slot = table.admit(v4).expect("admit");
        assert_eq!(table.admit(mapped).unwrap_err(), Refusal::PerIp(1));
    }
}
