//! TURN for the client SDK (seed 001 `setTurnServer`): which STUN/TURN
//! servers the client's links gather from and whether they must relay.
//!
//! The application sets a [`TurnConfig`] with [`super::Client::set_turn_server`]
//! before joining. At join the session settles the [`IcePolicy`] its links
//! use for the whole session: the application's servers, or, when it gave
//! none, those the server hands out in `joined` (`iceServers`). Relay-only is
//! the application's choice alone: a server cannot force it.

use super::{ClientError, ClientResult};
use crate::link::LinkError;
use crate::link::ice::IcePolicy;
use crate::protocol::IceServer;

/// STUN/TURN servers and the relay policy (seed 001 `TurnServerConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnConfig {
    /// Servers to gather candidates from; empty: use the ones the room server
    /// hands out, if any.
    pub servers: Vec<IceServer>,
    /// Send and receive media only through a TURN relay (no host or
    /// server-reflexive candidates). A link that gets no relay fails at once
    /// with [`ClientError::NoRelay`].
    pub relay_only: bool,
}

impl TurnConfig {
    /// Checks every server (URL syntax, credentials for `turn:`), and that a
    /// relay-only configuration names a TURN server or leaves it to the room
    /// server. 90000005 (invalid parameter) naming the problem.
    pub fn check(&self) -> ClientResult<()> {
        for server in &self.servers {
            server.check().map_err(ClientError::InvalidParameter)?;
        }
        if self.relay_only && !self.servers.is_empty() && !self.servers.iter().any(|s| s.is_turn())
        {
            return Err(ClientError::InvalidParameter(
                "relay-only needs a turn: server".into(),
            ));
        }
        Ok(())
    }

    /// The policy links use, given what the room server handed out.
    pub(crate) fn policy(&self, from_server: Vec<IceServer>) -> IcePolicy {
        let servers = if self.servers.is_empty() {
            // A server's list that does not parse is dropped, not fatal: the
            // links then go without it, as before the server had one.
            from_server
                .into_iter()
                .filter(|s| match s.check() {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("ignoring an ICE server the room server handed out: {e}");
                        false
                    }
                })
                .collect()
        } else {
            self.servers.clone()
        };
        IcePolicy {
            servers,
            relay_only: self.relay_only,
            advertised_ip: None,
            // The client's addresses may change under it (ICE restarts).
            on_restart: crate::link::ice::RestartSockets::Rebind,
        }
    }
}

impl From<LinkError> for ClientError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::NoRelayCandidate(why) => ClientError::NoRelay(why),
            other => ClientError::Rtc(other.to_string()),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn turn(url: &str) -> IceServer {
        IceServer {
            urls: vec![url.into()],
            username: "u".into(),
            credential: "p".into(),
        }
    }

    #[test]
    fn own_servers_win_over_the_room_servers() {
        let mine = TurnConfig {
            servers: vec![turn("turn:10.0.0.1:3478")],
            relay_only: true,
        };
        let policy = mine.policy(vec![turn("turn:10.0.0.2:3478")]);
        assert_eq!(policy.servers, mine.servers);
        assert!(policy.relay_only);
        let none = TurnConfig::default().policy(vec![
            turn("turn:10.0.0.2:3478"),
            turn("turns:10.0.0.3:5349"),
        ]);
        assert_eq!(
            none.servers,
            vec![turn("turn:10.0.0.2:3478")],
            "bad one dropped"
        );
        assert!(!none.relay_only);
    }

    #[test]
    fn bad_configurations_are_invalid_parameters() {
        let bad = TurnConfig {
            servers: vec![IceServer {
                urls: vec!["turn:10.0.0.1".into()],
                ..IceServer::default()
            }],
            relay_only: false,
        };
        let e = bad.check().expect_err("no credentials");
        assert_eq!(e.code(), crate::protocol::ErrorCode::InvalidParameter);
        let stun_only = TurnConfig {
            servers: vec![IceServer {
                urls: vec!["stun:10.0.0.1".into()],
                ..IceServer::default()
            }],
            relay_only: true,
        };
        assert!(stun_only.check().is_err());
        assert!(TurnConfig::default().check().is_ok());
    }
}
