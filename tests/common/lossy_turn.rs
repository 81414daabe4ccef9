//! A UDP proxy in front of a TURN server that drops, on the way back to the
//! client, the relayed RTP packets (inside TURN ChannelData, RFC 8656
//! §12.4) that a rule picks: loss on a subscriber's downlink, however the
//! client reaches the server (it relays through the proxy's port).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use huddle::client::{IceServer, TurnConfig};
use huddle::link::testing::rtp_seq;
use tokio::net::UdpSocket;

/// Which relayed RTP datagrams (SRTP: the header is in the clear) to drop.
pub type DropRule = fn(&[u8]) -> bool;

/// The running proxy; stopped on drop.
pub struct LossyTurnProxy {
    /// Its UDP port on 127.0.0.1 (the TURN URL to give clients).
    pub port: u16,
    /// RTP packets dropped so far.
    pub dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LossyTurnProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The RTP datagram inside a TURN ChannelData message, if it carries RTP.
pub fn channel_data_rtp(datagram: &[u8]) -> Option<&[u8]> {
    let first = *datagram.first()?;
    if !(0x40..=0x7f).contains(&first) {
        return None; // STUN (allocations, permissions, indications)
    }
    let rtp = datagram.get(4..)?;
    rtp_seq(rtp).map(|_| rtp)
}

/// The payload type of an RTP datagram.
pub fn rtp_payload_type(rtp: &[u8]) -> Option<u8> {
    rtp.get(1).map(|b| b & 0x7f)
}

impl LossyTurnProxy {
    /// A client's TURN settings that relay only, through this proxy (to the
    /// coturn of `tests/common/coturn.rs`).
    pub fn relay_only(&self) -> TurnConfig {
        TurnConfig {
            servers: vec![IceServer {
                urls: vec![format!("turn:127.0.0.1:{}?transport=udp", self.port)],
                username: super::coturn::TURN_USER.into(),
                credential: super::coturn::TURN_PASSWORD.into(),
            }],
            relay_only: true,
        }
    }

    /// Proxies to the TURN server on `turn_port`, dropping what `rule` picks.
    pub async fn start(turn_port: u16, rule: DropRule) -> Self {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let port = front.local_addr().expect("addr").port();
        let turn: SocketAddr = ([127, 0, 0, 1], turn_port).into();
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&dropped);
        let task = tokio::spawn(async move {
            let mut backs: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
            let mut buf = vec![0u8; 2048];
            let mut tasks = Vec::new();
            while let Ok((n, client)) = front.recv_from(&mut buf).await {
                let back = match backs.get(&client) {
                    Some(back) => Arc::clone(back),
                    None => {
                        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
                        backs.insert(client, Arc::clone(&back));
                        let (back_rx, front_tx, dropped) =
                            (Arc::clone(&back), Arc::clone(&front), Arc::clone(&counter));
                        tasks.push(tokio::spawn(async move {
                            let mut buf = vec![0u8; 2048];
                            while let Ok((n, _)) = back_rx.recv_from(&mut buf).await {
                                let data = &buf[..n];
                                if channel_data_rtp(data).is_some_and(rule) {
                                    dropped.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                                front_tx.send_to(data, client).await.ok(); // test ending
                            }
                        }));
                        back
                    }
                };
                back.send_to(&buf[..n], turn).await.ok(); // test ending
            }
            for task in tasks {
                task.abort();
            }
        });
        Self {
            port,
            dropped,
            task,
        }
    }
}
