//! Where webhooks may connect. A tenant names the URL, so by default every
//! address that reaches inside the operator's network (loopback, private,
//! link-local, unique-local, carrier NAT, unspecified, multicast, ...) is
//! refused; the operator lists networks to allow (`webhooks.allow_networks`).
//! The same check runs on a URL's literal IP, on every address a name
//! resolves to, and so at connect time, not only when the URL is set.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::net::canonical;
pub use crate::net::Network;

/// Whether a webhook may connect to `ip`: a public address, or one in an
/// allowed network.
pub fn permitted(ip: IpAddr, allowed: &[Network]) -> bool {
    let ip = canonical(ip);
    allowed.iter().any(|n| n.contains(ip)) || public(ip)
}

fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => public_v4(a),
        IpAddr::V6(a) => public_v6(a),
    }
}

fn public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, ..] = a.octets();
    !(a.is_unspecified()
        || o0 == 0 // "this network"
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || (o0 == 100 && (64..128).contains(&o1)) // carrier-grade NAT
        || (o0 == 192 && o1 == 0 && a.octets()[2] == 0) // IETF protocol assignments
        || (o0 == 198 && (18..20).contains(&o1)) // benchmarking
        || a.is_documentation()
        || a.is_multicast()
        || o0 >= 240) // reserved and broadcast
}

fn public_v6(a: Ipv6Addr) -> bool {
    let seg = a.segments();
    let s0 = seg[0];
    // Forms that carry an IPv4 address: 6to4 (2002:V4HI:V4LO::) is as
    // public as the address it embeds; IPv4-compatible (::V4, deprecated)
    // and Teredo (2001:0::/32, the client's address obfuscated) are
    // refused outright.
    if s0 == 0x2002 {
        let [h0, h1] = seg[1].to_be_bytes();
        let [l0, l1] = seg[2].to_be_bytes();
        return public_v4(Ipv4Addr::new(h0, h1, l0, l1));
    }
    if seg[..6].iter().all(|s| *s == 0) || (s0 == 0x2001 && seg[1] == 0) {
        return false;
    }
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s0 & 0xfe00) == 0xfc00 // unique local
        || (s0 & 0xffc0) == 0xfe80 // link local
        || (s0 & 0xffc0) == 0xfec0 // site local (deprecated)
        || s0 == 0x2001 && a.segments()[1] == 0x0db8 // documentation
        || s0 == 0x0064 && a.segments()[1] == 0xff9b) // NAT64 reaches IPv4 inside
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn inside_addresses_are_refused_by_default() {
        for a in [
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "10.0.0.1",
            "0.0.0.0",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "::ffff:127.0.0.1",
            "fe80::1",
            "fd00::1",
            "::",
            "255.255.255.255",
            // IPv4-compatible, 6to4 and Teredo spellings of inside places.
            "::127.0.0.1",
            "::169.254.169.254",
            "::10.0.0.1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::5",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!permitted(ip(a), &[]), "{a}");
        }
        for a in ["93.184.216.34", "2606:2800:220:1::1", "2002:5db8:d822::1"] {
            assert!(permitted(ip(a), &[]), "{a}");
        }
    }

    #[test]
    fn listed_networks_are_allowed() {
        let nets = [
            Network::parse("127.0.0.0/8").expect("v4"),
            Network::parse("::1").expect("v6 host"),
        ];
        assert!(permitted(ip("127.0.0.2"), &nets));
        assert!(permitted(ip("::ffff:127.0.0.1"), &nets));
        assert!(permitted(ip("::1"), &nets));
        assert!(!permitted(ip("10.0.0.1"), &nets));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("ten").is_err());
        assert!(Network::parse("0.0.0.0/0")
            .expect("all")
            .contains(ip("10.1.2.3")));
    }
}
