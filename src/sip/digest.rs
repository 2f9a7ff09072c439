//! SIP digest authentication (RFC 3261 22, RFC 8760): challenges with
//! SHA-256 and MD5 and qop=auth, nonces that carry their own issue time and
//! MAC (so any nonce we never issued, or issued before a restart, is
//! refused without a table of them), and checking a client's response
//! against the account's stored HA1. Replay protection (nc per nonce) is
//! the caller's, which keeps the nonces that were used.

use crate::hash::{hex, hmac_sha256, md5_hex, same, sha256_hex};

/// A digest algorithm of RFC 8760.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `SHA-256`, offered first.
    Sha256,
    /// `MD5`, for the phones that know nothing else.
    Md5,
}

impl Algorithm {
    /// As written in `algorithm=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    /// From a config value: `SHA-256` or `MD5`.
    pub fn named(s: &str) -> Option<Algorithm> {
        Algorithm::parse(Some(s))
    }

    fn parse(s: Option<&str>) -> Option<Algorithm> {
        match s {
            // RFC 3261: no algorithm means MD5.
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// The hash as lower-case hex.
    pub fn hash(self, data: &str) -> String {
        self.hash_bytes(data.as_bytes())
    }

    /// The hex digest of raw bytes (a body, for `qop=auth-int`).
    pub fn hash_bytes(self, data: &[u8]) -> String {
        match self {
            Algorithm::Sha256 => sha256_hex(data),
            Algorithm::Md5 => md5_hex(data),
        }
    }
}

/// The stored secrets of an account: HA1 = H(user:realm:password) per
/// algorithm. The password itself is never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ha1 {
    /// Realm the hashes were made for.
    pub realm: String,
    /// MD5 HA1, hex.
    pub md5: String,
    /// SHA-256 HA1, hex.
    pub sha256: String,
}

impl Ha1 {
    /// The hashes of `user`'s `password` in `realm`.
    pub fn new(user: &str, realm: &str, password: &str) -> Ha1 {
        let a1 = format!("{user}:{realm}:{password}");
        Ha1 {
            realm: realm.to_string(),
            md5: Algorithm::Md5.hash(&a1),
            sha256: Algorithm::Sha256.hash(&a1),
        }
    }

    fn of(&self, a: Algorithm) -> &str {
        match a {
            Algorithm::Md5 => &self.md5,
            Algorithm::Sha256 => &self.sha256,
        }
    }
}

/// The parameters of an `Authorization` or `Proxy-Authorization` header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri`.
    pub uri: String,
    /// `response`.
    pub response: String,
    /// `algorithm`, as written.
    pub algorithm: Option<String>,
    /// `cnonce`.
    pub cnonce: String,
    /// `qop`.
    pub qop: Option<String>,
    /// `nc`, parsed from its 8 hex digits.
    pub nc: u32,
}

/// Parses `Digest k=v, k="v", ...`; `None` if it is not a digest header
/// or lacks what qop=auth needs.
pub fn parse_credentials(value: &str) -> Option<Credentials> {
    let rest = value.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut c = Credentials::default();
    let mut nc = None;
    for (k, v) in params_of(params) {
        match k.to_ascii_lowercase().as_str() {
            "username" => c.username = v,
            "realm" => c.realm = v,
            "nonce" => c.nonce = v,
            "uri" => c.uri = v,
            "response" => c.response = v.to_ascii_lowercase(),
            "algorithm" => c.algorithm = Some(v),
            "cnonce" => c.cnonce = v,
            "qop" => c.qop = Some(v),
            "nc" => nc = u32::from_str_radix(&v, 16).ok(),
            _ => {}
        }
    }
    if c.username.is_empty() || c.nonce.is_empty() || c.response.is_empty() {
        return None;
    }
    c.nc = nc.unwrap_or(0);
    Some(c)
}

/// `k=v` pairs of a comma-separated list, quotes removed (a quoted value
/// may hold commas).
fn params_of(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            value = q[..end].to_string();
            rest = q.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.trim_start().trim_start_matches(',').trim_start();
        out.push((key, value));
    }
    out
}

