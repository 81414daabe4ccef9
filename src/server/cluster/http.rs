//! WHIP and WHEP on a node of a cluster: a `POST` for a room that another
//! node holds is answered `307 Temporary Redirect` to the same path and
//! query on that node (RFC 9725 §4.5 allows it; WHIP/WHEP clients follow
//! it), so a WHIP publisher joins the room where its players are.

use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::{Reply, RoomId};
use crate::server::Shared;
use crate::server::media_resource::HttpError;

/// `Ok(Some(307))` when the room lives on another node, `Ok(None)` to serve
/// the request here (no cluster, the room is here, or it was just claimed
/// for this node), 503 with 90100211 when Redis is away and the room would
/// be new.
pub(crate) async fn redirect(
    shared: &Shared,
    room_id: &RoomId,
    uri: &Uri,
) -> Result<Option<Response>, HttpError> {
    let Some(cluster) = &shared.cluster else {
        return Ok(None);
    };
    // A mirrored room (`relay`) is published and played on its owner.
    let mirrored = cluster.relays.view(room_id).is_some();
    if !mirrored && shared.rooms.exists(room_id) {
        return Ok(None);
    }
    let routed = cluster
        .route(room_id)
        .await
        .map_err(|e| HttpError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()))?;
    let Some(Reply::Redirect { url, .. }) = routed else {
        return Ok(None);
    };
    let Some(location) = http_location(&url, uri) else {
        return Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::protocol::ErrorCode::SaveRoomError,
            format!("room {room_id} is on a node whose URL {url:?} is not ws:// or wss://"),
        ));
    };
    Ok(Some(
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
    ))
}

/// The node's signalling URL (`ws://host:port[/…]`) turned into the HTTP
/// URL of the same request there: its scheme and authority, the request's
/// path and query.
fn http_location(node_url: &str, uri: &Uri) -> Option<String> {
    let (scheme, rest) = if let Some(rest) = node_url.strip_prefix("wss://") {
        ("https", rest)
    } else {
        ("http", node_url.strip_prefix("ws://")?)
    };
    let authority = rest.split(['/', '?']).next().filter(|a| !a.is_empty())?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Some(format!("{scheme}://{authority}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_keep_path_and_query_on_the_node() {
        let uri: Uri = "/whip/room_1?app=a&user=u".parse().expect("uri");
        assert_eq!(
            http_location("ws://10.0.0.2:7880", &uri).as_deref(),
            Some("http://10.0.0.2:7880/whip/room_1?app=a&user=u")
        );
        assert_eq!(
            http_location("wss://b.example/ws", &uri).as_deref(),
            Some("https://b.example/whip/room_1?app=a&user=u")
        );
        assert_eq!(http_location("http://x", &uri), None);
        assert_eq!(http_location("ws://", &uri), None);
    }
}
