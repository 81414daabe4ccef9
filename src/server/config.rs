//! Server configuration: what `huddle serve` flags and `huddle.toml` turn into.

use std::net::IpAddr;
use std::time::Duration;

use crate::auth::AppRegistry;

/// Limits that protect the server from one client or one room.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Rooms that may exist at once; a join that would create one more is refused
    /// with 90100205 (`NoSfuResource`).
    pub max_rooms: usize,
    /// Users per room; one more is refused with 90100217 (`OverloadRoomCapacity`).
    pub max_users_per_room: usize,
    /// Requests a connection may send per second on average (token bucket refill).
    pub requests_per_second: u32,
    /// Requests a connection may send in a burst (token bucket size). Past the
    /// bucket a request is refused with 90100108 (`RequestFrequently`) and not run.
    pub request_burst: u32,
    /// A connection that sends nothing (not even `ping`) for this long is closed.
    pub idle_timeout: Duration,
    /// A write to a client that does not complete in this long (the client
    /// stopped reading) ends the session, as a failed write does. Also bounds
    /// the goodbye (`client-banned`, close frame) a closing session sends.
    pub send_timeout: Duration,
    /// Streams one user may publish at once.
    pub max_streams_per_user: usize,
    /// A connection must send a complete HTTP request head (for a WebSocket,
    /// the upgrade request) within this long after it opens, and again after
    /// each HTTP response while it stays open; otherwise it is closed
    /// (slowloris: connections that never finish the upgrade).
    pub header_timeout: Duration,
    /// TCP connections open at once, WebSocket sessions included. Past it a new
    /// connection is closed as soon as it is accepted (`connectionsRefused`).
    pub max_connections: usize,
    /// TCP connections open at once from one IP address. Past it a new
    /// connection from that address is closed as soon as it is accepted. Behind
    /// a reverse proxy every client has the proxy's address: raise it to
    /// `max_connections` there.
    pub max_connections_per_ip: usize,
    /// How long a joined session whose connection dropped (a socket error, or
    /// end of stream without a close frame) is kept for its client to
    /// `resume`: the others see no `peer-leave` meanwhile. Past it the session
    /// leaves with reason 7. Zero: a dropped session leaves at once.
    pub resume_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rooms: 1_000,
            max_users_per_room: 500,
            requests_per_second: 20,
            request_burst: 60,
            idle_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(10),
            max_streams_per_user: 4,
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_connections_per_ip: 200,
            resume_window: Duration::from_secs(30),
        }
    }
}

/// Everything a server needs besides its listening socket.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Apps whose signatures are accepted.
    pub apps: AppRegistry,
    /// Token guarding `GET /signature`; `None` leaves it open (dev only).
    pub signature_token: Option<String>,
    /// Address the SFU binds its UDP sockets to (one per publisher's peer
    /// connection, plus the egress hub's one shared socket). Loopback by
    /// default: a wildcard address is not used because the ICE agent then skips
    /// loopback candidates.
    pub rtc_ip: IpAddr,
    /// Protective limits.
    pub limits: Limits,
    /// How long [`Server::run`](super::Server::run) waits, once its shutdown
    /// future completed, for every session to say goodbye (`client-banned`,
    /// close frame) before it returns anyway.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// A config accepting the given apps, with default limits, RTC on loopback.
    pub fn new(apps: AppRegistry) -> Self {
        Self {
            apps,
            signature_token: None,
            rtc_ip: IpAddr::from([127, 0, 0, 1]),
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}
