//! The hub's one UDP socket: batched sends with GSO and batched receives with
//! GRO, through `quinn-udp` (which probes what the kernel supports and falls
//! back by itself: no GSO where the kernel or route refuses it, `EIO` and
//! `EINVAL` alike).
//!
//! What the hub adds on top is the batching policy: [`gso_runs`] turns the
//! datagrams of one loop pass, in send order, into messages, where a run of
//! same-size datagrams to one subscriber (a video frame's fragments) is one
//! GSO message that crosses the IP stack once. A message the kernel refuses
//! is counted, never retried in a loop, and never waited for: a full send
//! buffer drops the rest of the pass ([`Sent::dropped`]), because waiting
//! would stall every subscriber for one. A GSO message refused outright is
//! sent again datagram by datagram (quinn-udp has switched GSO off by then).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};

use bytes::BytesMut;
use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;

/// Socket buffers asked for on the shared socket (the kernel caps them at
/// `net.core.{w,r}mem_max`). One socket carries what 200 sockets did.
const SOCKET_BUFFER_BYTES: usize = 8 << 20;

/// Most bytes in one GSO message (a UDP datagram's payload limit).
const GSO_MAX_BYTES: usize = 65_000;

/// Receive buffers per `recvmmsg` call.
const RECV_SLOTS: usize = 4;

/// Bytes per receive buffer: room for a GRO batch of full-size datagrams.
const RECV_SLOT_BYTES: usize = 64 * 1024;

/// The outcome of one [`UdpIo::send`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams handed to the kernel.
    pub datagrams: usize,
    /// Messages (one `sendmsg` each; a GSO message carries several datagrams).
    pub messages: usize,
    /// Datagrams the kernel refused (full send buffer, unreachable
    /// destination, a message it rejected): not sent, counted in `/metrics`.
    pub dropped: usize,
}

/// A bound, non-blocking UDP socket with quinn-udp's state.
pub struct UdpIo {
    socket: tokio::net::UdpSocket,
    state: UdpSocketState,
    local_addr: SocketAddr,
    /// [`UdpIo::ice_addr`].
    ice_addr: SocketAddr,
    /// One contiguous buffer per GSO message (quinn-udp sends a slice).
    scratch: Vec<u8>,
    recv_buf: Vec<u8>,
    recv_meta: Vec<RecvMeta>,
}

/// Binds a UDP socket on `ip` (any free port) for the hub, before its runtime
/// exists; [`UdpIo::new`] takes it over on the hub's thread.
pub fn bind(ip: IpAddr) -> io::Result<std::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(SocketAddr::new(ip, 0)),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(ip, 0).into())?;
    Ok(socket.into())
}

