//! `GET /rooms` and `GET /rooms/{id}`: the server's view of its rooms, for
//! the stream debugger (issue 14 §1) and for an operator with `curl`.
//!
//! Why here and not in `room`: a room's view needs the SFU too (publish link
//! counters from each stream's ingress peer connection, subscription legs
//! from the egress hub), and `room` never awaits under its lock. So the
//! handler copies the room ([`Rooms::inspect`](super::room::Rooms::inspect)),
//! drops the lock, then reads the counters.
//!
//! Invariants:
//! - Guarded exactly like `GET /signature`: with a `signature_token`
//!   configured, nothing is revealed without the right `X-AUTH-TOKEN`
//!   (checked first, in constant time; 401, code 90000005). Without one both
//!   routes are open (the server warns at start).
//! - A malformed room id is 400 and an unknown room 404, both numbered
//!   (90000005); every reply carries `Cache-Control: no-store`.
//! - Reading never changes a room, a link or the hub's forwarding.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;

use super::Server;
use super::room::inspect::RoomInspection;
use super::sfu::{LegPhase, LegSnapshot};
use crate::auth::{ErrorBody, token_matches, validate_id};
use crate::protocol::{ErrorCode, LinkId, Role, RoomId, StreamId, UserId, VideoInfo};

/// Reply of `GET /rooms`.
#[derive(Debug, Serialize)]
pub struct RoomList {
    /// Every room, sorted by id.
    pub rooms: Vec<RoomListEntry>,
}

/// One room of [`RoomList`].
#[derive(Debug, Serialize)]
pub struct RoomListEntry {
    /// The room id.
    pub id: RoomId,
    /// How many users are in it.
    pub users: usize,
    /// How many streams are published in it.
    pub streams: usize,
}

/// Reply of `GET /rooms/{id}`.
#[derive(Debug, Serialize)]
pub struct RoomView {
    /// The room id.
    pub id: RoomId,
    /// Members, sorted by id.
    pub users: Vec<UserView>,
    /// Streams, sorted by id.
    pub streams: Vec<StreamView>,
    /// Publish links, then subscription legs (by link id).
    pub links: Vec<LinkView>,
    /// A room of another node mirrored here for local players
    /// (`cluster::relay`): its owner and the streams relayed, one link each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<crate::server::cluster::relay::RelayView>,
}

/// One member.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// User id.
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Role, as on the wire (0 joiner, 2 player).
    pub role: Role,
}

/// One stream.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamView {
    /// Stream id.
    pub id: StreamId,
    /// Who publishes it.
    pub publisher: UserId,
    /// It has an audio track.
    pub audio: bool,
    /// Its video track, if any (as in `stream-added`).
    pub video: Option<VideoInfo>,
    /// The publisher muted its audio.
    pub audio_muted: bool,
    /// The publisher muted its video.
    pub video_muted: bool,
    /// Relayed from another room (cross-room co-hosting): its publish link
    /// lives in the publisher's own room.
    pub relayed: bool,
}

/// Which way a link carries a stream.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LinkKind {
    /// Publisher → server.
    Publish,
    /// Server → subscriber (a leg of the egress hub).
    Subscription,
}

/// One link with its counters since it was created.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkView {
    /// Publish or subscription.
    pub kind: LinkKind,
    /// The link id (as in `publish`/`subscribed` replies).
    pub link_id: LinkId,
    /// The stream it carries; `None` for a top-N audio leg.
    pub stream_id: Option<StreamId>,
    /// The publisher (publish) or subscriber (subscription) in this room;
    /// `None` for a subscriber outside it (a WHEP player, another room).
    pub user_id: Option<UserId>,
    /// `connecting`, `connected` or `failed` (subscriptions); publish
    /// links report `connected` while their peer connection exists.
    pub state: &'static str,
    /// RTP packets received from the publisher / forwarded to the subscriber.
    pub packets: u64,
    /// Their bytes (RTP headers included, before SRTP).
    pub bytes: u64,
    /// NACKs the server sent the publisher / received from the subscriber.
    pub nacks: u64,
    /// PLIs the SFU sent the publisher / PLIs and FIRs received from the
    /// subscriber.
    pub plis: u64,
    /// Packets resent for NACKs (subscriptions only; 0 for publish links).
    pub retransmitted: u64,
    /// Of `retransmitted`, those sent as RTX packets (RFC 4588: the
    /// subscriber's answer kept RTX; subscriptions only).
    pub retransmitted_rtx: u64,
    /// Of `retransmitted`, the extra copies of packets the subscriber NACKed
    /// again (the first resend or NACK was lost: sent on both paths;
    /// subscriptions only).
    pub retransmitted_again: u64,
    /// Whether resends go as RTX packets: to this subscriber (its answer
    /// kept RTX), or from this publisher (the server's answer kept RTX: a
    /// native publisher, or a browser publishing one layer).
    pub rtx: bool,
    /// RTX packets from the publisher that repaired a lost packet (publish
    /// links only).
    pub rtx_repaired: u64,
    /// RTX packets from the publisher that repaired nothing and were dropped:
    /// its probe padding (recent packets sent again while it probes the
    /// uplink), duplicates (publish links only).
    pub rtx_unrequested: u64,
    /// Transport-wide (TWCC) feedback packets the subscriber sent that fed
    /// its downlink estimate (subscriptions only).
    pub twcc_feedback: u64,
    /// TWCC feedback packets ignored as malformed (subscriptions only).
    pub twcc_malformed: u64,
}

