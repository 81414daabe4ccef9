//! What WHIP (`whip`, RFC 9725) and WHEP (`whep`, the WHEP draft) share: who
//! the `Authorization: Bearer` names, the numbered errors as HTTP replies,
//! and the **resource**: a session without a WebSocket, made by one HTTP
//! `POST` and ended by `DELETE` on its `Location`.
//!
//! A resource is a room member like any WebSocket session (its own
//! [`SessionId`] and [`SessionInbox`], counted in `sessions` and in the
//! room's limits) that owns exactly one link: the ingress link of the
//! stream it publishes (WHIP) or the egress leg of the stream it plays
//! (WHEP). Its task ([`run`]) ends on `DELETE`, when its link fails, when
//! the room kicks it (the same user joined again), when the stream it plays
//! is gone, or at shutdown; then it leaves the room (so the others see
//! `stream-removed` and `peer-leave`), closes its link and forgets its
//! resource id. Nothing of it outlives the task.
//!
//! Invariant: a resource id is in [`Resources`] exactly while its task runs.
//! Ids are 128 random bits; `DELETE` and `PATCH` must also carry the bearer
//! token the resource was made with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use super::inbox::{
    LinkEvent, LinkState, SessionEvent, SessionId, SessionInbox, SessionInboxReceiver,
};
use super::metrics::GaugeGuard;
use super::room::RoomError;
use super::sdp_checks::{OfferError, check_candidate};
use super::sfu::{EgressLink, IngressLink, SfuError};
use super::{Server, Shared};
use crate::auth::{self, AuthError, ErrorBody};
use crate::protocol::{
    AppId, ErrorCode, IceCandidate, LeaveReason, MAX_MESSAGE_BYTES, Role, RoomId, StreamId, UserId,
    UserInfo,
};

/// The media type of a WHIP/WHEP offer and answer (RFC 9725 §4.2).
pub const SDP_CONTENT_TYPE: &str = "application/sdp";
/// The media type of a trickle `PATCH` body (RFC 8840 §9).
pub const SDPFRAG_CONTENT_TYPE: &str = "application/trickle-ice-sdpfrag";

/// Commands queued from HTTP handlers to one resource's task. A handler
/// waits when it is full (a client sending PATCHes faster than its link
/// takes candidates).
const RESOURCE_COMMAND_CAPACITY: usize = 8;

/// A refused request: an HTTP status and the seed's numbered error, sent as
/// `{"code": N, "message": "…"}` (the body of `GET /signature`'s errors).
#[derive(Debug)]
pub struct HttpError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The seed's code.
    pub code: ErrorCode,
    /// What was wrong.
    pub message: String,
}

impl HttpError {
    /// An error with this status and code.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400, 90000005.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidParameter,
            message,
        )
    }

    /// A room refusal: full rooms and servers are 503 (retry later), a
    /// missing stream 404.
    pub fn room(e: &RoomError) -> Self {
        let status = match e {
            RoomError::RoomFull { .. } | RoomError::TooManyRooms(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RoomError::NoSuchStream(_) => StatusCode::NOT_FOUND,
            RoomError::NotOwner(_) | RoomError::NotJoined | RoomError::AlreadyInRoom { .. } => {
                StatusCode::CONFLICT
            }
        };
        Self::new(status, e.code(), e.to_string())
    }

    /// An SFU refusal: the client's SDP is 400, the server's trouble 500.
    pub fn sfu(e: &SfuError) -> Self {
        let status = match e {
            SfuError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.code(), e.to_string())
    }

    /// An offer that can never carry media (90100214 for a publish, as on
    /// the WebSocket; 90000005 for a play offer).
    pub fn offer(e: &OfferError, code: ErrorCode) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, e.to_string())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Who a `POST` acts as, once its bearer was accepted.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The app that signed (or the only configured app).
    pub app_id: AppId,
    /// The room member the resource is.
    pub user: UserInfo,
    /// The bearer token as presented; `DELETE`/`PATCH` must present it too.
    pub bearer: String,
}

