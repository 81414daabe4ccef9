//! The web client: a join page that `huddle serve` hands to a browser at `/`.
//!
//! The page is plain HTML, CSS and JavaScript under `web/` at the repository
//! root, compiled into the binary with `include_str!`: no build step, no
//! packages, nothing fetched from elsewhere (its Content-Security-Policy
//! allows scripts and styles from this server only). It speaks the protocol
//! of `docs/protocol.md` like any other client, so it is also the reference
//! for writing one in a browser.
//!
//! `/` is the WebSocket route too (older clients connect there): a request
//! that asks for a WebSocket (an `Upgrade` header) is a WebSocket request,
//! and gets the upgrade or the upgrade's own refusal; any other `GET /` gets
//! the page.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The join page.
const INDEX_HTML: &str = include_str!("../../web/index.html");
/// The page's client: signalling, peer connections, the grid.
const CLIENT_JS: &str = include_str!("../../web/huddle.js");
/// The page's style.
const STYLE_CSS: &str = include_str!("../../web/huddle.css");

/// Where the page loads its script and style from (referenced in `index.html`).
pub const SCRIPT_PATH: &str = "/web/huddle.js";
/// See [`SCRIPT_PATH`].
pub const STYLE_PATH: &str = "/web/huddle.css";

/// What the page may load and connect to: its own script and style only;
/// WebSockets and `fetch` to any server (the user picks the room server, and
/// `GET /signature` may live elsewhere); media from the browser itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; media-src 'self' blob: mediastream:; \
     connect-src 'self' ws: wss: http: https:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The routes of the page's script and style. The page itself is served by
/// the `/` handler through [`page`].
pub(crate) fn assets<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            SCRIPT_PATH,
            get(|| async { asset("text/javascript; charset=utf-8", CLIENT_JS) }),
        )
        .route(
            STYLE_PATH,
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

/// Whether a request to `/` asks for a WebSocket rather than the page: it
/// names an upgrade (RFC 6455 §4.1 requires `Upgrade: websocket`). A broken
/// upgrade request still counts, so it gets the upgrade's error, not a page.
pub(crate) fn wants_websocket(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

/// The join page.
pub(crate) fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // A new server version ships a new page: always revalidate.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_what_the_server_serves() {
        assert!(INDEX_HTML.contains(&format!("src=\"{SCRIPT_PATH}\"")));
        assert!(INDEX_HTML.contains(&format!("href=\"{STYLE_PATH}\"")));
        // No CDN, no outside fonts or images: every address the page names
        // is a path on this server (the CSP enforces it in the browser).
        for attribute in ["src=\"", "href=\""] {
            for (_, rest) in INDEX_HTML
                .match_indices(attribute)
                .map(|(i, a)| INDEX_HTML.split_at(i + a.len()))
            {
                assert!(
                    rest.starts_with('/'),
                    "{attribute}{}",
                    &rest[..rest.len().min(40)]
                );
            }
        }
        for loader in [
            "import ",
            "import(",
            "importScripts",
            "createElement('script')",
        ] {
            assert!(
                !CLIENT_JS.contains(loader),
                "the script loads code: {loader}"
            );
        }
        for loader in ["url(", "@import"] {
            assert!(
                !STYLE_CSS.contains(loader),
                "the style loads something: {loader}"
            );
        }
    }

    #[test]
    fn only_upgrade_requests_are_websockets() {
        let mut headers = HeaderMap::new();
        assert!(!wants_websocket(&headers));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_websocket(&headers));
    }
}
