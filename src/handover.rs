//! Instances that share the SIP port: a restart that overlaps a drain,
//! and the nodes of a cluster that run side by side on one host (on a
//! shared database, one data dir). Every running instance holds a lock
//! file `<data_dir>/instances/<id>.lock` for its whole life, naming a
//! loopback UDP address and a secret. The SIP ports are shared
//! (SO_REUSEPORT), so the kernel spreads datagrams over the instances by
//! their source; each hands a message it cannot handle (a response to
//! another's request, a request in another's dialog, a new call while it
//! drains) to its siblings over loopback, with the original source, and
//! the one it belongs to answers from the shared port. A forwarded
//! message is never forwarded again, and a sibling it is not for drops
//! it. The lock files also tell a crashed instance's checkpoints (lock
//! free) from a running one's (lock held).

use std::fs::File;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;

/// First word of a forwarded datagram.
const MAGIC: &str = "SMFWD1";
/// How often the sibling is looked up (by [`Handover::refresh`], off the
/// message path) without being told to: an instance that starts or stops
/// tells its sibling at once ([`Handover::announce`]), so this only bounds
/// how long a crashed sibling is still handed messages. (Looking every
/// 100 ms was a third of an idle server's wake-ups.)
pub const FRESH: Duration = Duration::from_secs(1);

/// What an instance that starts or stops sends its sibling after [`MAGIC`]
/// and the sibling's secret: look your sibling up again.
const LOOK: &str = "look";

/// A live sibling: where to send, with its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sibling {
    addr: SocketAddr,
    secret: String,
}

/// This instance's side of the handover.
pub struct Handover {
    /// Loopback socket siblings send to.
    pub sock: Arc<UdpSocket>,
    dir: PathBuf,
    me: String,
    secret: String,
    _lock: File,
    siblings: Mutex<Arc<[Sibling]>>,
}

fn instances(data_dir: &Path) -> PathBuf {
    data_dir.join("instances")
}

/// Whether instance `id` of `data_dir` is running (holds its lock).
pub fn alive(data_dir: &Path, id: &str) -> bool {
    File::open(instances(data_dir).join(format!("{id}.lock"))).is_ok_and(|f| held(&f))
}

/// Whether a running process holds the lock of an open lock file. A
/// shared lock taken here to find out is released when `f` is dropped.
fn held(f: &File) -> bool {
    matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}

impl Handover {
    /// Binds the loopback socket and takes this instance's lock.
    pub fn start(data_dir: &Path, me: &str) -> std::io::Result<Handover> {
        let dir = instances(data_dir);
        crate::store::private_dir(&dir)?;
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
        std_sock.set_nonblocking(true)?;
        let addr = std_sock.local_addr()?;
        let sock = Arc::new(UdpSocket::from_std(std_sock)?);
        let secret = crate::ids::secret("");
        // The id is new, so is the file.
        let mut lock = crate::store::private_file(&dir.join(format!("{me}.lock")))?;
        lock.lock()?;
        writeln!(lock, "{addr} {secret}")?;
        lock.flush()?;
        Ok(Handover {
            sock,
            dir,
            me: me.to_string(),
            secret,
            _lock: lock,
            siblings: Mutex::new(Arc::from(Vec::new())),
        })
    }

    /// Ends this instance's registration (clean exit) and tells the
    /// siblings, which stop handing it messages.
    pub fn retire(&self) {
        let _ = std::fs::remove_file(self.dir.join(format!("{}.lock", self.me)));
        self.announce();
    }

    /// Tells the siblings as last looked up to look theirs up again:
    /// this instance started, or is gone.
    pub fn announce(&self) {
        for to in self.siblings().iter() {
            self.send(to, format!("{MAGIC} {} {LOOK}\n", to.secret).as_bytes());
        }
    }