/// The query of a `POST /whip/…` or `/whep/…`: the join fields a bearer
/// cannot carry. Names as in `GET /signature`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct JoinQuery {
    /// The app (optional when the server has exactly one).
    pub appid: Option<String>,
    /// The user id the signature was made for.
    pub userid: Option<String>,
    /// The signature's expiry, Unix seconds.
    pub ctime: Option<u64>,
    /// Display name (default: the user id).
    pub username: Option<String>,
    /// The seed's role number: 0 joiner, 2 player.
    pub role: Option<u8>,
    /// WHEP only: `aes-gcm` (default) or `aes-cm` (see `whep`).
    pub srtp: Option<String>,
    /// WHEP only: the simulcast layer played, a `resolutionId` of the
    /// stream or `auto` (default: the largest; see `whep`).
    pub layer: Option<String>,
}

/// The bearer of `Authorization: Bearer <token>` (RFC 6750 §2.1).
pub fn bearer(headers: &HeaderMap) -> Result<String, HttpError> {
    let unauthorized = |message: &str| {
        HttpError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::SignatureInvalid,
            message,
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing Authorization: Bearer <signature or token>"))?
        .to_str()
        .map_err(|_| unauthorized("Authorization is not ASCII"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| unauthorized("Authorization must be Bearer <signature or token>"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(unauthorized(
            "Authorization must be Bearer <signature or token>",
        ));
    }
    Ok(token.to_owned())
}

/// Checks the bearer of a `POST` for `room_id` and returns who it acts as.
///
/// The bearer is either the server's `signature_token` (the token of
/// `GET /signature`, whose holder can get any signature anyway: then
/// `userid` defaults to `default_user` and no `ctime` is needed), or a join
/// signature for `appid`/`room_id`/`userid`/`ctime` from the query,
/// verified exactly as `join` verifies it (same function, same codes).
pub fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    room_id: &RoomId,
    query: &JoinQuery,
    default_role: Role,
    default_user: impl FnOnce() -> String,
) -> Result<Identity, HttpError> {
    let bearer = bearer(headers)?;
    if !auth::validate_id(room_id.as_str()) {
        return Err(HttpError::bad_request(
            "the room id must match [A-Za-z0-9_-]{1,64}",
        ));
    }
    let apps = &shared.config.apps;
    let app_id = match &query.appid {
        Some(app) => app.clone(),
        None if apps.len() == 1 => apps
            .iter()
            .next()
            .map(|(id, _)| id.to_owned())
            .unwrap_or_default(),
        None => {
            return Err(HttpError::bad_request(
                "missing query parameter appid (the server has several apps)",
            ));
        }
    };
    let role = match query.role {
        None => default_role,
        Some(code) => Role::from_code(code).ok_or_else(|| {
            HttpError::bad_request(format!("role {code} is not 0 (joiner) or 2 (player)"))
        })?,
    };
    let is_token = shared
        .config
        .signature_token
        .as_deref()
        .is_some_and(|token| bool::from(token.as_bytes().ct_eq(bearer.as_bytes())));
    let user_id = match (&query.userid, is_token) {
        (Some(user), _) => user.clone(),
        (None, true) => default_user(),
        (None, false) => return Err(not_a_signature("userid")),
    };
    for (name, id) in [("appid", &app_id), ("userid", &user_id)] {
        if !auth::validate_id(id) {
            return Err(HttpError::bad_request(format!(
                "{name} must match [A-Za-z0-9_-]{{1,64}}"
            )));
        }
    }
    if is_token {
        if apps.get(&app_id).is_none() {
            let e = AuthError::UnknownApp { app_id };
            return Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                e.code(),
                e.to_string(),
            ));
        }
    } else {
        let ctime = query.ctime.ok_or_else(|| not_a_signature("ctime"))?;
        auth::verify(
            apps,
            &app_id,
            room_id.as_str(),
            &user_id,
            ctime,
            &bearer,
            auth::now_unix(),
        )
        .map_err(|e| HttpError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()))?;
    }
    let user_name = query.username.clone().unwrap_or_else(|| user_id.clone());
    if !auth::validate_user_name(&user_name) {
        return Err(HttpError::bad_request("username must be at most 256 bytes"));
    }
    Ok(Identity {
        app_id: AppId::from(app_id),
        user: UserInfo {
            user_id: UserId::from(user_id),
            user_name,
            role,
        },
        bearer,
    })
}

