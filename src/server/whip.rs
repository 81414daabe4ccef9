//! WHIP (RFC 9725): `POST /whip/{room}` publishes a stream into a room.
//!
//! The body is the client's SDP offer (`application/sdp`), checked exactly
//! as a WebSocket `publish` offer is (`check_publish_offer`: H.264
//! constrained baseline with packetization-mode 1, Opus, DTLS-SRTP;
//! 90100214 otherwise). The server answers it on an ingress link like any
//! publish, the resource joins the room as its user (joiner role by
//! default; a player is refused with 90100022) and adds the stream, so the
//! room sees `peer-join` and `stream-added` as for any member. The reply is
//! `201 Created`, the SDP answer (with the server's candidates: no trickle
//! needed) and `Location: /whip/{room}/{id}`; `DELETE` there ends it
//! (`stream-removed`, `peer-leave`), see `media_resource`.
//!
//! The order keeps refusals side-effect free: every check that needs no
//! state comes first, then the link (which the room has not seen), then the
//! join and the stream; a refusal at any step undoes the steps before it.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Server;
use super::inbox::{SessionId, SessionInbox};
use super::media_resource::{
    self, HttpError, JoinQuery, NewResource, ResourceLink, authorize, created,
};
use super::sdp_checks::{check_publish_offer, usable_candidates_only};
use crate::protocol::{ErrorCode, Role, RoomId, StreamInfo, VideoInfo};

/// What a WHIP stream announces as its video (the offer does not say; the
/// decoders of the room read the real size from the stream itself).
pub const ANNOUNCED_VIDEO: VideoInfo = VideoInfo {
    width: 1280,
    height: 720,
    frame_rate: 30,
};

/// `POST /whip/{room}`.
pub async fn post(
    State(server): State<Server>,
    Path(room): Path<String>,
    query: Result<Query<JoinQuery>, QueryRejection>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return HttpError::bad_request(e.body_text()).into_response(),
    };
    let body = match media_resource::read_body(body) {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    match publish(&server, RoomId::from(room), &query, &headers, &uri, &body).await {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(code = e.code.code(), "WHIP refused: {}", e.message);
            e.into_response()
        }
    }
}

async fn publish(
    server: &Server,
    room_id: RoomId,
    query: &JoinQuery,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Result<Response, HttpError> {
    let shared = &server.shared;
    let identity = authorize(shared, headers, &room_id, query, Role::Joiner, || {
        format!("whip-{}", shared.next())
    })?;
    // A room on another node of a cluster: go there (307).
    if let Some(redirect) = crate::server::cluster::http::redirect(shared, &room_id, uri).await? {
        return Ok(redirect);
    }
    if !identity.user.role.can_publish() {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::RoleNoPermission,
            format!("role {:?} has no permission to publish", identity.user.role),
        ));
    }
    let offer = media_resource::sdp_body(headers, body)?;
    let offered =
        check_publish_offer(&offer).map_err(|e| HttpError::offer(&e, ErrorCode::InvalidPushed))?;
    if !offered.audio && !offered.video {
        return Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidPushed,
            "the offer has no audio or video section",
        ));
    }
    let (offer, _) = usable_candidates_only(&offer);
    let remote_ufrag = media_resource::ice_ufrag(&offer);
    let session = SessionId(shared.next());
    let (inbox, inbox_rx) = SessionInbox::new();
    let link_id = shared.next_link_id();
    let (link, media, answer) = shared
        .sfu
        .publish(link_id, offer, inbox.clone())
        .await
        .map_err(|e| HttpError::sfu(&e))?;
    if let Err(e) = media_resource::join_room(shared, &room_id, session, &identity, inbox) {
        link.close().await;
        return Err(e);
    }
    let stream_id = shared.next_stream_id();
    let info = StreamInfo {
        stream_id,
        user_id: identity.user.user_id.clone(),
        audio: offered.audio,
        video: offered.video.then_some(ANNOUNCED_VIDEO),
        audio_muted: false,
        video_muted: false,
        is_screen: false,
        resolutions: Vec::new(),
    };
    if let Err(e) = shared.rooms.add_stream(&room_id, session, info, media) {
        // Replaced by a join of the same user in between (then leaving is
        // a no-op).
        shared.rooms.leave(
            &room_id,
            &identity.user.user_id,
            session,
            crate::protocol::LeaveReason::UserExit,
        );
        link.close().await;
        return Err(HttpError::room(&e));
    }
    let id = media_resource::new_resource_id();
    let location = format!("/whip/{room_id}/{id}");
    tracing::info!(room = %room_id, user = %identity.user.user_id, stream = %stream_id, "WHIP publish");
    media_resource::start(
        &Arc::clone(shared),
        NewResource {
            kind: "whip",
            id,
            session,
            room_id,
            identity,
            played: None,
            remote_ufrag,
            link: ResourceLink::Publish(link),
            inbox: inbox_rx,
        },
    );
    Ok(created(&location, answer))
}