/// Why credentials were not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Not a nonce we issued (or issued before a restart), another realm,
    /// an algorithm or qop we did not offer: challenge afresh.
    Unusable,
    /// Our nonce, but too old: challenge with `stale=true`.
    Stale,
    /// The response does not match: wrong password.
    Wrong,
}

/// Issues and checks nonces under a per-process secret.
pub struct Nonces {
    secret: [u8; 32],
    /// How long a nonce may be used, in ms.
    life_ms: i64,
}

/// A nonce is 16 hex digits of issue time (unix ms), 16 of randomness and
/// 32 of MAC over both.
const NONCE_LEN: usize = 64;

impl Nonces {
    /// Nonces valid for `life_secs` under a fresh random secret.
    pub fn new(life_secs: u64) -> Nonces {
        Nonces {
            secret: rand::random(),
            life_ms: i64::try_from(life_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        }
    }

    /// A fresh nonce issued at `now_ms`.
    pub fn issue(&self, now_ms: i64) -> String {
        let head = format!("{now_ms:016x}{:016x}", rand::random::<u64>());
        let mac = hmac_sha256(&self.secret, head.as_bytes());
        format!("{head}{}", hex(&mac[..16]))
    }

    /// When `nonce` was issued, if we issued it.
    pub fn issued(&self, nonce: &str) -> Option<i64> {
        if nonce.len() != NONCE_LEN || !nonce.is_ascii() {
            return None;
        }
        let (head, mac) = nonce.split_at(32);
        let want = hmac_sha256(&self.secret, head.as_bytes());
        if !same(hex(&want[..16]).as_bytes(), mac.as_bytes()) {
            return None;
        }
        i64::from_str_radix(&head[..16], 16).ok()
    }

    /// When a nonce issued at `issued` stops being usable.
    pub fn expires(&self, issued: i64) -> i64 {
        issued.saturating_add(self.life_ms)
    }

    /// Checks `c` for `method` against the account's `ha1` in `realm`.
    pub fn verify(
        &self,
        c: &Credentials,
        method: &str,
        realm: &str,
        ha1: &Ha1,
        now_ms: i64,
    ) -> Result<(), Failure> {
        let algorithm = Algorithm::parse(c.algorithm.as_deref()).ok_or(Failure::Unusable)?;
        if c.realm != realm || ha1.realm != realm {
            return Err(Failure::Unusable);
        }
        let issued = self.issued(&c.nonce).ok_or(Failure::Unusable)?;
        // qop=auth is required: without it there is no nc to stop replays.
        if !c
            .qop
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case("auth"))
            || c.cnonce.is_empty()
            || c.nc == 0
        {
            return Err(Failure::Unusable);
        }
        let want = response(algorithm, ha1.of(algorithm), c, method);
        if !same(want.as_bytes(), c.response.as_bytes()) {
            return Err(Failure::Wrong);
        }
        if now_ms > self.expires(issued) {
            return Err(Failure::Stale);
        }
        Ok(())
    }

    /// `WWW-Authenticate`/`Proxy-Authenticate` values, one per algorithm
    /// in order of preference (RFC 8760 2.4), each with qop=auth.
    pub fn challenge(
        &self,
        realm: &str,
        algorithms: &[Algorithm],
        stale: bool,
        now_ms: i64,
    ) -> Vec<String> {
        let nonce = self.issue(now_ms);
        let stale = if stale { ", stale=true" } else { "" };
        algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    a.as_str()
                )
            })
            .collect()
    }
}

/// The expected `response` for qop=auth (RFC 3261 22.4, RFC 8760 2).
pub fn response(a: Algorithm, ha1: &str, c: &Credentials, method: &str) -> String {
    let ha2 = a.hash(&format!("{method}:{}", c.uri));
    a.hash(&format!(
        "{ha1}:{}:{:08x}:{}:auth:{ha2}",
        c.nonce, c.nc, c.cnonce
    ))
}

