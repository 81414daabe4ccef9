//! HTTP signature-distribution endpoint (seed 001, chapter 4 "Signature Generation
//! Example").
//!
//! Why this exists: the seed advises tenants to run a server that hands out
//! signatures so the `app_key` never ships inside client apps. Its sample client calls
//! `GET <url>?appid=&roomid=&userid=&ctime=` with an `X-AUTH-TOKEN` header and reads
//! the `signature` field of the JSON reply; this router serves exactly that shape.
//!
//! Invariants:
//! - When a token is configured, nothing about apps or signatures is revealed to a
//!   request without the right `X-AUTH-TOKEN` (checked first, in constant time).
//! - A signature is only issued for a configured app, valid ids and an expiry inside
//!   `[now, now + 12 h]`, i.e. only signatures that [`verify`](super::verify) could
//!   accept right now.
//! - Every reply carries `Cache-Control: no-store`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{
    AppRegistry, DEFAULT_SIGNATURE_LIFETIME_SECS, Grant, MAX_SIGNATURE_LIFETIME_SECS, now_unix,
    sign_grant, validate_id,
};
use crate::protocol::ErrorCode;

/// Name of the header carrying the distribution server's access token.
const AUTH_TOKEN_HEADER: &str = "x-auth-token";

/// Successful reply of `GET /signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureResponse {
    /// Lower-case hex HMAC-SHA256 signature, as computed by [`sign`](super::sign).
    pub signature: String,
    /// The expiry the signature was made for (Unix seconds); pass it to join together
    /// with the signature.
    pub ctime: u64,
}

/// Error reply of `GET /signature` (HTTP 400 or 401).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Numeric error code (always [`ErrorCode::InvalidParameter`] today).
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

#[derive(Clone)]
struct SignatureState {
    registry: Arc<AppRegistry>,
    auth_token: Option<Arc<str>>,
}

/// Builds the signature-distribution router: `GET /signature`.
///
/// Query parameters (names as in the seed's sample client): `appid`, `roomid`,
/// `userid` (required), `ctime` (optional expiry in Unix seconds; default now + 2 h,
/// must lie in `[now, now + 12 h]`) and `director` (optional: `1` issues a director
/// signature, see [`Grant`]; guard the endpoint with a token when you use it).
///
/// Replies:
/// - `200` `{"signature": "<hex>", "ctime": N}`;
/// - `401` `{"code": 90000005, "message": …}` when `auth_token` is `Some` and the
///   `X-AUTH-TOKEN` header is missing or different;
/// - `400` `{"code": 90000005, "message": …}` for a missing or malformed parameter or
///   an app id that is not in `registry`.
pub fn signature_router(registry: Arc<AppRegistry>, auth_token: Option<String>) -> Router {
    let state = SignatureState {
        registry,
        auth_token: auth_token.map(Arc::from),
    };
    Router::new()
        .route("/signature", get(get_signature))
        .with_state(state)
}

fn error(status: StatusCode, message: String) -> Response {
    let body = ErrorBody {
        code: ErrorCode::InvalidParameter,
        message,
    };
    (status, Json(body)).into_response()
}

/// Extracts one required, well-formed id parameter; `Err` is the 400 message.
fn id_param<'a>(query: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    match query.get(name) {
        None => Err(format!("missing query parameter {name:?}")),
        Some(v) if !validate_id(v) => Err(format!(
            "invalid {name}: use 1-64 characters of A-Z a-z 0-9 _ -"
        )),
        Some(v) => Ok(v),
    }
}

