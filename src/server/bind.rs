//! What a server takes from the OS before it serves: the data dir's lock
//! and its sockets. SIP and API sockets are bound with SO_REUSEPORT so a
//! new instance can start while the old one drains (see `handover`); the
//! data dir's lock still keeps two serving instances apart.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::ServerError;

/// Takes the data dir's lock: one serving process per data dir on a
/// database of its own, so two live binding tables never diverge over it.
/// On a database that nodes share (`shared`), every node follows the
/// database's changes: nodes side by side on one host share the data dir
/// (and through it the SIP port), each taking the lock shared, which still
/// keeps out a server on the data dir's own SQLite. The OS drops the lock
/// when the process ends, however it ends.
pub(super) fn lock_data_dir(
    dir: &std::path::Path,
    shared: bool,
) -> Result<std::fs::File, ServerError> {
    let path = dir.join("sipmask.lock");
    crate::store::private_dir(dir).map_err(|source| ServerError::LockFile {
        path: dir.display().to_string(),
        source,
    })?;
    let file = crate::store::private_file(&path).map_err(|source| ServerError::LockFile {
        path: path.display().to_string(),
        source,
    })?;
    let taken = if shared {
        file.try_lock_shared()
    } else {
        file.try_lock()
    };
    match taken {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServerError::Locked {
            dir: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(ServerError::LockFile {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// A UDP socket with large kernel buffers: a burst of calls must not be
/// dropped by the kernel while the engine is busy for a moment. Left
/// unregistered: the SIP thread's runtime takes it (`sip_thread`).
pub(super) fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Socket, Type};
    const BUFFER: usize = 4 << 20;
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    // The kernel caps these at net.core.[rw]mem_max; smaller is still fine.
    let _ = sock.set_recv_buffer_size(BUFFER);
    let _ = sock.set_send_buffer_size(BUFFER);
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock.into())
}

/// UDP and TCP on one port (RFC 3261 section 18). For port 0 the OS picks
/// the UDP port; a TCP socket (an outgoing connection) may hold that port
/// already, so a few picks are tried.
pub(super) fn bind_pair(
    addr: SocketAddr,
) -> std::io::Result<(std::net::UdpSocket, TcpListener, u16)> {
    let mut tries = if addr.port() == 0 { 20 } else { 1 };
    loop {
        let udp = bind_udp(addr)?;
        let port = udp.local_addr()?.port();
        match bind_tcp(SocketAddr::new(addr.ip(), port)) {
            Ok(tcp) => return Ok((udp, tcp, port)),
            Err(e) if tries <= 1 => return Err(e),
            Err(_) => tries -= 1,
        }
    }
}

/// Refuses a port someone else holds. SO_REUSEPORT would let a second,
/// unrelated server share it silently; sharing is only for a draining
/// sibling of the same data dir, so without one the port must be free.
pub(super) fn check_free(addr: SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    std::net::UdpSocket::bind(addr)?;
    std::net::TcpListener::bind(addr)?;
    Ok(())
}

/// A TCP listener that a restarting instance can share.
pub(super) fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

/// Raises the soft limit on open files to the hard limit: the relay holds
/// four sockets per call, more than the usual soft limit of 1,024 allows
/// for a few hundred calls. Returns the limit in force.
pub(super) fn raise_open_files() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we
    // pass, which lives for the whole call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}