/// The routes; `state` holds the token and the rooms.
pub(crate) fn router(server: Server) -> Router {
    Router::new()
        .route("/rooms", get(list))
        .route("/rooms/{id}", get(one))
        .with_state(server)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        code: ErrorCode::InvalidParameter,
        message: message.into(),
    };
    (status, Json(body)).into_response()
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether the request carries the `/signature` token (or none is set).
fn token_ok(server: &Server, headers: &HeaderMap) -> bool {
    let expected = server.shared.config.signature_token.as_deref();
    token_matches(expected, headers)
}

/// The 401 reply.
fn unauthorized() -> Response {
    tracing::warn!("rooms request with missing or wrong X-AUTH-TOKEN");
    no_store(error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong X-AUTH-TOKEN header",
    ))
}

async fn list(State(server): State<Server>, headers: HeaderMap) -> Response {
    if !token_ok(&server, &headers) {
        return unauthorized();
    }
    let rooms = server
        .shared
        .rooms
        .summaries()
        .into_iter()
        .map(|r| RoomListEntry {
            id: r.id,
            users: r.users,
            streams: r.streams,
        })
        .collect();
    no_store(Json(RoomList { rooms }).into_response())
}

async fn one(State(server): State<Server>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !token_ok(&server, &headers) {
        return unauthorized();
    }
    if !validate_id(&id) {
        return no_store(error(
            StatusCode::BAD_REQUEST,
            "the room id must match [A-Za-z0-9_-]{1,64}",
        ));
    }
    let room_id = RoomId(id);
    let Some(room) = server.shared.rooms.inspect(&room_id) else {
        return no_store(error(
            StatusCode::NOT_FOUND,
            format!("no room {room_id} on this server"),
        ));
    };
    let legs = server.shared.sfu.legs_snapshot().await;
    let relay = server
        .shared
        .cluster
        .as_ref()
        .and_then(|c| c.relays.view(&room_id));
    let mut view = view(room_id, room, legs).await;
    view.relay = relay;
    no_store(Json(view).into_response())
}

/// Builds the reply: the room's copy plus its links' counters.
async fn view(id: RoomId, room: RoomInspection, legs: Vec<LegSnapshot>) -> RoomView {
    let mut links = Vec::new();
    for stream in room.streams.iter().filter(|s| !s.relayed) {
        let Some((link_id, counters)) = stream.media.ingress_counters().await else {
            continue; // its link is gone: the stream is being removed
        };
        let inbound = counters.inbound.iter();
        let ingress_rtx = stream.media.ingress_rtx();
        links.push(LinkView {
            kind: LinkKind::Publish,
            link_id,
            stream_id: Some(stream.info.stream_id),
            user_id: Some(stream.info.user_id.clone()),
            state: "connected",
            packets: inbound.clone().map(|c| c.packets).sum(),
            bytes: inbound.clone().map(|c| c.bytes).sum(),
            nacks: inbound.map(|c| c.nack_count).sum(),
            plis: stream.media.plis_sent(),
            retransmitted: 0,
            retransmitted_rtx: 0,
            retransmitted_again: 0,
            rtx: ingress_rtx.0,
            rtx_repaired: ingress_rtx.1.repaired,
            rtx_unrequested: ingress_rtx.1.unrequested,
            twcc_feedback: 0,
            twcc_malformed: 0,
        });
    }
    let mut subscriptions: Vec<LinkView> = legs
        .into_iter()
        .filter_map(|leg| {
            let stream = leg.media.and_then(|media| {
                room.streams
                    .iter()
                    .find(|s| s.media.id() == media)
                    .map(|s| s.info.stream_id)
            });
            let user = room
                .users
                .iter()
                .find(|u| u.inbox.same_session(&leg.inbox))
                .map(|u| u.info.user_id.clone());
            // A leg belongs to this room if it carries one of its streams or
            // a member of it receives it (a top-N leg).
            if stream.is_none() && user.is_none() {
                return None;
            }
            Some(LinkView {
                kind: LinkKind::Subscription,
                link_id: leg.link_id,
                stream_id: stream,
                user_id: user,
                state: match leg.phase {
                    LegPhase::Connecting => "connecting",
                    LegPhase::Connected => "connected",
                    LegPhase::Failed => "failed",
                },
                packets: leg.counters.packets,
                bytes: leg.counters.bytes,
                nacks: leg.counters.nacks,
                plis: leg.counters.plis,
                retransmitted: leg.counters.retransmitted,
                retransmitted_rtx: leg.counters.retransmitted_rtx,
                retransmitted_again: leg.counters.retransmitted_again,
                rtx: leg.rtx,
                rtx_repaired: 0,
                rtx_unrequested: 0,
                twcc_feedback: leg.counters.twcc_feedback,
                twcc_malformed: leg.counters.twcc_malformed,
            })
        })
        .collect();
    links.sort_by_key(|l| l.link_id);
    subscriptions.sort_by_key(|l| l.link_id);
    links.extend(subscriptions);
    RoomView {
        relay: None,
        id,
        users: room
            .users
            .into_iter()
            .map(|u| UserView {
                id: u.info.user_id,
                name: u.info.user_name,
                role: u.info.role,
            })
            .collect(),
        streams: room
            .streams
            .iter()
            .map(|s| StreamView {
                id: s.info.stream_id,
                publisher: s.info.user_id.clone(),
                audio: s.info.audio,
                video: s.info.video,
                audio_muted: s.info.audio_muted,
                video_muted: s.info.video_muted,
                relayed: s.relayed,
            })
            .collect(),
        links,
    }
}