impl UdpIo {
    /// Takes over `socket` (from [`bind`]); needs a tokio runtime. With
    /// `public_ip`, legs advertise that address instead of the bound one.
    pub fn new(socket: std::net::UdpSocket, public_ip: Option<IpAddr>) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        // Best effort: the kernel caps these at its maxima.
        state
            .set_send_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER_BYTES)
            .ok();
        state
            .set_recv_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER_BYTES)
            .ok();
        let local_addr = socket.local_addr()?;
        let ice_addr = SocketAddr::new(public_ip.unwrap_or(local_addr.ip()), local_addr.port());
        Ok(Self {
            socket: tokio::net::UdpSocket::from_std(socket)?,
            state,
            local_addr,
            ice_addr,
            scratch: Vec::with_capacity(GSO_MAX_BYTES),
            recv_buf: vec![0; RECV_SLOTS * RECV_SLOT_BYTES],
            recv_meta: vec![RecvMeta::default(); RECV_SLOTS],
        })
    }

    /// The socket's address.
    #[cfg(test)]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The hub's ICE host candidate, which its legs' cores also see as the
    /// local end of every datagram: the bound address, or behind a 1:1 NAT
    /// the public one (same port), where the NAT delivers to the bound one.
    pub fn ice_addr(&self) -> SocketAddr {
        self.ice_addr
    }

    /// Waits until the socket may have something to read.
    pub async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Sends `out` (drained), in order: see the module docs.
    pub fn send(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>) -> Sent {
        let max_segments = self.state.max_gso_segments();
        self.send_runs(out, max_segments)
    }

    /// Whether GSO is (still) in use on this socket.
    pub fn gso(&self) -> bool {
        self.state.max_gso_segments() > 1
    }

    fn send_runs(&mut self, out: &mut Vec<(SocketAddr, BytesMut)>, max_segments: usize) -> Sent {
        let mut sent = Sent::default();
        // Never hand the kernel a destination it must refuse with EINVAL:
        // quinn-udp takes any EINVAL as "no GSO here" and turns GSO off for
        // the whole socket. (The hub only sends to ICE candidates, which the
        // signalling layer validates; this is the backstop.)
        let family = self.local_addr.is_ipv4();
        let before = out.len();
        out.retain(|(dest, _)| {
            dest.port() != 0 && !dest.ip().is_unspecified() && dest.is_ipv4() == family
        });
        sent.dropped += before - out.len();
        if out.is_empty() {
            return sent;
        }
        let runs = gso_runs(out.iter().map(|(dest, m)| (*dest, m.len())), max_segments);
        for (at, &(first, end, segment)) in runs.iter().enumerate() {
            let group = &out[first..end];
            let destination = group[0].0;
            let result = if segment > 0 {
                self.scratch.clear();
                for (_, datagram) in group {
                    self.scratch.extend_from_slice(datagram);
                }
                send_one(
                    &self.socket,
                    &self.state,
                    destination,
                    &self.scratch,
                    Some(segment),
                )
            } else {
                send_one(&self.socket, &self.state, destination, &group[0].1, None)
            };
            match result {
                Ok(()) => {
                    sent.messages += 1;
                    sent.datagrams += end - first;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The send buffer is full: drop the rest of this pass
                    // rather than stall every subscriber.
                    sent.dropped += out.len() - first;
                    tracing::trace!(rest = runs.len() - at, "egress hub: send buffer full");
                    break;
                }
                Err(e) if segment > 0 => {
                    // The kernel refused the GSO message (quinn-udp turns GSO
                    // off for later passes on EIO/EINVAL): send its datagrams
                    // one by one instead of losing the frame.
                    tracing::debug!("egress hub: GSO message refused ({e}); sending singly");
                    for (dest, datagram) in group {
                        match send_one(&self.socket, &self.state, *dest, datagram, None) {
                            Ok(()) => {
                                sent.messages += 1;
                                sent.datagrams += 1;
                            }
                            Err(_) => sent.dropped += 1,
                        }
                    }
                }
                Err(e) => {
                    // E.g. an unreachable destination: this message only.
                    tracing::trace!("egress hub send to {destination}: {e}");
                    sent.dropped += end - first;
                }
            }
        }
        out.clear();
        sent
    }

    /// Reads what is waiting (up to one `recvmmsg` batch) and calls `each`
    /// with every datagram and its source. Returns how many were read; 0 when
    /// nothing was waiting.
    pub fn recv(&mut self, mut each: impl FnMut(SocketAddr, &[u8])) -> usize {
        let Self {
            socket,
            state,
            recv_buf,
            recv_meta,
            ..
        } = self;
        let mut slices: Vec<IoSliceMut<'_>> = recv_buf
            .chunks_mut(RECV_SLOT_BYTES)
            .map(IoSliceMut::new)
            .collect();
        let messages = match socket.try_io(Interest::READABLE, || {
            state.recv(UdpSockRef::from(&*socket), &mut slices, recv_meta)
        }) {
            Ok(n) => n,
            Err(e) => {
                if e.kind() != io::ErrorKind::WouldBlock {
                    // e.g. ECONNREFUSED from an ICMP for a closed subscriber port.
                    tracing::trace!("egress hub recv: {e}");
                }
                return 0;
            }
        };
        let mut datagrams = 0;
        for (meta, slice) in recv_meta.iter().zip(&slices).take(messages) {
            let stride = meta.stride.max(1);
            for datagram in slice[..meta.len].chunks(stride) {
                each(meta.addr, datagram);
                datagrams += 1;
            }
        }
        datagrams
    }
}