/// A bearer that is not the server's token, without the query a signature
/// needs: it cannot be checked, so it is refused like a wrong one.
fn not_a_signature(missing: &str) -> HttpError {
    HttpError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::SignatureInvalid,
        format!(
            "the bearer is not the server's token, and a join signature needs the query \
             parameter {missing} (with appid, userid and ctime as signed)"
        ),
    )
}

/// The SDP body of a `POST`: `Content-Type: application/sdp` (415
/// otherwise), UTF-8, at most [`MAX_MESSAGE_BYTES`] (413).
pub fn sdp_body(headers: &HeaderMap, body: &[u8]) -> Result<String, HttpError> {
    content_type_is(headers, SDP_CONTENT_TYPE)?;
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidParameter,
            format!("the SDP is larger than {MAX_MESSAGE_BYTES} bytes"),
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|_| HttpError::bad_request("the SDP is not UTF-8"))
}

fn content_type_is(headers: &HeaderMap, wanted: &str) -> Result<(), HttpError> {
    let found = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = found.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(wanted) {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InvalidParameter,
            format!("Content-Type must be {wanted}, not {found:?}"),
        ))
    }
}

/// A request body as read, or the reason it could not be (over axum's 2 MiB
/// limit, a broken stream): 413 with the seed's 90000005.
pub fn read_body(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, HttpError> {
    body.map_err(|e| HttpError::new(e.status(), ErrorCode::InvalidParameter, e.body_text()))
}

/// `201 Created` with the answer and the resource's `Location`.
pub fn created(location: &str, answer: String) -> Response {
    let mut response = (StatusCode::CREATED, answer).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SDP_CONTENT_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// A new resource id: 128 random bits, URL-safe.
pub fn new_resource_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The link a resource owns.
pub enum ResourceLink {
    /// WHIP: the stream's ingress link.
    Publish(IngressLink),
    /// WHEP: the egress leg playing the stream.
    Play(EgressLink),
}

impl ResourceLink {
    async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), SfuError> {
        match self {
            ResourceLink::Publish(link) => link.add_candidate(candidate).await,
            ResourceLink::Play(link) => link.add_candidate(candidate).await,
        }
    }

    async fn close(self) {
        match self {
            ResourceLink::Publish(link) => link.close().await,
            ResourceLink::Play(link) => link.close().await,
        }
    }
}

/// What an HTTP handler asks of a resource's task.
enum Command {
    /// `DELETE`: end now; replies once the room has been left.
    Delete(oneshot::Sender<()>),
    /// `PATCH`: trickled candidates for the link.
    Trickle(Vec<IceCandidate>, oneshot::Sender<Result<(), SfuError>>),
}

/// What the registry knows of a live resource.
struct Entry {
    /// `whip` or `whep`, the first path segment.
    kind: &'static str,
    room_id: RoomId,
    /// The stream of a WHEP resource (its URL names it).
    played: Option<StreamId>,
    bearer: String,
    /// The client's ICE ufrag (from its offer): a `PATCH` with another is an
    /// ICE restart.
    remote_ufrag: Option<String>,
    commands: mpsc::Sender<Command>,
}

/// The live resources of a server, by id.
#[derive(Default)]
pub struct Resources {
    inner: Mutex<HashMap<String, Entry>>,
}

impl Resources {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Single inserts and removes: consistent after a panic elsewhere.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Everything a resource's task owns, handed over by `whip`/`whep` once the
/// link is up to be negotiated and the room has taken the member.
pub struct NewResource {
    /// `whip` or `whep`.
    pub kind: &'static str,
    /// Its id (the last segment of its `Location`).
    pub id: String,
    /// Its session id in the room.
    pub session: SessionId,
    /// The room and the member it is.
    pub room_id: RoomId,
    /// Who it acts as.
    pub identity: Identity,
    /// The stream it plays (WHEP).
    pub played: Option<StreamId>,
    /// The client's ICE ufrag, from its offer.
    pub remote_ufrag: Option<String>,
    /// Its link.
    pub link: ResourceLink,
    /// Its inbox's receiving ends.
    pub inbox: SessionInboxReceiver,
}

/// Makes a resource's session a member of `room_id`, under the same room
/// limits as a WebSocket `join` (the caller closes its link on an error).
pub fn join_room(
    shared: &Shared,
    room_id: &RoomId,
    session: SessionId,
    identity: &Identity,
    inbox: SessionInbox,
) -> Result<(), HttpError> {
    let limits = &shared.config.limits;
    shared
        .rooms
        .join(
            room_id,
            session,
            identity.user.clone(),
            inbox,
            limits.max_rooms,
            limits.max_users_per_room,
        )
        .map(|_| ())
        .map_err(|e| HttpError::room(&e))
}

/// Registers a resource and spawns its task.
pub fn start(shared: &Arc<Shared>, resource: NewResource) {
    let (commands, command_rx) = mpsc::channel(RESOURCE_COMMAND_CAPACITY);
    shared.media_resources.lock().insert(
        resource.id.clone(),
        Entry {
            kind: resource.kind,
            room_id: resource.room_id.clone(),
            played: resource.played,
            bearer: resource.identity.bearer.clone(),
            remote_ufrag: resource.remote_ufrag.clone(),
            commands,
        },
    );
    // Counted before the `201` goes out, not when the task first runs: a
    // client that reads the metrics right after its POST sees its session.
    let alive = shared.metrics.sessions.enter();
    tokio::spawn(run(Arc::clone(shared), resource, command_rx, alive));
}

/// The client's `a=ice-ufrag` in an offer (session or first media level).
pub fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(|u| u.trim().to_owned())
}

/// Why a resource's task ended.
#[derive(Debug)]
enum End {
    Deleted,
    LinkFailed,
    StreamGone,
    Kicked(LeaveReason),
    Shutdown,
}

/// A resource's task: see the module docs.
async fn run(
    shared: Arc<Shared>,
    resource: NewResource,
    mut commands: mpsc::Receiver<Command>,
    _alive: GaugeGuard,
) {
    let NewResource {
        kind,
        id,
        session,
        room_id,
        identity,
        played,
        link,
        inbox,
        ..
    } = resource;
    let SessionInboxReceiver {
        events: mut inbox,
        mut kick,
    } = inbox;
    let mut shutdown = shared.shutdown.subscribe();
    let down = async move {
        // Err: the server is gone, which is a shutdown too.
        shutdown.wait_for(|down| *down).await.map(|_| ()).ok();
    };
    tokio::pin!(down);
    let mut deleted: Option<oneshot::Sender<()>> = None;
    // The kick's sender goes when the room forgets the member; then only
    // the other branches can end the task.
    let mut kick_open = true;
    let end = loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Delete(reply)) => {
                    deleted = Some(reply);
                    break End::Deleted;
                }
                Some(Command::Trickle(candidates, reply)) => {
                    let mut result = Ok(());
                    for candidate in candidates {
                        if let Err(e) = link.add_candidate(candidate).await {
                            result = Err(e);
                            break;
                        }
                    }
                    reply.send(result).ok(); // the client gave up: nothing to tell
                }
                // Unreachable while the registry holds the sender.
                None => break End::Deleted,
            },
            event = inbox.recv() => match event {
                Some(SessionEvent::StreamGone(stream_id)) if Some(stream_id) == played => {
                    break End::StreamGone;
                }
                Some(SessionEvent::Link(LinkEvent { state: LinkState::Failed, .. })) => {
                    break End::LinkFailed;
                }
                Some(SessionEvent::Link(LinkEvent { state: LinkState::Connected, link_id })) => {
                    tracing::debug!(resource = %id, link = link_id.0, "{kind} link connected");
                }
                // Room events and late local candidates (the answer had
                // them all): nobody to tell.
                Some(_) => {}
                None => break End::Deleted,
            },
            changed = kick.changed(), if kick_open => {
                if changed.is_err() {
                    kick_open = false;
                    continue;
                }
                let reason = *kick.borrow();
                if let Some(reason) = reason {
                    break End::Kicked(reason);
                }
            }
            () = &mut down => break End::Shutdown,
        }
    };
    tracing::info!(
        resource = %id,
        app = %identity.app_id,
        room = %room_id,
        user = %identity.user.user_id,
        "{kind} resource ended: {end:?}"
    );
    shared.media_resources.lock().remove(&id);
    let reason = match end {
        End::Deleted | End::StreamGone => LeaveReason::UserExit,
        End::LinkFailed => LeaveReason::ReconnectTimeout,
        End::Kicked(reason) => reason,
        End::Shutdown => LeaveReason::ServiceUnavailable,
    };
    shared
        .rooms
        .leave(&room_id, &identity.user.user_id, session, reason);
    link.close().await;
    if let Some(reply) = deleted {
        reply.send(()).ok(); // the client gave up waiting: it is gone anyway
    }
}