async fn get_signature(
    State(state): State<SignatureState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut response = if token_ok(&state, &headers) {
        match issue(&state.registry, &query) {
            Ok(body) => Json(body).into_response(),
            Err(message) => error(StatusCode::BAD_REQUEST, message),
        }
    } else {
        tracing::warn!("signature request with missing or wrong X-AUTH-TOKEN");
        error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-AUTH-TOKEN header".to_owned(),
        )
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether the request carries the configured token (always true if none is set).
fn token_ok(state: &SignatureState, headers: &HeaderMap) -> bool {
    let Some(expected) = &state.auth_token else {
        return true;
    };
    let presented = headers
        .get(AUTH_TOKEN_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    bool::from(presented.ct_eq(expected.as_bytes()))
}

/// Validates the query and signs; `Err` is the 400 message.
fn issue(
    registry: &AppRegistry,
    query: &HashMap<String, String>,
) -> Result<SignatureResponse, String> {
    let app_id = id_param(query, "appid")?;
    let room_id = id_param(query, "roomid")?;
    let user_id = id_param(query, "userid")?;
    let now = now_unix();
    let ctime = match query.get("ctime") {
        None => now.saturating_add(DEFAULT_SIGNATURE_LIFETIME_SECS),
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| "invalid ctime: expected Unix seconds (expiry time)".to_owned())?,
    };
    if ctime < now {
        return Err(format!(
            "ctime {ctime} is in the past (now {now}); ctime is the expiry time"
        ));
    }
    if ctime > now.saturating_add(MAX_SIGNATURE_LIFETIME_SECS) {
        return Err(format!("ctime {ctime} is more than 12 h ahead (now {now})"));
    }
    let grant = match query.get("director").map(String::as_str) {
        None | Some("0") => Grant::Member,
        Some("1") => Grant::Director,
        Some(_) => return Err("invalid director: use 1 or 0".to_owned()),
    };
    let key = registry
        .get(app_id)
        .ok_or_else(|| format!("unknown appid {app_id:?}"))?;
    tracing::debug!(app_id, room_id, user_id, ctime, ?grant, "issuing signature");
    Ok(SignatureResponse {
        signature: sign_grant(key, app_id, room_id, user_id, ctime, grant),
        ctime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{sign, verify, verify_grant};
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn router(token: Option<&str>) -> Router {
        let mut registry = AppRegistry::new();
        registry.insert("app1", KEY);
        signature_router(Arc::new(registry), token.map(str::to_owned))
    }

    async fn call(
        router: Router,
        uri: &str,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::get(uri);
        if let Some(t) = token {
            req = req.header("X-AUTH-TOKEN", t);
        }
        let resp = router
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        let bytes = to_bytes(resp.into_body(), 64 * 1024).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn issues_verifiable_signature() {
        let ctime = now_unix() + 3600;
        let uri = format!("/signature?appid=app1&roomid=room_1&userid=alice&ctime={ctime}");
        let (status, json) = call(router(None), &uri, None).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let body: SignatureResponse = serde_json::from_value(json).unwrap();
        assert_eq!(body.ctime, ctime);
        assert_eq!(body.signature, sign(KEY, "app1", "room_1", "alice", ctime));
        let mut registry = AppRegistry::new();
        registry.insert("app1", KEY);
        assert_eq!(
            verify(
                &registry,
                "app1",
                "room_1",
                "alice",
                ctime,
                &body.signature,
                now_unix()
            ),
            Ok(())
        );
    }

    #[tokio::test]
    async fn issues_director_signatures_on_request() {
        let ctime = now_unix() + 3600;
        let mut registry = AppRegistry::new();
        registry.insert("app1", KEY);
        for (flag, grant) in [
            ("", Grant::Member),
            ("&director=0", Grant::Member),
            ("&director=1", Grant::Director),
        ] {
            let uri = format!("/signature?appid=app1&roomid=r&userid=host&ctime={ctime}{flag}");
            let (status, json) = call(router(None), &uri, None).await;
            assert_eq!(status, StatusCode::OK, "{json}");
            let body: SignatureResponse = serde_json::from_value(json).unwrap();
            let got = verify_grant(
                &registry,
                "app1",
                "r",
                "host",
                ctime,
                &body.signature,
                now_unix(),
            );
            assert_eq!(got, Ok(grant), "{flag}");
        }
        let uri = "/signature?appid=app1&roomid=r&userid=host&director=yes";
        let (status, json) = call(router(None), uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["code"], 90000005);
    }

    #[tokio::test]
    async fn default_ctime_is_two_hours() {
        let before = now_unix();
        let (status, json) = call(
            router(None),
            "/signature?appid=app1&roomid=r&userid=u",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        let ctime = json["ctime"].as_u64().unwrap();
        assert!(ctime >= before + DEFAULT_SIGNATURE_LIFETIME_SECS);
        assert!(ctime <= now_unix() + DEFAULT_SIGNATURE_LIFETIME_SECS);
    }

    #[tokio::test]
    async fn token_is_enforced() {
        let uri = "/signature?appid=app1&roomid=r&userid=u";
        for token in [None, Some("wrong"), Some("")] {
            let (status, json) = call(router(Some("s3cret")), uri, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
            assert_eq!(json["code"], 90000005);
            assert!(json["message"].as_str().unwrap().contains("X-AUTH-TOKEN"));
        }
        // Even a bad request is answered 401 first, revealing nothing.
        let (status, _) = call(router(Some("s3cret")), "/signature", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, json) = call(router(Some("s3cret")), uri, Some("s3cret")).await;
        assert_eq!(status, StatusCode::OK, "{json}");
    }

    #[tokio::test]
    async fn bad_requests() {
        let now = now_unix();
        let too_far = now + MAX_SIGNATURE_LIFETIME_SECS + 60;
        let cases = [
            ("/signature?roomid=r&userid=u".to_owned(), "appid"),
            ("/signature?appid=app1&userid=u".to_owned(), "roomid"),
            ("/signature?appid=app1&roomid=r".to_owned(), "userid"),
            (
                "/signature?appid=app1&roomid=a+b&userid=u".to_owned(),
                "roomid",
            ),
            (
                "/signature?appid=app1&roomid=r&userid=".to_owned(),
                "userid",
            ),
            (
                "/signature?appid=nope&roomid=r&userid=u".to_owned(),
                "unknown appid",
            ),
            (
                "/signature?appid=app1&roomid=r&userid=u&ctime=soon".to_owned(),
                "ctime",
            ),
            (
                "/signature?appid=app1&roomid=r&userid=u&ctime=-5".to_owned(),
                "ctime",
            ),
            (
                format!("/signature?appid=app1&roomid=r&userid=u&ctime={}", now - 10),
                "past",
            ),
            (
                format!("/signature?appid=app1&roomid=r&userid=u&ctime={too_far}"),
                "12 h",
            ),
        ];
        for (uri, needle) in cases {
            let (status, json) = call(router(None), &uri, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
            assert_eq!(json["code"], 90000005, "{uri}");
            let message = json["message"].as_str().unwrap();
            assert!(message.contains(needle), "{uri}: {message}");
        }
    }
}
