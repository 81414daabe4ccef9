//! Server configuration: what `huddle serve` flags and `huddle.toml` turn into.

use std::net::IpAddr;
use std::time::Duration;

use crate::auth::AppRegistry;
use crate::protocol::IceServer;

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
    /// Origins whose web pages may call `GET /signature` from a browser
    /// (CORS), each `scheme://host[:port]` or `*` (checked by
    /// [`super::cors::check_origin`]). Empty: none.
    pub cors_origins: Vec<String>,
    /// Address the SFU binds its UDP sockets to (one per publisher's peer
    /// connection, plus the egress hub's one shared socket). Loopback by
    /// default: a wildcard address is not used because the ICE agent then skips
    /// loopback candidates.
    pub rtc_ip: IpAddr,
    /// The address clients must send media to when it is not `rtc_ip`: a
    /// server behind a 1:1 NAT binds its private address and advertises the
    /// public one in its ICE candidates (same ports). `None`: `rtc_ip`.
    pub public_ip: Option<IpAddr>,
    /// STUN/TURN servers handed to clients in `joined` (`iceServers`); a
    /// client without its own uses them. The server itself never relays.
    pub ice_servers: Vec<IceServer>,
    /// Protective limits.
    pub limits: Limits,
    /// This server's name among several (the `node` label of every
    /// `/metrics` series): 1-64 characters of `A-Z a-z 0-9 _ - .`
    /// ([`valid_node_id`]). Defaults to the host name.
    pub node_id: String,
    /// Serve every route over TLS (`https://`, `wss://`) with this
    /// certificate; `None`: plain HTTP and `ws://`.
    pub tls: Option<super::tls::TlsConfig>,
    /// How long [`Server::run`](super::Server::run) waits, once its shutdown
    /// future completed, for every session to say goodbye (`client-banned`,
    /// close frame) before it returns anyway.
    pub shutdown_grace: Duration,
    /// How long before a session's signature expires (its `ctime`) the
    /// client is told (`signature-expired`, 90100030) so it can renew
    /// (`renew-signature`). A session whose `ctime` passes without a renewal
    /// is removed with leave reason 6.
    pub signature_expiry_notice: Duration,
    /// Where `start-recording` writes its files (`<dir>/<recordId>/…mp4`);
    /// `None` (the default): recording is off and refused with 90100001.
    pub record_dir: Option<std::path::PathBuf>,
    /// Run as one node of several coordinated through Redis
    /// (`super::cluster`); `None` (the default): a single node, no Redis.
    pub cluster: Option<super::cluster::ClusterConfig>,
}

impl ServerConfig {
    /// A config accepting the given apps, with default limits, RTC on loopback.
    pub fn new(apps: AppRegistry) -> Self {
        Self {
            apps,
            signature_token: None,
            cors_origins: Vec::new(),
            rtc_ip: IpAddr::from([127, 0, 0, 1]),
            public_ip: None,
            ice_servers: Vec::new(),
            limits: Limits::default(),
            node_id: default_node_id(),
            tls: None,
            shutdown_grace: Duration::from_secs(5),
            signature_expiry_notice: Duration::from_secs(60),
            record_dir: None,
            cluster: None,
        }
    }
}

/// Whether `id` may name a node: 1-64 characters of `A-Z a-z 0-9 _ - .`.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// The host name if it is a valid node id, else `huddle`.
pub fn default_node_id() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if valid_node_id(&name) {
        name
    } else {
        "huddle".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked_and_the_default_is_valid() {
        assert!(valid_node_id("node-1.eu_west"));
        for bad in ["", "a b", "n\"", &"x".repeat(65), "ü"] {
            assert!(!valid_node_id(bad), "{bad:?}");
        }
        assert!(valid_node_id(&default_node_id()));
    }
}
