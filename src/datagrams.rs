//! Datagrams in batches: up to [`BATCH`] received with one `recvmmsg` and
//! any number sent with one `sendmmsg` per socket, where a message at a
//! time costs a system call each. Used by the SIP sockets and the media
//! relay's pumps; a datagram's bytes and source are the same as
//! `recv_from` would give. Imports nothing from the rest of sipmask.
//!
//! Linux only has the calls; elsewhere the same interface receives and
//! sends one datagram per call.

use std::io;
use std::net::SocketAddr;

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams taken per receive.
pub const BATCH: usize = 32;

/// Buffers for one socket's receives, reused from batch to batch.
pub struct Inbox {
    bufs: Vec<Vec<u8>>,
    got: Vec<(usize, Option<SocketAddr>, bool)>,
    #[cfg(target_os = "linux")]
    names: Vec<libc::sockaddr_storage>,
}

impl Inbox {
    /// Buffers for datagrams of up to `cap` bytes (a longer one is cut and
    /// marked so).
    pub fn new(cap: usize) -> Inbox {
        Inbox {
            bufs: (0..BATCH).map(|_| vec![0u8; cap]).collect(),
            got: Vec::with_capacity(BATCH),
            // SAFETY: sockaddr_storage is plain old data; all zeroes is a
            // valid (AF_UNSPEC) value.
            #[cfg(target_os = "linux")]
            names: vec![unsafe { std::mem::zeroed() }; BATCH],
        }
    }

    /// How many datagrams the last receive took.
    pub fn len(&self) -> usize {
        self.got.len()
    }

    /// Whether the last receive took none.
    pub fn is_empty(&self) -> bool {
        self.got.is_empty()
    }

