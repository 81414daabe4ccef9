//! WHEP (draft-ietf-wish-whep): `POST /whep/{room}/{stream}` plays one
//! stream of a room out to a client that is not a huddle client (a browser
//! page, GStreamer, OBS, ffmpeg...).
//!
//! The client offers (`recvonly` audio and/or video, H.264 and Opus), the
//! server answers with an egress leg of the hub: the same sans-IO leg, fast
//! path and fan-out as a WebSocket subscription, negotiated from the other
//! side (`Sfu::play`). The resource joins the room as its user (player role
//! by default), so it counts against the room's limits and the room sees it
//! as a member; it ends on `DELETE` at its `Location`
//! (`/whep/{room}/{stream}/{id}`), when the stream goes away, or when its
//! link fails (see `media_resource`).
//!
//! SRTP: the leg offers AES-GCM only, which the hub seals itself (its fast
//! path) and every browser speaks. `?srtp=aes-cm` adds
//! `SRTP_AES128_CM_HMAC_SHA1_80` for players without AES-GCM (GStreamer
//! 1.22); such a leg sends through its `rtc` core, correct but slower
//! (browsers would pick AES-CM too if it were always offered).
//!
//! Layers: `?layer=<resolutionId>` plays that simulcast layer of a layered
//! stream (`protocol::layers`), `?layer=auto` lets the SFU choose by the
//! player's downlink as for a `subscribe` with `auto`; without it the
//! largest layer is played. The leg counts as a watcher of its layer (the
//! publisher keeps encoding it), which is how a relay node
//! (`cluster::relay`) pulls one layer per link.
//!
//! Refusals: unknown room 404 (90100227), unknown stream 404 (90100213), an
//! offer that cannot receive the stream 400 (90000005), playing one's own
//! stream 409 (90100001), a `layer` the stream does not have 400
//! (91000102).

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
use super::room::RoomError;
use super::sdp_checks::{check_play_offer, usable_candidates_only};
use super::signalling::layers::resolve;
use crate::protocol::{ErrorCode, LayerChoice, LeaveReason, Role, RoomId, StreamId};

/// `POST /whep/{room}/{stream}`.
pub async fn post(
    State(server): State<Server>,
    Path((room, stream)): Path<(String, String)>,
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
    match play(
        &server,
        RoomId::from(room),
        &stream,
        &query,
        &headers,
        &uri,
        &body,
    )
    .await
    {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(code = e.code.code(), "WHEP refused: {}", e.message);
            e.into_response()
        }
    }
}

async fn play(
    server: &Server,
    room_id: RoomId,
    stream: &str,
    query: &JoinQuery,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    body: &[u8],
) -> Result<Response, HttpError> {
    let shared = &server.shared;
    let identity = authorize(shared, headers, &room_id, query, Role::Player, || {
        format!("whep-{}", shared.next())
    })?;
    // A room on another node of a cluster: go there (307).
    if let Some(redirect) = crate::server::cluster::http::redirect(shared, &room_id, uri).await? {
        return Ok(redirect);
    }
    let stream_id = stream.parse::<u64>().map(StreamId).map_err(|_| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidSubscribedInfo,
            format!("{stream:?} is not a stream id (a number, as in stream-added)"),
        )
    })?;
    let aes_cm = match query.srtp.as_deref() {
        None | Some("aes-gcm") => false,
        Some("aes-cm") => true,
        Some(other) => {
            return Err(HttpError::bad_request(format!(
                "srtp={other:?}: use aes-gcm (the default) or aes-cm"
            )));
        }
    };
    let offer = media_resource::sdp_body(headers, body)?;
    let (info, media) = shared
        .rooms
        .stream(&room_id, stream_id)
        .map_err(|e| match e {
            RoomError::NotJoined => HttpError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::RoomNotExist,
                format!("room {room_id} does not exist"),
            ),
            e => HttpError::room(&e),
        })?;
    if info.user_id == identity.user.user_id {
        return Err(HttpError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidOperation,
            "cannot play your own stream (joining as its publisher would replace it)",
        ));
    }
    // Checked before anything is made: a refused layer loses nothing.
    let layer = LayerChoice::from_wire(query.layer.as_deref());
    let slot = resolve(&layer, &info.resolutions, &media.layers(), false).map_err(|e| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            e.code(),
            format!("layer: {e} (stream {stream_id} has {:?})", media.layers()),
        )
    })?;
    let offered =
        check_play_offer(&offer).map_err(|e| HttpError::offer(&e, ErrorCode::InvalidParameter))?;
    let video = offered.video && info.video.is_some();
    let audio = offered.audio && info.audio;
    if !video && !audio {
        return Err(HttpError::bad_request(format!(
            "the offer receives none of what stream {stream_id} carries (audio: {}, video: {})",
            info.audio,
            info.video.is_some()
        )));
    }
    let (offer, _) = usable_candidates_only(&offer);
    let remote_ufrag = media_resource::ice_ufrag(&offer);
    let session = SessionId(shared.next());
    let (inbox, inbox_rx) = SessionInbox::new();
    let link_id = shared.next_link_id();
    let (link, answer) = shared
        .sfu
        .play(link_id, &media, video, audio, aes_cm, offer, inbox.clone())
        .await
        .map_err(|e| HttpError::sfu(&e))?;
    if let Some(slot) = slot.filter(|_| video) {
        link.set_layer(slot, layer == LayerChoice::Auto);
    }
    if let Err(e) = media_resource::join_room(shared, &room_id, session, &identity, inbox) {
        link.close().await;
        return Err(e);
    }
    // The stream may have gone while the leg was made: then nobody will
    // tell this member, so look again now that it is one.
    if shared.rooms.stream(&room_id, stream_id).is_err() {
        shared.rooms.leave(
            &room_id,
            &identity.user.user_id,
            session,
            LeaveReason::UserExit,
        );
        link.close().await;
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidSubscribedInfo,
            format!("stream {stream_id} has ended"),
        ));
    }
    let id = media_resource::new_resource_id();
    let location = format!("/whep/{room_id}/{stream_id}/{id}");
    tracing::info!(room = %room_id, user = %identity.user.user_id, stream = %stream_id, "WHEP play");
    media_resource::start(
        &Arc::clone(shared),
        NewResource {
            kind: "whep",
            id,
            session,
            room_id,
            identity,
            played: Some(stream_id),
            remote_ufrag,
            link: ResourceLink::Play(link),
            inbox: inbox_rx,
        },
    );
    Ok(created(&location, answer))
}
