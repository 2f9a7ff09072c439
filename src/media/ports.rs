//! The relay's port range: pairs of sockets (RTP on an even port, RTCP on
//! the next) bound on demand, each at a random place in the range so that
//! nobody can tell a call's ports from the last call's. A port another
//! process holds is skipped, so several servers may share a range; the
//! pairs this one holds are skipped without asking the OS.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;

/// A port range.
#[derive(Debug)]
pub struct Ports {
    lo: u16,
    hi: u16,
    /// The RTP ports of the pairs we hold, per address.
    held: Mutex<HashSet<(IpAddr, u16)>>,
}

impl Ports {
    /// The range `lo..=hi` (a start that is odd moves up one).
    pub fn new(lo: u16, hi: u16) -> Ports {
        let lo = lo + (lo % 2);
        Ports {
            lo,
            hi,
            held: Mutex::new(HashSet::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<(IpAddr, u16)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pair from [`Ports::pair`] was closed.
    pub fn release(&self, ip: IpAddr, rtp: u16) {
        self.held().remove(&(ip, rtp));
    }

    /// The configured bounds.
    pub fn bounds(&self) -> (u16, u16) {
        (self.lo, self.hi)
    }

    /// Binds a free pair on `ip`: (RTP's port, RTP, RTCP), both
    /// non-blocking; `Ok(None)` when every pair is taken, the error when
    /// sockets cannot be opened at all (out of file descriptors, most
    /// often), so that the operator is told which of the two it is.
    pub fn pair(&self, ip: IpAddr) -> std::io::Result<Option<(u16, UdpSocket, UdpSocket)>> {
        let pairs = u32::from(self.hi.saturating_sub(self.lo) / 2 + 1);
        let mut held = self.held();
        if held.len() >= pairs as usize {
            return Ok(None);
        }
        // A random place, then onwards from there: the free pairs are
        // found however full the range, and where a call's ports are says
        // nothing of where the next call's will be.
        let start = rand::random::<u32>() % pairs.max(1);
        for k in 0..pairs {
            let i = (start + k) % pairs;
            let port = u32::from(self.lo) + 2 * i;
            let (Ok(rtp), Ok(rtcp)) = (u16::try_from(port), u16::try_from(port + 1)) else {
                continue;
            };
            if rtcp > self.hi || held.contains(&(ip, rtp)) {
                continue;
            }
            // A port in use is skipped; any other failure (out of file
            // descriptors, most often) would fail on every port: the
            // scan stops instead of trying them all, call after call.
            match (bind(ip, rtp), bind(ip, rtcp)) {
                (Ok(a), Ok(b)) => {
                    held.insert((ip, rtp));
                    return Ok(Some((rtp, a, b)));
                }
                (Err(e), _) | (_, Err(e)) if e.kind() != std::io::ErrorKind::AddrInUse => {
                    return Err(e);
                }
                _ => continue,
            }
        }
        Ok(None)
    }
}

/// A non-blocking UDP socket on `ip:port`, made so in one call.
fn bind(ip: IpAddr, port: u16) -> std::io::Result<UdpSocket> {
    let addr = SocketAddr::new(ip, port);
    let ty = socket2::Type::DGRAM.nonblocking().cloexec();
    let s = socket2::Socket::new(socket2::Domain::for_address(addr), ty, None)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_odd_and_never_repeat_while_held() {
        let ports = Ports::new(41001, 41010);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let mut held = Vec::new();
        while let Ok(Some((port, a, b))) = ports.pair(ip) {
            let (pa, pb) = (
                a.local_addr().map(|x| x.port()).unwrap_or(0),
                b.local_addr().map(|x| x.port()).unwrap_or(0),
            );
            assert_eq!(port, pa);
            assert_eq!(pa % 2, 0);
            assert_eq!(pb, pa + 1);
            assert!((41002..=41010).contains(&pa));
            held.push((a, b));
        }
        // 41002..41010 holds four whole pairs (41010's RTCP would be 41011).
        assert!(held.len() <= 4);
        assert!(matches!(ports.pair(ip), Ok(None)), "a full range says so");
    }

    #[test]
    fn the_next_pair_cannot_be_told_from_the_last() {
        // Over a wide range, the step from one pair to the next is not the
        // same from call to call (sequential handing out gave +2 each time).
        let ports = Ports::new(42000, 43999);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let mut got = Vec::new();
        let mut held = Vec::new();
        for _ in 0..8 {
            if let Ok(Some((port, a, b))) = ports.pair(ip) {
                got.push(i32::from(port));
                held.push((a, b));
            }
        }
        let steps: std::collections::HashSet<i32> = got.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(steps.len() > 2, "ports in a predictable order: {got:?}");
    }

    #[test]
    fn sockets_that_cannot_be_opened_are_an_error_not_a_full_range() {
        // An address this machine does not have fails every port the way
        // running out of file descriptors does (binding sends nothing).
        let ports = Ports::new(41101, 41110);
        let foreign: IpAddr = [192, 0, 2, 1].into();
        let err = ports.pair(foreign).err().map(|e| e.kind());
        assert_eq!(err, Some(std::io::ErrorKind::AddrNotAvailable));
    }
}
