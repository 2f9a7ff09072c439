//! IP networks (CIDR), for every list of addresses in the config: the
//! networks webhooks may reach, and the sources trusted to send calls.
//! Imports nothing from the rest of sipmask.

use std::net::IpAddr;

/// An IP network, e.g. `127.0.0.0/8` or `::1/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkError {
    /// Not `ADDRESS/PREFIX` (or a bare address).
    #[error("{0:?} is not an IP network such as 10.0.0.0/8 or ::1/128")]
    Syntax(String),
}

impl Network {
    /// The networks of a config list that read (the config's validation
    /// reports the others, and refuses to start on them).
    pub fn parse_all(list: &[String]) -> Vec<Network> {
        list.iter().filter_map(|n| Network::parse(n).ok()).collect()
    }

    /// Reads `ADDRESS/PREFIX`; a bare address is a single host.
    pub fn parse(s: &str) -> Result<Network, NetworkError> {
        let bad = || NetworkError::Syntax(s.to_string());
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}