fn send_one(
    socket: &tokio::net::UdpSocket,
    state: &UdpSocketState,
    destination: SocketAddr,
    contents: &[u8],
    segment_size: Option<u16>,
) -> io::Result<()> {
    let transmit = Transmit {
        destination,
        ecn: None,
        contents,
        segment_size: segment_size.map(usize::from),
        src_ip: None,
    };
    // Straight to the syscall, not through tokio's readiness: the hub never
    // waits to write (a full buffer drops), so it never needs to be woken.
    state.try_send(UdpSockRef::from(socket), &transmit)
}

/// Splits datagrams `(destination, length)`, in send order, into messages
/// `(first, end, segment)`: a maximal run of consecutive datagrams to one
/// destination, all `segment` bytes long except a possibly shorter last one,
/// of at most `max_segments` datagrams and [`GSO_MAX_BYTES`], is one message;
/// `segment` is 0 for a message of a single datagram (always the case when
/// `max_segments` is 1, i.e. without GSO).
pub fn gso_runs(
    datagrams: impl Iterator<Item = (SocketAddr, usize)>,
    max_segments: usize,
) -> Vec<(usize, usize, u16)> {
    let mut runs = Vec::new();
    let mut rest = datagrams.enumerate().peekable();
    while let Some((first, (dest, size))) = rest.next() {
        let mut end = first + 1;
        let mut total = size;
        while end - first < max_segments && size > 0 {
            let Some(&(_, (d, len))) = rest.peek() else {
                break;
            };
            if d != dest || len > size || len == 0 || total + len > GSO_MAX_BYTES {
                break;
            }
            rest.next();
            total += len;
            end += 1;
            if len < size {
                break; // a shorter datagram can only end a run
            }
        }
        let segment = if end - first > 1 { size as u16 } else { 0 };
        runs.push((first, end, segment));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's GSO segment limit on older kernels.
    const SEGMENTS: usize = 64;

    fn runs(datagrams: &[(u16, usize)], max_segments: usize) -> Vec<(usize, usize, u16)> {
        let with_addrs: Vec<(SocketAddr, usize)> = datagrams
            .iter()
            .map(|&(port, len)| (SocketAddr::from(([127, 0, 0, 1], port)), len))
            .collect();
        gso_runs(with_addrs.into_iter(), max_segments)
    }

    #[test]
    fn a_frame_to_one_subscriber_is_one_gso_message() {
        // Two subscribers, each: three full fragments, a short last one, then audio.
        let out = [
            (1, 1200),
            (1, 1200),
            (1, 1200),
            (1, 700),
            (1, 90),
            (2, 1200),
            (2, 1200),
            (2, 1200),
            (2, 700),
        ];
        assert_eq!(
            runs(&out, SEGMENTS),
            vec![(0, 4, 1200), (4, 5, 0), (5, 9, 1200)]
        );
        // Without GSO every datagram is its own message.
        assert_eq!(runs(&out, 1).len(), out.len());
    }

    #[test]
    fn a_larger_datagram_starts_a_new_run_and_limits_hold() {
        assert_eq!(
            runs(&[(1, 500), (1, 1200), (1, 1200)], SEGMENTS),
            vec![(0, 1, 0), (1, 3, 1200)]
        );
        let many = vec![(1, 100); SEGMENTS + 1];
        assert_eq!(
            runs(&many, SEGMENTS),
            vec![(0, SEGMENTS, 100), (SEGMENTS, SEGMENTS + 1, 0)]
        );
        let big = vec![(1, 1200); 60]; // 72,000 bytes: over one datagram's limit
        let r = runs(&big, SEGMENTS);
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|&(a, b, _)| (b - a) * 1200 <= GSO_MAX_BYTES));
    }

    /// Datagrams sent in one pass arrive intact and in order, a GSO run split
    /// back into its datagrams by the receiver's kernel (or by our GRO split).
    #[tokio::test]
    async fn a_pass_arrives_datagram_by_datagram() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut hub = UdpIo::new(bind(ip).expect("bind"), None).expect("udp");
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("peer");
        let dest = peer.local_addr().expect("addr");
        let mut out: Vec<(SocketAddr, BytesMut)> = (0u8..5)
            .map(|i| {
                let len = if i == 4 { 300 } else { 1000 };
                (dest, BytesMut::from(&vec![i; len][..]))
            })
            .collect();
        let sent = hub.send(&mut out);
        assert_eq!((sent.datagrams, sent.dropped), (5, 0), "{sent:?}");
        assert!(out.is_empty());
        let mut buf = [0u8; 2048];
        for i in 0u8..5 {
            let (n, from) = peer.recv_from(&mut buf).await.expect("recv");
            assert_eq!(from, hub.local_addr());
            assert_eq!(n, if i == 4 { 300 } else { 1000 });
            assert!(buf[..n].iter().all(|b| *b == i), "datagram {i} intact");
        }
    }

    /// Datagrams the kernel refuses (EACCES for a broadcast address) or that
    /// could never be sent (port 0, another address family) are counted as
    /// dropped, the rest of the pass still goes out, and GSO stays on.
    #[tokio::test]
    async fn refused_destinations_are_counted_and_the_rest_goes() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut hub = UdpIo::new(bind(ip).expect("bind"), None).expect("udp");
        let gso = hub.gso();
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("peer");
        let good = peer.local_addr().expect("addr");
        let refused = [
            SocketAddr::from(([255, 255, 255, 255], 9)),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            "[::1]:9".parse().expect("v6"),
        ];
        let mut out: Vec<(SocketAddr, BytesMut)> = refused
            .iter()
            .map(|&dest| (dest, BytesMut::from(&[1u8; 100][..])))
            .collect();
        out.push((good, BytesMut::from(&[2u8; 100][..])));
        let sent = hub.send(&mut out);
        assert_eq!((sent.datagrams, sent.dropped), (1, 3), "{sent:?}");
        let mut buf = [0u8; 256];
        let (n, _) = peer.recv_from(&mut buf).await.expect("recv");
        assert_eq!(&buf[..n], &[2u8; 100]);
        assert_eq!(
            hub.gso(),
            gso,
            "a refused destination does not turn GSO off"
        );
    }

    /// A GSO message the kernel refuses with EINVAL (here: more segments than
    /// `UDP_MAX_SEGMENTS`) is sent again datagram by datagram, nothing is
    /// lost, and GSO is off from then on.
    #[tokio::test]
    async fn a_refused_gso_message_falls_back_to_single_datagrams() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut hub = UdpIo::new(bind(ip).expect("bind"), None).expect("udp");
        if !hub.gso() {
            // Nothing to fall back from: this kernel has no UDP GSO.
            eprintln!("no UDP GSO on this kernel: the fallback is not exercised");
            return;
        }
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("peer");
        let dest = peer.local_addr().expect("addr");
        const COUNT: usize = 200; // above the kernel's 64 or 128
        let mut out: Vec<(SocketAddr, BytesMut)> = (0..COUNT)
            .map(|i| (dest, BytesMut::from(&[i as u8; 100][..])))
            .collect();
        let sent = hub.send_runs(&mut out, COUNT);
        assert_eq!((sent.datagrams, sent.dropped), (COUNT, 0), "{sent:?}");
        assert!(!hub.gso(), "GSO off after EINVAL");
        let mut buf = [0u8; 256];
        for i in 0..COUNT {
            let (n, _) = peer.recv_from(&mut buf).await.expect("recv");
            assert_eq!(&buf[..n], &[i as u8; 100], "datagram {i}");
        }
    }

    /// Received datagrams come back one by one with their sources.
    #[tokio::test]
    async fn receives_what_was_sent_to_it() {
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut hub = UdpIo::new(bind(ip).expect("bind"), None).expect("udp");
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("peer");
        for i in 0u8..3 {
            peer.send_to(&[i; 50], hub.local_addr())
                .await
                .expect("send");
        }
        let mut got = Vec::new();
        while got.len() < 3 {
            hub.readable().await.expect("readable");
            hub.recv(|from, d| got.push((from, d.to_vec())));
        }
        let from = peer.local_addr().expect("addr");
        assert_eq!(
            got,
            (0u8..3).map(|i| (from, vec![i; 50])).collect::<Vec<_>>()
        );
    }
}