/// The resource `id` under `/{kind}/{room}[/{stream}]`, if the bearer is its
/// own. 404 for an unknown id or a path that does not name it, 401 for
/// another bearer.
fn find(
    shared: &Shared,
    headers: &HeaderMap,
    kind: &str,
    room: &str,
    stream: Option<&str>,
    id: &str,
) -> Result<(mpsc::Sender<Command>, Option<String>), HttpError> {
    let presented = bearer(headers)?;
    let resources = shared.media_resources.lock();
    let not_found = || {
        HttpError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidParameter,
            format!("no {kind} resource {id} in room {room}"),
        )
    };
    let entry = resources.get(id).ok_or_else(not_found)?;
    let stream_matches = match (entry.played, stream) {
        (Some(played), Some(stream)) => stream.parse::<u64>().ok() == Some(played.0),
        (None, None) => true,
        _ => false,
    };
    if entry.kind != kind || entry.room_id.as_str() != room || !stream_matches {
        return Err(not_found());
    }
    if !bool::from(entry.bearer.as_bytes().ct_eq(presented.as_bytes())) {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::SignatureInvalid,
            "the bearer is not the one this resource was created with",
        ));
    }
    Ok((entry.commands.clone(), entry.remote_ufrag.clone()))
}

/// `DELETE` on a resource: it leaves its room and closes its link; 200 once
/// done.
pub async fn delete(
    shared: &Shared,
    headers: &HeaderMap,
    kind: &str,
    room: &str,
    stream: Option<&str>,
    id: &str,
) -> Response {
    let commands = match find(shared, headers, kind, room, stream, id) {
        Ok((commands, _)) => commands,
        Err(e) => return e.into_response(),
    };
    let (tx, rx) = oneshot::channel();
    if commands.send(Command::Delete(tx)).await.is_ok() {
        // Err: the task ended on its own meanwhile; it is gone either way.
        rx.await.ok();
    }
    StatusCode::OK.into_response()
}