    /// Datagram `i` of the last receive: its bytes, its source (`None` if
    /// the kernel gave an address family we do not speak) and whether it
    /// was longer than the buffer.
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<SocketAddr>, bool)> {
        let (n, from, cut) = *self.got.get(i)?;
        Some((&self.bufs[i][..n], from, cut))
    }

    /// Datagram `i` of the last receive in its whole buffer (for rewriting
    /// in place), with its length and source.
    pub fn get_mut(&mut self, i: usize) -> Option<(&mut [u8], usize, Option<SocketAddr>, bool)> {
        let (n, from, cut) = *self.got.get(i)?;
        Some((&mut self.bufs[i][..], n, from, cut))
    }

    /// Whether the last receive emptied the socket (it took less than a
    /// batch): the caller waits for readiness again instead of asking once
    /// more only to hear it would block.
    pub fn drained(&self) -> bool {
        self.got.len() < BATCH
    }

    /// Takes the datagrams waiting on `sock`, up to [`BATCH`], without
    /// waiting: `WouldBlock` when there are none (which also tells tokio to
    /// wait for the next readiness). Any other error is the socket's
    /// pending error (an ICMP unreachable for something we sent, say): it
    /// is reported once and the datagrams behind it stay queued.
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.got.clear();
        let r = sock.try_io(Interest::READABLE, || {
            self.recv_now(sock)?;
            // Less than a batch: the queue is empty, and tokio may forget
            // the readiness now (a datagram arriving meanwhile raises it
            // again) rather than after one more call that would block.
            if self.drained() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        match r {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.got.is_empty() => {
                Ok(self.got.len())
            }
            Err(e) => Err(e),
            Ok(()) => Ok(self.got.len()),
        }
    }

    #[cfg(target_os = "linux")]
    fn recv_now(&mut self, sock: &UdpSocket) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // On the stack: a receive allocates nothing.
        let mut iov: [libc::iovec; BATCH] = std::array::from_fn(|i| libc::iovec {
            iov_base: self.bufs[i].as_mut_ptr().cast(),
            iov_len: self.bufs[i].len(),
        });
        let whole = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let mut hdrs: [libc::mmsghdr; BATCH] = std::array::from_fn(|_| header());
        for ((h, v), name) in hdrs.iter_mut().zip(&mut iov).zip(&mut self.names) {
            point(h, name, whole, v);
        }
        // SAFETY: every header points at a live buffer, its length and a
        // sockaddr_storage owned by `self` (or `iov`, alive until the end
        // of this function); the kernel writes at most that much into each.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                hdrs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (h, name) in hdrs.iter().zip(&self.names).take(n as usize) {
            let cut = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.got
                .push((h.msg_len as usize, to_std(name, h.msg_hdr.msg_namelen), cut));
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_now(&mut self, sock: &UdpSocket) -> io::Result<()> {
        // One call per datagram, until a batch or an empty socket, so that
        // a short batch still means the socket is empty.
        for buf in &mut self.bufs {
            match sock.try_recv_from(buf) {
                Ok((n, from)) => self.got.push((n, Some(from), n == buf.len())),
                Err(e) if self.got.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(())
    }
}

/// Sends each `(to, bytes)` from `sock`, a batch per system call; returns
/// how many could not be sent. A datagram the kernel refuses (no route, a
/// full buffer) is skipped, never retried: SIP retransmits.
pub fn send_all<B: AsRef<[u8]>>(sock: &UdpSocket, out: &[(SocketAddr, B)]) -> usize {
    let mut failed = 0;
    let mut rest = out;
    while !rest.is_empty() {
        match send_some(sock, rest) {
            Ok(0) | Err(_) => {
                // The first one was refused: skip it, go on with the rest.
                failed += 1;
                rest = &rest[1..];
            }
            Ok(n) => rest = &rest[n.min(rest.len())..],
        }
    }
    failed
}

#[cfg(target_os = "linux")]
fn send_some<B: AsRef<[u8]>>(sock: &UdpSocket, out: &[(SocketAddr, B)]) -> io::Result<usize> {
    use std::mem::MaybeUninit;
    use std::os::fd::AsRawFd;
    // On the stack: a batch's worth per call, no allocation per send; only
    // the entries used are written (a batch is mostly a few datagrams).
    let take = out.len().min(BATCH);
    let mut names = [const { MaybeUninit::<libc::sockaddr_storage>::uninit() }; BATCH];
    let mut iov = [const { MaybeUninit::<libc::iovec>::uninit() }; BATCH];
    let mut hdrs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
    for (((h, v), name), (to, b)) in hdrs
        .iter_mut()
        .zip(iov.iter_mut())
        .zip(names.iter_mut())
        .zip(&out[..take])
    {
        let (addr, len) = from_std(to);
        let name = name.write(addr);
        let b = b.as_ref();
        let v = v.write(libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        });
        point(h.write(header()), name, len, v);
    }
    // SAFETY: the first `take` headers were written above, each pointing
    // at an address and a buffer that live until this function returns;
    // the kernel reads them and writes only msg_len.
    let n = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr().cast::<libc::mmsghdr>(),
            take as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(not(target_os = "linux"))]
fn send_some<B: AsRef<[u8]>>(sock: &UdpSocket, out: &[(SocketAddr, B)]) -> io::Result<usize> {
    let (to, bytes) = &out[0];
    sock.try_send_to(bytes.as_ref(), *to).map(|_| 1)
}

/// An empty message header.
#[cfg(target_os = "linux")]
fn header() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain old data; all zeroes (null pointers, zero
    // lengths) is a valid value, filled in by `point`.
    unsafe { std::mem::zeroed() }
}

/// Points `h` at one address (`len` of it used) and one buffer.
#[cfg(target_os = "linux")]
fn point(
    h: &mut libc::mmsghdr,
    name: &mut libc::sockaddr_storage,
    len: libc::socklen_t,
    buf: &mut libc::iovec,
) {
    h.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
    h.msg_hdr.msg_namelen = len;
    h.msg_hdr.msg_iov = buf;
    h.msg_hdr.msg_iovlen = 1;
}

#[cfg(target_os = "linux")]
fn to_std(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match i32::from(name.ss_family) {
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is aligned for every sockaddr type.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let a =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(target_os = "linux")]
fn from_std(to: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: plain old data, all zeroes is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match to {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a
            // sockaddr_in.
            let s = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let s = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_flowinfo = a.flowinfo();
            s.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            s.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets an int socket option; setsockopt's result.
    fn set_int(sock: &UdpSocket, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> i32 {
        use std::os::fd::AsRawFd;
        // SAFETY: setsockopt reads an int from a live local.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    }

    /// Gives `sock` a receive buffer of `bytes`, past net.core.rmem_max
    /// where allowed (SO_RCVBUFFORCE, as root).
    fn room(sock: &UdpSocket, bytes: usize) {
        let s = socket2::SockRef::from(sock);
        let _ = s.set_recv_buffer_size(bytes);
        if s.recv_buffer_size().unwrap_or(0) < bytes {
            set_int(
                sock,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                bytes as libc::c_int,
            );
        }
        assert!(
            s.recv_buffer_size().unwrap_or(0) >= bytes,
            "a receive buffer of {bytes} bytes (raise net.core.rmem_max or run as root)"
        );
    }

    async fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        (a, b)
    }

    /// The next `n` datagrams `rx` receives, each with its cut flag.
    async fn take(rx: &UdpSocket, inbox: &mut Inbox, n: usize) -> Vec<(Vec<u8>, bool)> {
        let mut got = Vec::new();
        while got.len() < n {
            rx.readable().await.expect("readable");
            if let Ok(k) = inbox.recv(rx) {
                for i in 0..k {
                    let (d, _, cut) = inbox.get(i).expect("datagram");
                    got.push((d.to_vec(), cut));
                }
            }
        }
        got
    }

    #[tokio::test]
    async fn a_burst_is_taken_in_batches_in_order_and_whole() {
        let (rx, tx) = pair().await;
        let to = rx.local_addr().expect("addr");
        let from = tx.local_addr().expect("addr");
        let msgs: Vec<Vec<u8>> = (0..1000u32)
            .map(|i| {
                // A datagram at the largest size among small ones.
                let len = if i == 500 {
                    65_507
                } else {
                    20 + (i as usize % 300)
                };
                let mut v = vec![(i % 251) as u8; len];
                v[..4].copy_from_slice(&i.to_be_bytes());
                v
            })
            .collect();
        // Big enough that the burst waits in the socket whole.
        room(&rx, 4 << 20);
        let out: Vec<(SocketAddr, &[u8])> = msgs.iter().map(|m| (to, m.as_slice())).collect();
        assert_eq!(send_all(&tx, &out), 0);
        let mut inbox = Inbox::new(65_536);
        let (mut seen, mut batches, mut most) = (0usize, 0, 0);
        while seen < msgs.len() {
            rx.readable().await.expect("readable");
            match inbox.recv(&rx) {
                Ok(n) => {
                    batches += 1;
                    most = most.max(n);
                    for i in 0..n {
                        let (data, src, cut) = inbox.get(i).expect("datagram");
                        assert_eq!(src, Some(from));
                        assert!(!cut);
                        assert_eq!(data, msgs[seen].as_slice(), "datagram {seen}");
                        seen += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("receive: {e}"),
            }
        }
        assert_eq!(most, BATCH, "batches were full");
        assert!(batches < 1000 / 4, "{batches} receives for 1,000 datagrams");
    }

    #[tokio::test]
    async fn a_longer_datagram_is_marked_cut() {
        let (rx, tx) = pair().await;
        let to = rx.local_addr().expect("addr");
        let big = vec![7u8; 3000];
        assert_eq!(
            send_all(&tx, &[(to, &b"small"[..]), (to, &big), (to, b"after")]),
            0
        );
        let got = take(&rx, &mut Inbox::new(1000), 3).await;
        let sizes: Vec<(usize, bool)> = got.iter().map(|(d, cut)| (d.len(), *cut)).collect();
        assert_eq!(sizes, vec![(5, false), (1000, true), (5, false)]);
    }

    #[tokio::test]
    async fn a_socket_error_mid_stream_costs_no_datagram() {
        let (rx, tx) = pair().await;
        let to = rx.local_addr().expect("addr");
        // A port nobody listens on: the ICMP unreachable comes back to rx
        // as a pending error between the datagrams it receives (reported
        // on an unconnected socket with IP_RECVERR).
        assert_eq!(set_int(&rx, libc::IPPROTO_IP, libc::IP_RECVERR, 1), 0);
        let gone = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let dead = gone.local_addr().expect("addr");
        drop(gone);
        assert_eq!(send_all(&tx, &[(to, b"one"), (to, b"two")]), 0);
        assert_eq!(send_all(&rx, &[(dead, b"lost")]), 0);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(send_all(&tx, &[(to, b"three")]), 0);
        let mut inbox = Inbox::new(100);
        let (mut got, mut errors) = (Vec::new(), 0);
        while got.len() < 3 {
            rx.readable().await.expect("readable");
            match inbox.recv(&rx) {
                Ok(n) => {
                    for i in 0..n {
                        got.push(inbox.get(i).expect("datagram").0.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => errors += 1,
            }
        }
        assert_eq!(
            got,
            vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        assert_eq!(errors, 1, "the error was reported once");
    }

    #[tokio::test]
    async fn a_refused_datagram_does_not_stop_the_ones_behind_it() {
        let (rx, tx) = pair().await;
        let to = rx.local_addr().expect("addr");
        let v6: SocketAddr = "[::1]:9".parse().expect("addr");
        // An IPv6 destination on an IPv4 socket is refused by the kernel.
        let failed = send_all(&tx, &[(to, b"a"), (v6, b"x"), (to, b"b")]);
        assert_eq!(failed, 1);
        let got: Vec<Vec<u8>> = take(&rx, &mut Inbox::new(100), 2)
            .await
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
    }
}