    /// The live siblings as last looked up: no file access and no copy,
    /// so the message path can ask for every datagram.
    pub fn siblings(&self) -> Arc<[Sibling]> {
        self.siblings
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| Arc::from(Vec::new()))
    }

    /// Looks the siblings up again (every [`FRESH`], from a task of its
    /// own).
    pub fn refresh(&self) {
        let found: Arc<[Sibling]> = Arc::from(self.scan());
        if let Ok(mut s) = self.siblings.lock() {
            *s = found;
        }
    }

    fn scan(&self) -> Vec<Sibling> {
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return found;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
                continue;
            };
            if id == self.me {
                continue;
            }
            let Ok(mut f) = File::open(e.path()) else {
                continue;
            };
            if !held(&f) {
                // Nobody holds it: a crashed instance's leftover.
                let _ = std::fs::remove_file(e.path());
                continue;
            }
            let mut text = String::new();
            if f.read_to_string(&mut text).is_err() {
                continue;
            }
            let mut parts = text.split_whitespace();
            let (Some(addr), Some(secret)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let Ok(addr) = addr.parse() {
                found.push(Sibling {
                    addr,
                    secret: secret.to_string(),
                });
            }
        }
        found
    }

    /// Hands a datagram from `peer` to a sibling.
    pub fn forward(&self, to: &Sibling, peer: SocketAddr, data: &[u8]) {
        let mut out = Vec::with_capacity(data.len() + 96);
        out.extend_from_slice(format!("{MAGIC} {} {peer}\n", to.secret).as_bytes());
        out.extend_from_slice(data);
        self.send(to, &out);
    }

    fn send(&self, to: &Sibling, datagram: &[u8]) {
        // A plain non-blocking send: tokio's try_send_to refuses until the
        // reactor has seen the socket writable once.
        let sock = socket2::SockRef::from(self.sock.as_ref());
        if let Err(e) = sock.send_to(datagram, &to.addr.into()) {
            tracing::debug!(error = %e, "sending to the sibling failed");
        }
    }

    /// Reads a datagram of the handover socket. Anything without our
    /// secret is dropped: a source is believed only from a sibling.
    pub fn read<'a>(&self, from: SocketAddr, datagram: &'a [u8]) -> Option<FromSibling<'a>> {
        if !from.ip().is_loopback() {
            return None;
        }
        let nl = datagram.iter().position(|b| *b == b'\n')?;
        let head = std::str::from_utf8(&datagram[..nl]).ok()?;
        let mut parts = head.split(' ');
        if parts.next() != Some(MAGIC) || parts.next() != Some(self.secret.as_str()) {
            return None;
        }
        match parts.next()? {
            LOOK => {
                (parts.next().is_none() && nl + 1 == datagram.len()).then_some(FromSibling::Look)
            }
            peer => Some(FromSibling::Message(
                peer.parse().ok()?,
                &datagram[nl + 1..],
            )),
        }
    }
}

/// What a sibling sent (see [`Handover::read`]).
#[derive(Debug, PartialEq, Eq)]
pub enum FromSibling<'a> {
    /// A message it handed over, with the message's original source.
    Message(SocketAddr, &'a [u8]),
    /// Look your sibling up again: it started, or is gone.
    Look,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn siblings_find_each_other_and_only_a_sibling_is_believed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Handover::start(dir.path(), "aaaa").expect("a");
        let b = Handover::start(dir.path(), "bbbb").expect("b");
        assert!(alive(dir.path(), "aaaa"));
        assert!(!alive(dir.path(), "dddd"));
        let c = Handover::start(dir.path(), "cccc").expect("c");
        a.refresh();
        let sibs = a.siblings();
        assert_eq!(sibs.len(), 2, "every sibling is found: {sibs:?}");
        let sib = sibs
            .iter()
            .find(|s| s.addr == b.sock.local_addr().expect("addr"))
            .expect("b is found");
        let peer: SocketAddr = "192.0.2.7:5060".parse().expect("addr");
        a.forward(sib, peer, b"BYE sip:x SIP/2.0\r\n\r\n");
        let mut buf = [0u8; 256];
        let (n, from) = b.sock.recv_from(&mut buf).await.expect("recv");
        let Some(FromSibling::Message(src, msg)) = b.read(from, &buf[..n]) else {
            panic!("a sibling's message is believed");
        };
        assert_eq!(src, peer);
        assert!(msg.starts_with(b"BYE"));
        let forged = format!("{MAGIC} wrong {peer}\nBYE");
        assert!(b.read(from, forged.as_bytes()).is_none());
        drop(b);
        a.refresh();
        assert_eq!(a.siblings().len(), 1, "a dead sibling is forgotten");
        drop(c);
    }

    #[tokio::test]
    async fn an_instance_that_starts_or_stops_tells_its_sibling_and_no_one_else_is_heard() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = Handover::start(dir.path(), "aaaa").expect("old");
        let new = Handover::start(dir.path(), "bbbb").expect("new");
        let mut buf = [0u8; 256];
        for (tell, told) in [(&new, &old), (&old, &new)] {
            tell.refresh();
            tell.announce();
            let (n, from) = told.sock.recv_from(&mut buf).await.expect("recv");
            assert_eq!(told.read(from, &buf[..n]), Some(FromSibling::Look));
            assert!(
                tell.read(from, &buf[..n]).is_none(),
                "not with another's secret"
            );
        }
        let (n, from) = {
            old.retire();
            new.sock.recv_from(&mut buf).await.expect("recv")
        };
        assert_eq!(
            new.read(from, &buf[..n]),
            Some(FromSibling::Look),
            "a clean exit is told too"
        );
        new.refresh();
        assert!(new.siblings().is_empty(), "and the sibling is forgotten");
        let stranger: SocketAddr = "192.0.2.7:5060".parse().expect("addr");
        assert!(
            new.read(stranger, &buf[..n]).is_none(),
            "only from loopback"
        );
    }
}