/// `PATCH` on a resource (RFC 9725 §4.3.1): trickled candidates in an
/// `application/trickle-ice-sdpfrag` body; 204 once the link has them.
/// An ICE restart (`If-Match: *` or another ufrag) is refused with 405:
/// the server supports trickle only, as §4.3.1 allows.
pub async fn patch(
    shared: &Shared,
    headers: &HeaderMap,
    kind: &str,
    room: &str,
    stream: Option<&str>,
    id: &str,
    body: &[u8],
) -> Response {
    match patch_inner(shared, headers, kind, room, stream, id, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn patch_inner(
    shared: &Shared,
    headers: &HeaderMap,
    kind: &str,
    room: &str,
    stream: Option<&str>,
    id: &str,
    body: &[u8],
) -> Result<(), HttpError> {
    let (commands, remote_ufrag) = find(shared, headers, kind, room, stream, id)?;
    content_type_is(headers, SDPFRAG_CONTENT_TYPE)?;
    let text =
        std::str::from_utf8(body).map_err(|_| HttpError::bad_request("the body is not UTF-8"))?;
    let frag = parse_sdpfrag(text)?;
    let restart = headers
        .get(header::IF_MATCH)
        .is_some_and(|v| v.as_bytes() == b"*");
    if restart {
        return Err(ice_restart_refused());
    }
    if let (Some(sent), Some(known)) = (&frag.ufrag, &remote_ufrag)
        && sent != known
    {
        return Err(ice_restart_refused());
    }
    for candidate in &frag.candidates {
        check_candidate(&candidate.candidate).map_err(|e| HttpError::bad_request(e.to_string()))?;
    }
    let (tx, rx) = oneshot::channel();
    let gone = || {
        HttpError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidParameter,
            format!("{kind} resource {id} has ended"),
        )
    };
    commands
        .send(Command::Trickle(frag.candidates, tx))
        .await
        .map_err(|_| gone())?;
    rx.await
        .map_err(|_| gone())?
        .map_err(|e| HttpError::sfu(&e))
}

fn ice_restart_refused() -> HttpError {
    HttpError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::InvalidOperation,
        "ICE restarts are not supported (trickle only): end the resource with DELETE and POST again",
    )
}

