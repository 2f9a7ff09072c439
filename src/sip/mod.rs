//! SIP plumbing: transports, message parsing and writing, SDP rewriting and
//! the RFC 3261 section 17 transaction state machines. Knows nothing of
//! bindings, calls or storage: it turns bytes into [`Msg`]s and back.

pub mod config;
pub mod digest;
pub mod framing;
mod grammar;
pub mod guard;
pub mod message;
mod parse;
pub mod piece;
pub mod relay;

pub mod timer;
pub mod transaction;
pub mod transport;
pub mod writer;

use std::fmt;
use std::net::SocketAddr;

pub use message::{Method, Msg, Start};
pub use piece::Piece;

/// Errors of the SIP layer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SipError {
    /// The parser rejected the message.
    #[error("unparsable message: {0}")]
    Parse(String),
    /// A mandatory header is missing or malformed.
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    /// A request read well enough to be answered with this status: 501
    /// for a method we do not implement, 505 for another SIP version, 416
    /// for a Request-URI scheme we do not serve.
    #[error("{1} ({0})")]
    Status(u16, &'static str),
    /// Over the configured size.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Size seen (or announced).
        size: usize,
        /// Configured limit.
        limit: usize,
    },
}

/// Transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Transport {
    /// Via token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// The other end of a hop: where a message came from or goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Protocol.
    pub transport: Transport,
    /// Remote address.
    pub addr: SocketAddr,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_str().to_ascii_lowercase(),
            self.addr
        )
    }
}

/// A configured next hop such as the trunk: `host:port[;transport=tcp]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Resolved peer.
    pub peer: Peer,
    /// Host as written, for Request-URIs.
    pub host: String,
}

impl Target {
    /// Parses `IP:port` with an optional `;transport=udp|tcp`.
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim().trim_start_matches("sip:");
        let (addr, params) = s.split_once(';').unwrap_or((s, ""));
        let transport = match message::param(&format!(";{params}"), "transport") {
            None => Transport::Udp,
            Some(t) if t.eq_ignore_ascii_case("udp") => Transport::Udp,
            Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
            Some(t) => return Err(format!("unsupported transport {t:?}")),
        };
        let sock: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| format!("{addr:?} is not a reachable host:port ({e})"))?
            .next()
            .ok_or_else(|| format!("{addr:?} resolves to no address"))?;
        Ok(Target {
            peer: Peer {
                transport,
                addr: sock,
            },
            host: host_port(sock),
        })
    }
}

/// `ip:port` with IPv6 in brackets, as SIP writes it.
pub fn host_port(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// A new RFC 3261 branch (with the magic cookie).
pub fn branch() -> String {
    format!("z9hG4bK{}", crate::ids::token())
}
