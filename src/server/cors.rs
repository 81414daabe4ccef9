//! Which web pages may call the server's HTTP API from another origin
//! (CORS): `GET /signature`, so a page served elsewhere can fetch a
//! join signature with its `X-AUTH-TOKEN`; WHIP/WHEP use the same origins
//! (`media_resource`).
//!
//! Nothing is allowed by default: a browser then refuses a cross-origin
//! page the reply (same-origin pages and non-browser clients are not
//! affected). Each allowed origin is checked when the config is read.

use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// A configured origin that is not `*` or `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "CORS origin {0:?} must be \"*\" or scheme://host[:port] (no path, no trailing slash), e.g. \"https://meet.example.com\""
)]
pub struct BadOrigin(pub String);

/// Checks one configured origin.
pub fn check_origin(origin: &str) -> Result<(), BadOrigin> {
    let bad = || BadOrigin(origin.to_owned());
    if origin == "*" {
        return Ok(());
    }
    let (scheme, rest) = origin.split_once("://").ok_or_else(bad)?;
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let host_ok = !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
        && rest.is_ascii()
        && HeaderValue::from_str(origin).is_ok();
    if scheme_ok && host_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The CORS layer for `origins` (already checked), or `None` when the list
/// is empty.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET])
            .allow_headers([HeaderName::from_static("x-auth-token")])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        for good in [
            "*",
            "https://meet.example.com",
            "http://127.0.0.1:8080",
            "http://localhost",
        ] {
            assert_eq!(check_origin(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "meet.example.com",
            "https://",
            "https://meet.example.com/",
            "https://meet.example.com/app",
            "https://user@meet.example.com",
            "https://mé.example",
            "://x",
        ] {
            assert!(check_origin(bad).is_err(), "{bad:?} accepted");
        }
    }
}