/// Answers a challenge as a client (our trunks' 401/407): the header
/// value for `method` on `uri` with `user`/`password`, nc 1, for a
/// request whose body is `body` (hashed in with `qop=auth-int`, used
/// when the challenge offers it and not `auth`). `None` if the challenge
/// is not a digest one we can answer.
pub fn answer(
    challenge: &str,
    (method, uri, body): (&str, &str, &[u8]),
    user: &str,
    password: &str,
) -> Option<String> {
    let (scheme, params) = challenge.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut realm = String::new();
    let mut nonce = String::new();
    let mut opaque = None;
    let mut algorithm = None;
    let mut qop = None;
    for (k, v) in params_of(params) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => realm = v,
            "nonce" => nonce = v,
            "opaque" => opaque = Some(v),
            "algorithm" => algorithm = Some(v),
            "qop" => qop = Some(v),
            _ => {}
        }
    }
    let alg = Algorithm::parse(algorithm.as_deref())?;
    let ha1 = alg.hash(&format!("{user}:{realm}:{password}"));
    let offers = |name: &str| {
        qop.as_deref()
            .is_some_and(|q| q.split(',').any(|x| x.trim().eq_ignore_ascii_case(name)))
    };
    // RFC 3261 §22.4 / RFC 2617 §3.2.2.3: auth-int hashes the body in.
    let chosen = if offers("auth") {
        Some("auth")
    } else if offers("auth-int") {
        Some("auth-int")
    } else {
        None
    };
    let ha2 = match chosen {
        Some("auth-int") => {
            let body_hash = alg.hash_bytes(body);
            alg.hash(&format!("{method}:{uri}:{body_hash}"))
        }
        _ => alg.hash(&format!("{method}:{uri}")),
    };
    let mut v = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}",
        alg.as_str()
    );
    let resp = if let Some(q) = chosen {
        let cnonce = hex(&rand::random::<[u8; 8]>());
        v.push_str(&format!(", qop={q}, nc=00000001, cnonce=\"{cnonce}\""));
        alg.hash(&format!("{ha1}:{nonce}:00000001:{cnonce}:{q}:{ha2}"))
    } else {
        alg.hash(&format!("{ha1}:{nonce}:{ha2}"))
    };
    v.push_str(&format!(", response=\"{resp}\""));
    if let Some(o) = opaque {
        v.push_str(&format!(", opaque=\"{o}\""));
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &[Algorithm] = &[Algorithm::Sha256, Algorithm::Md5];

    /// RFC 7616 3.9.1: the same exchange with MD5 and with SHA-256.
    fn rfc7616(alg: &str) -> (Credentials, Ha1) {
        let c = Credentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            response: String::new(),
            algorithm: Some(alg.into()),
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into(),
            qop: Some("auth".into()),
            nc: 1,
        };
        (
            c,
            Ha1::new("Mufasa", "http-auth@example.org", "Circle of Life"),
        )
    }

    #[test]
    fn responses_match_rfc7616() {
        let (c, ha1) = rfc7616("MD5");
        assert_eq!(
            response(Algorithm::Md5, &ha1.md5, &c, "GET"),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert_eq!(
            response(Algorithm::Sha256, &ha1.sha256, &c, "GET"),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn credentials_parse_with_quotes_and_commas() {
        let c = parse_credentials(
            "Digest username=\"alice\", realm=\"sipmask\",nonce=\"n,1\", uri=\"sip:x\", \
             response=\"ABC\", algorithm=SHA-256, cnonce=\"c\", qop=auth, nc=0000000a",
        )
        .expect("parses");
        assert_eq!(c.username, "alice");
        assert_eq!(c.nonce, "n,1");
        assert_eq!(c.response, "abc");
        assert_eq!(c.nc, 10);
        assert_eq!(c.algorithm.as_deref(), Some("SHA-256"));
        assert!(parse_credentials("Basic YWxhZGRpbjpvcGVuc2VzYW1l").is_none());
        assert!(parse_credentials("Digest realm=\"x\"").is_none());
        assert!(parse_credentials("").is_none());
    }

    #[test]
    fn our_client_answer_passes_our_check() {
        let n = Nonces::new(300);
        let ha1 = Ha1::new("alice", "sipmask", "pw");
        for ch in n.challenge("sipmask", BOTH, false, 1_000) {
            let v = answer(&ch, ("REGISTER", "sip:h", b""), "alice", "pw").expect("answer");
            let c = parse_credentials(&v).expect("parse");
            assert_eq!(n.verify(&c, "REGISTER", "sipmask", &ha1, 2_000), Ok(()));
            let bad = Ha1::new("alice", "sipmask", "other");
            assert_eq!(
                n.verify(&c, "REGISTER", "sipmask", &bad, 2_000),
                Err(Failure::Wrong)
            );
            // Past its life: stale, so the phone retries without asking the user.
            assert_eq!(
                n.verify(&c, "REGISTER", "sipmask", &ha1, 400_000),
                Err(Failure::Stale)
            );
            // The method is part of the hash.
            assert_eq!(
                n.verify(&c, "INVITE", "sipmask", &ha1, 2_000),
                Err(Failure::Wrong)
            );
        }
    }

    #[test]
    fn foreign_and_tampered_nonces_are_unusable() {
        let n = Nonces::new(300);
        let other = Nonces::new(300);
        let ha1 = Ha1::new("alice", "sipmask", "pw");
        let ch = &other.challenge("sipmask", BOTH, false, 1_000)[0];
        let v = answer(ch, ("REGISTER", "sip:h", b""), "alice", "pw").expect("answer");
        let c = parse_credentials(&v).expect("parse");
        assert_eq!(
            n.verify(&c, "REGISTER", "sipmask", &ha1, 2_000),
            Err(Failure::Unusable)
        );
        let mine = n.issue(1_000);
        assert_eq!(n.issued(&mine), Some(1_000));
        let mut tampered = mine.clone().into_bytes();
        tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
        assert_eq!(n.issued(&String::from_utf8_lossy(&tampered)), None);
        assert_eq!(n.issued("short"), None);
        assert_eq!(n.issued(&"é".repeat(32)), None);
    }

    #[test]
    fn without_qop_auth_nothing_passes() {
        let n = Nonces::new(300);
        let ha1 = Ha1::new("alice", "sipmask", "pw");
        let ch = n.challenge("sipmask", BOTH, false, 1_000)[1].replace(", qop=\"auth\"", "");
        let v = answer(&ch, ("REGISTER", "sip:h", b""), "alice", "pw").expect("answer");
        let c = parse_credentials(&v).expect("parse");
        assert_eq!(
            n.verify(&c, "REGISTER", "sipmask", &ha1, 2_000),
            Err(Failure::Unusable)
        );
    }

    /// RFC 2617 §3.2.2.3 by hand: with only `auth-int` offered, the
    /// body's hash is part of H(A2), so a changed body fails.
    #[test]
    fn auth_int_hashes_the_body_in() {
        let ch = "Digest realm=\"carrier\", nonce=\"n1\", qop=\"auth-int\", algorithm=MD5";
        let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";
        let v = answer(ch, ("INVITE", "sip:+86139@carrier", body), "acct", "pw").expect("answer");
        let c = parse_credentials(&v).expect("parse");
        assert_eq!(c.qop.as_deref(), Some("auth-int"));
        let md5 = Algorithm::Md5;
        let ha1 = md5.hash("acct:carrier:pw");
        let expect = |body: &[u8]| {
            let ha2 = md5.hash(&format!(
                "INVITE:sip:+86139@carrier:{}",
                md5.hash_bytes(body)
            ));
            md5.hash(&format!("{ha1}:n1:00000001:{}:auth-int:{ha2}", c.cnonce))
        };
        assert_eq!(c.response, expect(body));
        assert_ne!(c.response, expect(b"v=0\r\n"));
        // Both offered: plain auth, the body left out.
        let both = ch.replace("auth-int", "auth-int,auth");
        let v = answer(&both, ("INVITE", "sip:x", body), "acct", "pw").expect("answer");
        assert!(v.contains("qop=auth,"), "{v}");
    }
}
