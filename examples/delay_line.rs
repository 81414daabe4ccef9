//! A userspace delay line between two network interfaces, for the impairment
//! harness (`benches/impair.sh`) on kernels without `netem`.
//!
//! ```text
//!  ns A (server) ── veth ──▶ [ns M: delay_line IF_A IF_B] ── veth ──▶ ns B (bot)
//! ```
//!
//! It bridges Ethernet frames between `IF_A` and `IF_B` with two `AF_PACKET`
//! raw sockets, holding each frame for a fixed one-way delay (and dropping a
//! given fraction, optionally). Bridging at layer 2 means the endpoints see
//! one plain subnet: ARP, ICE host candidates and the ports they name are
//! untouched, which a UDP relay could only manage by rewriting candidates.
//! Bandwidth (tc tbf) and loss (nftables `numgen random`) stay kernel tools
//! applied in the end namespaces; only the delay needs this.
//!
//! ```text
//! delay_line IF_A IF_B DELAY_MS_A_TO_B DELAY_MS_B_TO_A [DROP_PERCENT]
//! ```
//!
//! Runs until killed. Each direction is a reader thread (stamps frames with
//! their due time) and a writer thread (sleeps until due, sends); the queue
//! between them is bounded ([`QUEUE_FRAMES`]) and drops when full, as a router
//! queue would.

use std::ffi::CString;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Frames held per direction (at most 1 s of 100 Mbit/s of 1,500-byte frames
/// would be ~8,000; media at a few Mbit/s needs far less).
const QUEUE_FRAMES: usize = 8192;

/// Largest frame we carry (veth MTU 1500 + Ethernet header, with headroom).
const FRAME_MAX: usize = 2048;

const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u8 = 4;

struct RawSocket {
    fd: libc::c_int,
    ifindex: libc::c_int,
}

impl RawSocket {
    /// A socket receiving every frame that arrives on `ifname` (`receive`), or
    /// one that only sends there (protocol 0: the kernel queues it nothing).
    fn open(ifname: &str, receive: bool) -> io::Result<Self> {
        let name = CString::new(ifname).map_err(|e| io::Error::other(e.to_string()))?;
        // SAFETY: `name` is a valid NUL-terminated string for the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as libc::c_int;
        if ifindex == 0 {
            return Err(io::Error::other(format!("no interface {ifname}")));
        }
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                if receive {
                    i32::from(ETH_P_ALL.to_be())
                } else {
                    0
                },
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let socket = Self { fd, ifindex };
        if !receive {
            return Ok(socket);
        }
        // SAFETY: an all-zero sockaddr_ll is valid; the fields set are in range.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                fd,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    /// The next frame that arrived on the interface (not one we sent).
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: as in `bind`.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: `buf` and `from` are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&raw mut from).cast(),
                    &raw mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if from.sll_pkttype != PACKET_OUTGOING {
                return Ok(n as usize);
            }
        }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: as in `bind`.
        let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        to.sll_family = libc::AF_PACKET as u16;
        to.sll_ifindex = self.ifindex;
        to.sll_halen = 6;
        if let Some(dest) = frame.get(..6) {
            to.sll_addr[..6].copy_from_slice(dest);
        }
        // SAFETY: `frame` and `to` are valid for the lengths given. A failed
        // send (queue full under a tbf cap) is a lost frame, as on a wire.
        unsafe {
            libc::sendto(
                self.fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const to).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
        }
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.fd) };
    }
}

/// xorshift64: drop decisions need no quality, only independence per frame.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn read_side(
    from: RawSocket,
    queue: SyncSender<(Instant, Vec<u8>)>,
    delay: Duration,
    drop: f64,
    seed: u64,
) {
    let mut dice = Dice(seed);
    let mut buf = vec![0u8; FRAME_MAX];
    loop {
        let n = match from.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("delay_line: recv: {e}");
                return;
            }
        };
        if drop > 0.0 && dice.roll() < drop {
            continue;
        }
        let frame = buf.get(..n).unwrap_or_default().to_vec();
        match queue.try_send((Instant::now() + delay, frame)) {
            Ok(()) | Err(TrySendError::Full(_)) => {} // full: tail drop
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

fn write_side(to: RawSocket, queue: Receiver<(Instant, Vec<u8>)>) {
    // The delay is constant per direction, so frames come due in FIFO order.
    while let Ok((due, frame)) = queue.recv() {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        to.send(&frame);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: delay_line IF_A IF_B DELAY_MS_A_TO_B DELAY_MS_B_TO_A [DROP_PERCENT]";
    let (Some(if_a), Some(if_b), Some(ab), Some(ba)) =
        (args.get(1), args.get(2), args.get(3), args.get(4))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let ms = |s: &str| -> Duration {
        Duration::from_secs_f64(
            s.parse::<f64>().unwrap_or_else(|_| {
                eprintln!("{usage}");
                std::process::exit(2)
            }) / 1000.0,
        )
    };
    let (ab, ba) = (ms(ab), ms(ba));
    let drop = args
        .get(5)
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 100.0;
    let open = |name: &str, receive: bool| {
        RawSocket::open(name, receive).unwrap_or_else(|e| {
            eprintln!("delay_line: {name}: {e}");
            std::process::exit(1)
        })
    };
    let (a_in, a_out, b_in, b_out) = (
        open(if_a, true),
        open(if_a, false),
        open(if_b, true),
        open(if_b, false),
    );
    let (ab_tx, ab_rx) = sync_channel(QUEUE_FRAMES);
    let (ba_tx, ba_rx) = sync_channel(QUEUE_FRAMES);
    let threads = [
        std::thread::spawn(move || read_side(a_in, ab_tx, ab, drop, 0x9e37_79b9_7f4a_7c15)),
        std::thread::spawn(move || write_side(b_out, ab_rx)),
        std::thread::spawn(move || read_side(b_in, ba_tx, ba, drop, 0xd1b5_4a32_d192_ed03)),
        std::thread::spawn(move || write_side(a_out, ba_rx)),
    ];
    eprintln!(
        "delay_line: {if_a} -> {if_b} {} ms, {if_b} -> {if_a} {} ms, drop {:.1} %",
        ab.as_secs_f64() * 1e3,
        ba.as_secs_f64() * 1e3,
        drop * 100.0
    );
    for t in threads {
        t.join().ok(); // a thread only ends on a socket error, already printed
    }
}