/// A trickle-ice-sdpfrag (RFC 8840 §9): its ufrag and candidates.
#[derive(Debug, PartialEq)]
struct SdpFrag {
    ufrag: Option<String>,
    candidates: Vec<IceCandidate>,
}

fn parse_sdpfrag(text: &str) -> Result<SdpFrag, HttpError> {
    let mut frag = SdpFrag {
        ufrag: None,
        candidates: Vec::new(),
    };
    let mut mid: Option<String> = None;
    let mut mline: Option<u16> = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(ufrag) = line.strip_prefix("a=ice-ufrag:") {
            frag.ufrag = Some(ufrag.trim().to_owned());
        } else if line.starts_with("m=") {
            mline = Some(mline.map_or(0, |i| i.saturating_add(1)));
            mid = None;
        } else if let Some(value) = line.strip_prefix("a=mid:") {
            mid = Some(value.trim().to_owned());
        } else if let Some(candidate) = line.strip_prefix("a=") {
            if candidate.starts_with("candidate:") {
                frag.candidates.push(IceCandidate {
                    candidate: candidate.to_owned(),
                    sdp_mid: mid.clone(),
                    sdp_mline_index: mline,
                });
            }
        } else {
            return Err(HttpError::bad_request(format!(
                "not an SDP fragment line: {:?}",
                line.chars().take(80).collect::<String>()
            )));
        }
    }
    Ok(frag)
}

/// `DELETE /whip/{room}/{id}`.
pub async fn delete_whip(
    State(server): State<Server>,
    Path((room, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    delete(&server.shared, &headers, "whip", &room, None, &id).await
}

/// `PATCH /whip/{room}/{id}`.
pub async fn patch_whip(
    State(server): State<Server>,
    Path((room, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    match read_body(body) {
        Ok(body) => patch(&server.shared, &headers, "whip", &room, None, &id, &body).await,
        Err(e) => e.into_response(),
    }
}

/// `DELETE /whep/{room}/{stream}/{id}`.
pub async fn delete_whep(
    State(server): State<Server>,
    Path((room, stream, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    delete(&server.shared, &headers, "whep", &room, Some(&stream), &id).await
}

/// `PATCH /whep/{room}/{stream}/{id}`.
pub async fn patch_whep(
    State(server): State<Server>,
    Path((room, stream, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    patch(
        &server.shared,
        &headers,
        "whep",
        &room,
        Some(&stream),
        &id,
        &body,
    )
    .await
}

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// CORS for the WHIP/WHEP routes, for the same configured origins as
/// `GET /signature` (`cors::layer`): a page on an allowed origin may `POST`
/// an offer with `Authorization` and `Content-Type`, read the `Location`
/// (exposed), and `PATCH`/`DELETE` it (with `If-Match`). `None` when no
/// origin is configured: then only same-origin pages and non-browser
/// clients call these routes.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
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
            .allow_methods([Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
            ])
            .expose_headers([header::LOCATION])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

/// The WHIP and WHEP routes.
pub fn router(server: Server) -> axum::Router {
    use axum::routing::{patch as patch_route, post};
    let cors = cors(&server.shared.config.cors_origins);
    let router = axum::Router::new()
        .route("/whip/{room}", post(super::whip::post))
        .route(
            "/whip/{room}/{id}",
            patch_route(patch_whip).delete(delete_whip),
        )
        .route("/whep/{room}/{stream}", post(super::whep::post))
        .route(
            "/whep/{room}/{stream}/{id}",
            patch_route(patch_whep).delete(delete_whep),
        )
        .with_state(server);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdpfrag_candidates_keep_their_section() {
        let frag = parse_sdpfrag(
            "a=ice-ufrag:abcd\r\na=ice-pwd:secret\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
             a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n",
        )
        .expect("a fragment");
        assert_eq!(frag.ufrag.as_deref(), Some("abcd"));
        assert_eq!(
            frag.candidates,
            vec![IceCandidate {
                candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
            }]
        );
        assert!(parse_sdpfrag("hello").is_err());
    }

    #[test]
    fn bearer_needs_the_scheme() {
        let mut headers = HeaderMap::new();
        assert!(bearer(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(bearer(&headers).is_err());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&headers).ok().as_deref(), Some("abc"));
    }
}
