//! Fetches a join signature from a signature server (seed 001 ch. 4): a tiny
//! HTTP/1.1 GET over a tokio `TcpStream`, enough for `http://` endpoints such as
//! `huddle serve`'s `/signature`. No TLS: put a local proxy in front for https.
//! [`SignatureRenewal`] fetches again when the server warns that the session's
//! signature runs out (`signature-expired`) and hands it to the SDK.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest reply read, bytes.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Connect + request + reply deadline.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a signature could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The URL is not `http://host[:port]/path`.
    #[error("signature URL must look like http://host:port/path")]
    BadUrl,
    /// Socket trouble or timeout. Retryable.
    #[error("signature server unreachable: {0}")]
    Io(String),
    /// The server answered with an error status.
    #[error("signature server said {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Body (the server's JSON error).
        body: String,
    },
    /// The body is not `{"signature","ctime"}`.
    #[error("signature server reply unreadable: {0}")]
    Body(String),
}

/// Where a session fetches a fresh signature: the URL and token it joined
/// with, and who it is.
#[derive(Debug, Clone)]
pub struct SignatureRenewal {
    /// The signature endpoint.
    pub url: String,
    /// X-AUTH-TOKEN.
    pub token: String,
    /// The app, room and user the signature is for.
    pub app_id: String,
    /// The room.
    pub room_id: String,
    /// The user.
    pub user_id: String,
}

impl SignatureRenewal {
    /// Fetches a fresh signature and renews the session's with it
    /// ([`crate::client::Client::renew_signature`]). Errors are for the user.
    pub async fn renew(&self, client: &crate::client::Client) -> Result<(), String> {
        let (signature, ctime) = fetch(
            &self.url,
            &self.token,
            &self.app_id,
            &self.room_id,
            &self.user_id,
        )
        .await
        .map_err(|e| e.to_string())?;
        client
            .renew_signature(ctime, signature)
            .await
            .map_err(|e| e.to_string())
    }
}

#[derive(serde::Deserialize)]
struct Reply {
    signature: String,
    ctime: u64,
}

/// `GET {url}?appid=&roomid=&userid=` with `X-AUTH-TOKEN`; returns
/// `(signature, ctime)`. Ids are `[A-Za-z0-9_-]`, so they need no escaping.
pub async fn fetch(
    url: &str,
    token: &str,
    app_id: &str,
    room_id: &str,
    user_id: &str,
) -> Result<(String, u64), SignatureError> {
    tokio::time::timeout(
        FETCH_TIMEOUT,
        fetch_inner(url, token, app_id, room_id, user_id),
    )
    .await
    .map_err(|_| SignatureError::Io("timed out".into()))?
}

async fn fetch_inner(
    url: &str,
    token: &str,
    app_id: &str,
    room_id: &str,
    user_id: &str,
) -> Result<(String, u64), SignatureError> {
    let rest = url.strip_prefix("http://").ok_or(SignatureError::BadUrl)?;
    let (host_port, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if host_port.is_empty() {
        return Err(SignatureError::BadUrl);
    }
    let path = if path.is_empty() { "/" } else { path };
    let addr = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:80")
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut request = format!(
        "GET {path}{sep}appid={app_id}&roomid={room_id}&userid={user_id} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if !token.is_empty() {
        request.push_str(&format!("X-AUTH-TOKEN: {token}\r\n"));
    }
    request.push_str("\r\n");
    let io = |e: std::io::Error| SignatureError::Io(e.to_string());
    let mut stream = tokio::net::TcpStream::connect(&addr).await.map_err(io)?;
    stream.write_all(request.as_bytes()).await.map_err(io)?;
    let mut reply = Vec::new();
    (&mut stream)
        .take(MAX_REPLY_BYTES as u64)
        .read_to_end(&mut reply)
        .await
        .map_err(io)?;
    parse_reply(&reply)
}

fn parse_reply(reply: &[u8]) -> Result<(String, u64), SignatureError> {
    let text = String::from_utf8_lossy(reply);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| SignatureError::Body("no header end".into()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| SignatureError::Body("no status line".into()))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    if status != 200 {
        return Err(SignatureError::Status { status, body });
    }
    let reply: Reply =
        serde_json::from_str(body.trim()).map_err(|e| SignatureError::Body(e.to_string()))?;
    Ok((reply.signature, reply.ctime))
}

pub(crate) fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_replies() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"signature\":\"ab\",\"ctime\":5}";
        assert_eq!(parse_reply(plain).ok(), Some(("ab".into(), 5)));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1c\r\n{\"signature\":\"ab\",\"ctime\":5}\r\n0\r\n\r\n";
        assert_eq!(parse_reply(chunked).ok(), Some(("ab".into(), 5)));
        let denied = b"HTTP/1.1 401 Unauthorized\r\n\r\n{}";
        assert!(matches!(
            parse_reply(denied),
            Err(SignatureError::Status { status: 401, .. })
        ));
    }
}
