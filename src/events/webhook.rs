//! The webhook client: checks a tenant's URL (a real URL parser, no
//! control characters, no credentials, http or https only, an address the
//! policy permits) and POSTs one signed event with `reqwest` over hyper,
//! TLS by rustls with certificates verified against the system's roots
//! (plus `webhooks.ca_file`). Names are resolved by a resolver that drops
//! every address the policy refuses, so the check holds at connect time
//! too. Scheduling and retries are in `delivery`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

use super::policy::{permitted, Network};

/// Longest URL accepted.
const MAX_URL: usize = 2048;

/// Why a webhook URL cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Control characters or spaces: never part of a URL, and the way a
    /// second request is smuggled into the first.
    #[error("contains control characters or spaces")]
    Control,
    /// Longer than [`MAX_URL`].
    #[error("longer than 2048 characters")]
    TooLong,
    /// Not a URL.
    #[error("not a URL: {0}")]
    Syntax(String),
    /// Not `http` or `https`.
    #[error("must be an http:// or https:// URL")]
    Scheme,
    /// `user:password@` in the URL.
    #[error("must not carry a user name or password")]
    Credentials,
    /// No host.
    #[error("has no host")]
    Host,
    /// The address (or every address the name resolves to) is refused.
    #[error("{0} is not a permitted address (loopback, private, link-local and similar networks are refused unless webhooks.allow_networks lists them)")]
    Refused(String),
    /// The name does not resolve.
    #[error("host {0} does not resolve")]
    Unresolved(String),
}

/// Parses a URL without touching the network.
pub fn parse_url(raw: &str) -> Result<Url, UrlError> {
    if raw.len() > MAX_URL {
        return Err(UrlError::TooLong);
    }
    // The URL standard silently drops tabs and newlines: refuse them here.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(UrlError::Control);
    }
    let url = Url::parse(raw).map_err(|e| UrlError::Syntax(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    if url.host().is_none() {
        return Err(UrlError::Host);
    }
    Ok(url)
}

/// The literal IP of a URL's host, if it is one (`http://2130706433/` and
/// `http://0x7f000001/` are IPv4 literals to the URL parser).
fn literal(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(a) => Some(IpAddr::V4(a)),
        url::Host::Ipv6(a) => Some(IpAddr::V6(a)),
        url::Host::Domain(_) => None,
    }
}

/// Parses a URL and checks where it leads now: a literal address, or every
/// address its name resolves to, must be permitted.
pub async fn check_url(raw: &str, allow: &[Network]) -> Result<Url, UrlError> {
    let url = parse_url(raw)?;
    if let Some(ip) = literal(&url) {
        return if permitted(ip, allow) {
            Ok(url)
        } else {
            Err(UrlError::Refused(ip.to_string()))
        };
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .map_err(|_| UrlError::Unresolved(host.clone()))?
        .collect();
    if addrs.is_empty() {
        return Err(UrlError::Unresolved(host));
    }
    match addrs.iter().find(|a| !permitted(a.ip(), allow)) {
        Some(a) => Err(UrlError::Refused(a.ip().to_string())),
        None => Ok(url),
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `webhooks.ca_file` unreadable or not PEM certificates.
    #[error("webhooks.ca_file {path}: {reason}")]
    CaFile {
        /// Path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// TLS or HTTP client setup failed.
    #[error("webhook client: {0}")]
    Setup(String),
}

/// Resolves names and keeps only the addresses the policy permits: the
/// connection can only go where the check said it may.
struct PolicyResolver {
    allow: Arc<Vec<Network>>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| permitted(a.ip(), &allow))
                .collect();
            if found.is_empty() {
                return Err(Box::new(UrlError::Refused(host)) as _);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// Sends webhook requests.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    allow: Arc<Vec<Network>>,
}

impl Client {
    /// A client with the address policy `allow`, a per-request `timeout`
    /// and the system's CA roots plus those in `ca_file`.
    pub fn new(
        allow: Vec<Network>,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Client, ClientError> {
        let allow = Arc::new(allow);
        let tls = tls_config(ca_file)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .dns_resolver(Arc::new(PolicyResolver {
                allow: allow.clone(),
            }))
            // A redirect could lead anywhere, and a proxy from the
            // environment would bypass the address policy.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .user_agent("sipmask-webhook")
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Client { http, allow })
    }

    /// POSTs `body` signed with `secret`; `Ok` on a 2xx answer.
    pub async fn post(
        &self,
        url: &str,
        body: String,
        secret: &str,
        event_id: &str,
    ) -> Result<(), String> {
        let url = parse_url(url).map_err(|e| e.to_string())?;
        if let Some(ip) = literal(&url) {
            if !permitted(ip, &self.allow) {
                return Err(UrlError::Refused(ip.to_string()).to_string());
            }
        }
        let sig = super::hmac::signature(secret, crate::time::now(), &body);
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("sipmask-event-id", event_id)
            .header("sipmask-signature", sig)
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("status {}", status.as_u16()))
        }
    }
}

/// The whole chain of causes: reqwest's top error says only "error sending
/// request", the reason (refused address, certificate) is further down.
fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    // A missing or partly unreadable system store leaves https to the
    // certificates that did load (and to ca_file); http still works.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let bad = |reason: String| ClientError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in the file".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_strictly() {
        let u = parse_url("http://127.0.0.1:9000/hooks?x=1").expect("ok");
        assert_eq!(u.port(), Some(9000));
        assert!(parse_url("https://example.com/").is_ok());
        assert_eq!(
            parse_url("http://a/x\r\nDELETE /admin HTTP/1.1"),
            Err(UrlError::Control)
        );
        assert_eq!(parse_url("ftp://example.com/"), Err(UrlError::Scheme));
        assert_eq!(
            parse_url("http://u:p@example.com/"),
            Err(UrlError::Credentials)
        );
        assert!(matches!(
            parse_url("http://"),
            Err(UrlError::Syntax(_)) | Err(UrlError::Host)
        ));
    }

    #[tokio::test]
    async fn inside_addresses_in_every_spelling_are_refused() {
        for u in [
            "http://127.0.0.1/",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://10.0.0.1/",
            "http://0/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://localhost/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(
                matches!(check_url(u, &[]).await, Err(UrlError::Refused(_))),
                "{u}"
            );
        }
        let lo = [Network::parse("127.0.0.0/8").expect("net")];
        assert!(check_url("http://2130706433:8/", &lo).await.is_ok());
    }
}
