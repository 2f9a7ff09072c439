//! A softphone of an app account over UDP, for the registrar's tests: it
//! REGISTERs and answers digest challenges with its own digest code
//! (written from RFC 3261 22.4 and RFC 8760, not sipmask's), so the
//! server's check is tested against an independent client.

use std::net::SocketAddr;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::{finish, unique, Sip, Ua};

fn hash(alg: &str, s: &str) -> String {
    let bytes: Vec<u8> = if alg == "SHA-256" {
        Sha256::digest(s.as_bytes()).to_vec()
    } else {
        Md5::digest(s.as_bytes()).to_vec()
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `name="value"` or `name=value` out of a challenge.
pub fn param(challenge: &str, name: &str) -> Option<String> {
    let i = challenge.find(&format!("{name}="))?;
    let rest = &challenge[i + name.len() + 1..];
    Some(match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"')?].to_string(),
        None => rest.split(',').next()?.trim().to_string(),
    })
}

/// Credentials answering `challenge` for `method` on `uri`, with `nc`.
pub fn credentials(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let realm = param(challenge, "realm").expect("realm");
    let nonce = param(challenge, "nonce").expect("nonce");
    let alg = param(challenge, "algorithm").unwrap_or_else(|| "MD5".into());
    let cnonce = "0a4f113b";
    let ha1 = hash(&alg, &format!("{user}:{realm}:{password}"));
    let ha2 = hash(&alg, &format!("{method}:{uri}"));
    let resp = hash(&alg, &format!("{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm={alg}, cnonce=\"{cnonce}\", qop=auth, nc={nc:08x}"
    )
}

/// An account's phone.
pub struct Phone {
    pub ua: Ua,
    pub user: String,
    pub password: String,
    pub server: SocketAddr,
    pub call_id: String,
    pub cseq: u32,
}

impl Phone {
    pub async fn new(ip: &str, user: &str, password: &str, server: SocketAddr) -> Phone {
        Phone {
            ua: Ua::bind(ip).await,
            user: user.into(),
            password: password.into(),
            server,
            call_id: unique("reg-"),
            cseq: 0,
        }
    }

    /// A REGISTER with `contact` (a whole header value), `expires` (as an
    /// Expires header) and `auth` (an Authorization value).
    pub fn register_msg(
        &mut self,
        contact: &str,
        expires: Option<u32>,
        auth: Option<&str>,
    ) -> String {
        self.cseq += 1;
        let me = self.ua.addr;
        let mut head = format!(
            "REGISTER sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{b};rport\r\n\
             From: <sip:{user}@{server}>;tag={t}\r\nTo: <sip:{user}@{server}>\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\n",
            server = self.server,
            b = unique("reg"),
            user = self.user,
            t = unique("rt"),
            cid = self.call_id,
            cseq = self.cseq,
        );
        if !contact.is_empty() {
            head.push_str(&format!("Contact: {contact}\r\n"));
        }
        if let Some(e) = expires {
            head.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        finish(head, "")
    }

    /// This phone's own contact, with `expires`.
    pub fn contact(&self) -> String {
        format!("<sip:{}@{}>", self.user, self.ua.addr)
    }

    /// Registers `contact` for `expires` seconds: the challenge, then the
    /// answer with `alg` (the challenge offering it). Returns the final
    /// response.
    pub async fn register_with(&mut self, contact: &str, expires: u32, alg: &str) -> Sip {
        let m = self.register_msg(contact, Some(expires), None);
        self.ua.send(self.server, &m).await;
        let ch = self.ua.expect_response(401).await;
        let challenge = ch
            .headers("WWW-Authenticate")
            .into_iter()
            .find(|c| c.contains(&format!("algorithm={alg}")))
            .expect("a challenge with the algorithm");
        let uri = format!("sip:{}", self.server);
        let auth = credentials(&challenge, &self.user, &self.password, "REGISTER", &uri, 1);
        let m = self.register_msg(contact, Some(expires), Some(&auth));
        self.ua.send(self.server, &m).await;
        self.ua.recv().await
    }

    /// Registers its own contact for 600 s with `extra` header lines
    /// (each ending in CRLF) in both REGISTERs, answering the first
    /// challenge offered. Returns the final response.
    pub async fn register_adding(&mut self, extra: &str) -> Sip {
        let contact = self.contact();
        let with = |m: String| m.replace("Content-Length", &format!("{extra}Content-Length"));
        let m = with(self.register_msg(&contact, Some(600), None));
        self.ua.send(self.server, &m).await;
        let ch = self.ua.expect_response(401).await;
        let challenge = ch.header("WWW-Authenticate").expect("challenge");
        let uri = format!("sip:{}", self.server);
        let auth = credentials(&challenge, &self.user, &self.password, "REGISTER", &uri, 1);
        let m = with(self.register_msg(&contact, Some(600), Some(&auth)));
        self.ua.send(self.server, &m).await;
        self.ua.recv().await
    }

    /// Registers this phone's own contact for `expires` seconds with SHA-256.
    pub async fn register(&mut self, expires: u32) -> Sip {
        let c = self.contact();
        self.register_with(&c, expires, "SHA-256").await
    }
}

/// Checks credentials a client (sipmask towards a trunk) sent against
/// `password`, for `method`: the response recomputed from its own fields.
pub fn verify(header: &str, password: &str, method: &str) -> bool {
    let get = |n: &str| param(header, n).unwrap_or_default();
    let alg = param(header, "algorithm").unwrap_or_else(|| "MD5".into());
    let ha1 = hash(
        &alg,
        &format!("{}:{}:{password}", get("username"), get("realm")),
    );
    let ha2 = hash(&alg, &format!("{method}:{}", get("uri")));
    let want = hash(
        &alg,
        &format!(
            "{ha1}:{}:{}:{}:{}:{ha2}",
            get("nonce"),
            get("nc"),
            get("cnonce"),
            get("qop")
        ),
    );
    want == get("response")
}
