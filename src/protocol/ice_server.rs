//! ICE servers (STUN/TURN) as the protocol carries them: what a server hands
//! to its clients in the `joined` reply and what the client SDK takes from the
//! application (seed 001 `setTurnServer`).
//!
//! The shape is the W3C `RTCIceServer`: one entry may list several URLs that
//! share one username and credential. Only the syntax is checked here
//! ([`IceServer::check`]); whether the server answers is found out when a link
//! gathers candidates.

use serde::{Deserialize, Serialize};

/// One STUN or TURN server, with the credentials its `turn:` URLs need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    /// `turn:host:port?transport=udp` or `stun:host:port` URLs (RFC 7065,
    /// RFC 7064). huddle's links relay over UDP only: `turns:` and
    /// `transport=tcp` URLs are refused by [`IceServer::check`].
    pub urls: Vec<String>,
    /// TURN long-term credential user name (RFC 8489 §9.2).
    #[serde(default)]
    pub username: String,
    /// TURN long-term credential password.
    #[serde(default)]
    pub credential: String,
}

impl IceServer {
    /// Checks the URLs' syntax and that TURN URLs come with credentials.
    /// The error names the first problem (for 90000005, invalid parameter).
    pub fn check(&self) -> Result<(), String> {
        if self.urls.is_empty() {
            return Err("an ICE server needs at least one URL".into());
        }
        for url in &self.urls {
            let (scheme, rest) = url
                .split_once(':')
                .ok_or_else(|| format!("{url:?} is not a stun: or turn: URL"))?;
            let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
            match scheme {
                "turn" => {
                    if self.username.is_empty() || self.credential.is_empty() {
                        return Err(format!("{url:?} needs a username and a credential"));
                    }
                    if !query.is_empty() && query != "transport=udp" {
                        return Err(format!(
                            "{url:?}: only UDP relaying is supported (transport=udp)"
                        ));
                    }
                }
                "stun" => {
                    if !query.is_empty() {
                        return Err(format!("{url:?}: a stun: URL takes no query"));
                    }
                }
                _ => {
                    return Err(format!(
                        "{url:?}: the scheme must be stun: or turn: (turns: is not supported)"
                    ));
                }
            }
            let (host, port) = match hostport.strip_prefix('[') {
                Some(v6) => match v6.split_once(']') {
                    Some((host, rest)) => (host, rest.strip_prefix(':')),
                    None => ("", None),
                },
                None => match hostport.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (hostport, None),
                },
            };
            if let Some(port) = port
                && !port.parse::<u16>().is_ok_and(|p| p != 0)
            {
                return Err(format!("{url:?}: bad port {port:?}"));
            }
            if host.is_empty() || host.starts_with("//") {
                return Err(format!("{url:?}: no host (write turn:host:port)"));
            }
        }
        Ok(())
    }

    /// Whether any URL is a TURN URL (a relay can be had from it).
    pub fn is_turn(&self) -> bool {
        self.urls.iter().any(|u| u.starts_with("turn:"))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn server(url: &str, user: &str, pass: &str) -> IceServer {
        IceServer {
            urls: vec![url.to_owned()],
            username: user.to_owned(),
            credential: pass.to_owned(),
        }
    }

    #[test]
    fn good_urls_pass() {
        for s in [
            server("turn:127.0.0.1:3478?transport=udp", "u", "p"),
            server("turn:turn.example.org", "u", "p"),
            server("turn:[::1]:3478", "u", "p"),
            server("stun:127.0.0.1:3478", "", ""),
        ] {
            assert_eq!(s.check(), Ok(()), "{s:?}");
        }
    }

    #[test]
    fn bad_urls_are_refused_naming_the_problem() {
        for (s, says) in [
            (server("turn:127.0.0.1:3478", "", "p"), "username"),
            (server("turn:127.0.0.1:3478?transport=tcp", "u", "p"), "UDP"),
            (server("turns:127.0.0.1:5349", "u", "p"), "scheme"),
            (server("http://x", "u", "p"), "scheme"),
            (server("turn:127.0.0.1:port", "u", "p"), "port"),
            (server("turn:127.0.0.1:0", "u", "p"), "port"),
            (server("turn:", "u", "p"), "no host"),
            (server("nonsense", "u", "p"), "not a stun"),
            (IceServer::default(), "at least one URL"),
        ] {
            let err = s.check().expect_err(&format!("{s:?} must be refused"));
            assert!(err.contains(says), "{err:?} should say {says:?}");
        }
    }

    #[test]
    fn wire_shape_is_camel_case_with_optional_credentials() {
        let s = server("turn:h:3478", "u", "p");
        assert_eq!(
            serde_json::to_string(&s).expect("json"),
            r#"{"urls":["turn:h:3478"],"username":"u","credential":"p"}"#
        );
        let stun: IceServer = serde_json::from_str(r#"{"urls":["stun:h"]}"#).expect("parse");
        assert_eq!(stun.username, "");
    }
}
