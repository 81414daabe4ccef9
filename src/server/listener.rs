//! The accept loop: every TCP connection of the server starts here.
//!
//! axum's `serve` forgets a connection once it is upgraded to a WebSocket,
//! so a shutdown could return while sessions were still saying goodbye (and
//! a process exiting then cut them off). [`serve`] is the server's own loop
//! over hyper's HTTP/1 connection builder:
//!
//! * **Ownership.** Each accepted connection gets one [`ConnectionToken`]. Its
//!   task holds it, and so does every request it serves; a WebSocket upgrade
//!   moves a clone into the session. Shutdown waits for the connection until
//!   the last clone is dropped: for a WebSocket, when its session has said
//!   goodbye.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::Shared;

/// How long to pause accepting after an error that is not about one
/// connection (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Keeps one accepted connection open in the server's books (see the module
/// docs). Cheap to clone; the connection ends in the books with the last clone.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionToken(#[allow(dead_code)] Arc<Held>);

#[derive(Debug)]
struct Held {
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
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, _peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(e).await;
                continue;
            }
        };
        let token = ConnectionToken(Arc::new(Held {
            _tracked: tracker.subscribe(),
        }));
        tokio::spawn(serve_connection(
            stream,
            router.clone(),
            token,
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

/// One connection: HTTP/1, upgrades allowed. Ends when the connection closes
/// or is upgraded (the session then holds the token).
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    token: ConnectionToken,
    mut shutdown: watch::Receiver<bool>,
) {
    let service = {
        let router = TowerToHyperService::new(router);
        let token = token.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // For `ws_upgrade`, which hands it to the session.
            request.extensions_mut().insert(token.clone());
            hyper::service::Service::call(&router, request)
        })
    };
    let connection = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
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
        // Resets, malformed requests: the client's business.
        tracing::debug!("connection closed: {e}");
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
