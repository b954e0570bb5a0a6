//! The http relay sink: POSTs each event's body, as received, to an internal service, signed the
//! Standard Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`), so
//! that service verifies us with any Standard Webhooks library instead of every provider's scheme.
//!
//! What the answer means is decided once, in [`judge`]: 2xx delivered; 408, 429, 5xx, network
//! errors and timeouts retried (honouring `Retry-After`); 410 pauses the sink; any 3xx (never
//! followed) and other 4xx dead-letter the event. Whatever the peer says goes into an error only
//! bounded ([`EXCERPT_BYTES`]) and escaped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use reqwest::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{DeliveryError, Event, Sink};
use crate::signature::providers::standard_webhooks;
use crate::signature::{key_bytes, Scheme, Secret};

/// At most this much of a peer's answer (body, `Location`) goes into an error, escaped: enough to
/// read a service's one-line reason, too little to flood a dead letter or `/healthz`.
pub const EXCERPT_BYTES: usize = 200;
/// A 2xx body is read to its end (so the connection goes back to the pool) up to this much, then
/// the connection is dropped instead: a peer cannot make us read without bound.
const DRAIN_BYTES: usize = 64 << 10;
/// The secret's decoded length: the specification asks for 24 to 64 bytes (its reference
/// libraries generate 32).
pub const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
const SECRET_PREFIX: &str = "whsec_";

/// Why an http sink's settings are refused. No variant holds the secret or the URL's userinfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpConfigError {
    #[error("{0}")]
    Url(String),
    #[error("must be whsec_ followed by the base64 of 24 to 64 bytes ({0})")]
    Secret(String),
    #[error("{path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("{0}")]
    Client(String),
}

/// One `kind = "http"` sink, with resolved values.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub name: String,
    /// `http://` or `https://`, without userinfo (checked by [`parse_url`]).
    pub url: Url,
    /// The HMAC key: the base64 after `whsec_`, decoded. Never shown.
    pub key: Vec<u8>,
    /// Bound on one request, connecting and reading the answer included.
    pub timeout: Duration,
    /// The operator's private CA, added to the system's roots; kept as read at load, so a reload
    /// with a changed file restarts the sink.
    pub ca_file: Option<PathBuf>,
    pub ca_certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("name", &self.name)
            .field("url", &shown_url(&self.url))
            .field("key", &"***")
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// The relay's URL: http or https, a host, and no credentials (the relay signs every request; a
/// password in the URL would travel in every request and show in every diagnostic).
pub fn parse_url(text: &str) -> Result<Url, HttpConfigError> {
    let url =
        Url::parse(text.trim()).map_err(|e| HttpConfigError::Url(format!("not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(HttpConfigError::Url(
            "must not carry credentials (user:password@); the service verifies the signature made with secret".into(),
        ));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(HttpConfigError::Url(format!(
            "scheme {:?}: use http:// or https://",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(HttpConfigError::Url("has no host".into()));
    }
    Ok(url)
}

/// The signing key a `whsec_` secret stands for, decoded as a Standard Webhooks hook's would be.
pub fn signing_key(secret: &Secret) -> Result<Vec<u8>, HttpConfigError> {
    if !secret.expose().starts_with(SECRET_PREFIX.as_bytes()) {
        return Err(HttpConfigError::Secret("no whsec_ prefix".into()));
    }
    let key = key_bytes(&Scheme::StandardWebhooks, secret)
        .map_err(|e| HttpConfigError::Secret(format!("it {e}")))?;
    if !KEY_BYTES.contains(&key.len()) {
        return Err(HttpConfigError::Secret(format!(
            "it decodes to {} bytes",
            key.len()
        )));
    }
    Ok(key)
}

/// Every certificate in the PEM file `path`; refused when unreadable, not PEM, holding none, or
/// holding one a root store cannot take.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, HttpConfigError> {
    let bad = |reason: String| HttpConfigError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    let mut store = rustls::RootCertStore::empty();
    for c in &certs {
        store
            .add(c.clone())
            .map_err(|e| bad(format!("a certificate cannot be a root: {e}")))?;
    }
    Ok(certs)
}

/// The TLS settings every request and `check-config --connect` use: the system's roots (for https
/// only; read from the OS store, which is where operators put their own CAs, and where distroless
/// images ship Debian's bundle) plus `ca_file`. Returns the number of roots too.
fn tls_config(c: &HttpConfig) -> Result<(rustls::ClientConfig, usize), HttpConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    if c.url.scheme() == "https" {
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        for cert in &c.ca_certs {
            roots
                .add(cert.clone())
                .map_err(|e| HttpConfigError::CaFile {
                    path: c
                        .ca_file
                        .as_deref()
                        .unwrap_or(Path::new(""))
                        .display()
                        .to_string(),
                    reason: e.to_string(),
                })?;
        }
        if roots.is_empty() {
            return Err(HttpConfigError::Client(
                "no trusted root certificates: the system has none (install ca-certificates) and no ca_file is set".into(),
            ));
        }
    }
    let n = roots.len();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpConfigError::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((config, n))
}

/// The URL as diagnostics show it: no query or fragment (a token may sit there).
pub fn shown_url(url: &Url) -> String {
    let mut u = url.clone();
    let had_query = u.query().is_some();
    u.set_query(None);
    u.set_fragment(None);
    if had_query {
        format!("{u}?…")
    } else {
        u.to_string()
    }
}

/// What an answer means for the event, before its text is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry,
    DeadLetter,
    Pause,
}

/// The one place an HTTP status becomes a verdict. 408/429/5xx may change with time; 410 says the
/// endpoint is gone for every event; a redirect is not followed (a signed event goes only where the
/// operator said); any other 4xx will refuse this event again. Codes outside 1xx-5xx come from a
/// broken peer or proxy and may heal: retried.
pub fn judge(status: StatusCode) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Pause,
        408 | 429 | 500..=599 => Verdict::Retry,
        300..=499 => Verdict::DeadLetter,
        _ => Verdict::Retry,
    }
}

/// `Retry-After` as seconds or an HTTP date, from `now`; a date in the past is zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than u64 holds is still "a very long time": the runner bounds it.
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// At most [`EXCERPT_BYTES`] of `bytes`, escaped (printable ASCII as it is, the rest as `\xNN`),
/// with `…` when cut: one inert line whatever the peer sent.
pub fn excerpt(bytes: &[u8]) -> String {
    let cut = bytes.len() > EXCERPT_BYTES;
    let mut s = bytes[..bytes.len().min(EXCERPT_BYTES)]
        .escape_ascii()
        .to_string();
    if cut {
        s.push('…');
    }
    s
}

/// An error and its causes on one line (reqwest's own text is only "error sending request"); the
/// URL is left out (its query may hold a token), since the sink's name says where.
fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() && !out.contains("timed out") {
        out.push_str(" (timed out)");
    }
    out.escape_debug().to_string()
}

/// One `kind = "http"` sink: a pooled client (connections are kept between events).
pub struct HttpSink {
    name: String,
    url: Url,
    key: Vec<u8>,
    client: reqwest::Client,
    /// Whether the last request got an HTTP answer (any status), for `/healthz`.
    reached: AtomicBool,
}

impl HttpSink {
    pub fn new(c: &HttpConfig) -> Result<HttpSink, HttpConfigError> {
        let (tls, _) = tls_config(c)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            // Signed events go where the operator said, not through a proxy the environment names.
            .no_proxy()
            .timeout(c.timeout)
            .connect_timeout(c.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("webhook-listener/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpConfigError::Client(chain(e)))?;
        Ok(HttpSink {
            name: c.name.clone(),
            url: c.url.clone(),
            key: c.key.clone(),
            client,
            reached: AtomicBool::new(false),
        })
    }

    pub fn is_connected(&self) -> bool {
        self.reached.load(Ordering::Relaxed)
    }

    /// The request's headers: the signature (made now, so each attempt carries a fresh timestamp),
    /// the event's metadata, the original content type. A value that cannot be a header value (a
    /// sender's odd delivery id) is left out rather than sent mangled.
    fn headers(&self, event: &Event) -> HeaderMap {
        let id = event.id.to_string();
        let now = chrono::Utc::now().timestamp();
        let mut h = HeaderMap::new();
        let signed = standard_webhooks::sign_v1(&self.key, &id, now, &event.body);
        let meta = [
            ("webhook-hook", Some(event.hook.as_str())),
            ("webhook-provider", Some(event.provider.as_str())),
            ("webhook-event", event.event_type.as_deref()),
            ("webhook-delivery-id", event.delivery_id.as_deref()),
            ("content-type", event.content_type.as_deref()),
        ];
        let all = signed
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .chain(meta);
        for (name, value) in all {
            if let (Some(v), Ok(n)) = (value, HeaderName::from_bytes(name.as_bytes())) {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.insert(n, v);
                }
            }
        }
        h
    }
}

/// Up to `limit` bytes of the answer's body; stops early (dropping the connection) past it or on
/// any read error.
async fn read_some(resp: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c),
            Ok(None) | Err(_) => break,
        }
    }
    out
}

impl Sink for HttpSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, event: &Event) -> Result<(), DeliveryError> {
        let sent = self
            .client
            .post(self.url.clone())
            .headers(self.headers(event))
            .body(event.body.clone())
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                self.reached.store(false, Ordering::Relaxed);
                return Err(DeliveryError::retry(chain(e)));
            }
        };
        self.reached.store(true, Ordering::Relaxed);
        let status = resp.status();
        let verdict = judge(status);
        if verdict == Verdict::Delivered {
            // To the end, so the connection is reused; what it says does not matter.
            read_some(&mut resp, DRAIN_BYTES).await;
            return Ok(());
        }
        let header = |name: http::header::HeaderName| {
            resp.headers().get(name).map(|v| v.as_bytes().to_vec())
        };
        let retry_after = header(http::header::RETRY_AFTER)
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let location = header(http::header::LOCATION);
        let body = read_some(&mut resp, EXCERPT_BYTES + 1).await;
        let mut error = format!("HTTP {status}");
        if status.is_redirection() {
            error.push_str(" (redirect not followed)");
            match location {
                Some(l) => error.push_str(&format!(" Location: {}", excerpt(&l))),
                None => error.push_str(" without Location"),
            }
        }
        if !body.is_empty() {
            error.push_str(&format!(": {}", excerpt(&body)));
        }
        Err(match verdict {
            Verdict::Retry => DeliveryError::Retry { error, retry_after },
            Verdict::Pause => DeliveryError::Pause(format!(
                "{error} (the service says this endpoint is gone; send SIGHUP or restart once it is back)"
            )),
            Verdict::DeadLetter | Verdict::Delivered => DeliveryError::Permanent(error),
        })
    }
}

/// For `check-config --connect`: resolves the host and opens a TCP connection (and for https a
/// verified TLS session) within the sink's timeout; sends no request, so the service sees nothing.
pub async fn check(c: &HttpConfig) -> Result<String, String> {
    let shown = shown_url(&c.url);
    let fail = |what: String| format!("{shown}: {what}");
    let (tls, roots) = tls_config(c).map_err(|e| fail(e.to_string()))?;
    let port = c.url.port_or_known_default().unwrap_or(80);
    let host = c
        .url
        .host_str()
        .ok_or_else(|| fail("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let bound = c.timeout;
    let work = async {
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        let mut last = String::from("no address");
        let mut found = None;
        for a in &addrs {
            let t = Instant::now();
            match tokio::net::TcpStream::connect(a).await {
                Ok(s) => {
                    found = Some((s, *a, t.elapsed()));
                    break;
                }
                Err(e) => last = format!("TCP {a}: {e}"),
            }
        }
        let listed = addrs
            .iter()
            .map(|a| a.ip().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let (tcp, addr, took) = found.ok_or(format!("resolved to {listed}; {last}"))?;
        let mut said = format!(
            "{host} resolved to {listed}; TCP connected to {addr} in {} ms",
            took.as_millis()
        );
        if c.url.scheme() == "https" {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
            let t = Instant::now();
            let conn = tokio_rustls::TlsConnector::from(Arc::new(tls))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("{said}; TLS: {e}"))?;
            let (_, session) = conn.get_ref();
            let version = session
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            said.push_str(&format!(
                "; {version} in {} ms, certificate verified against {roots} root(s)",
                t.elapsed().as_millis()
            ));
        }
        Ok::<_, String>(said)
    };
    match tokio::time::timeout(bound, work).await {
        Ok(Ok(s)) => Ok(format!("{shown}: {s}")),
        Ok(Err(e)) => Err(fail(e)),
        Err(_) => Err(fail(format!("no connection within {} s", bound.as_secs()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_verdicts_as_documented() {
        let v = |n: u16| judge(StatusCode::from_u16(n).unwrap());
        for n in [200, 201, 202, 204, 299] {
            assert_eq!(v(n), Verdict::Delivered, "{n}");
        }
        for n in [408, 429, 500, 502, 503, 504, 599, 600, 999] {
            assert_eq!(v(n), Verdict::Retry, "{n}");
        }
        for n in [
            300, 301, 302, 303, 307, 308, 400, 401, 403, 404, 413, 422, 451, 499,
        ] {
            assert_eq!(v(n), Verdict::DeadLetter, "{n}");
        }
        assert_eq!(v(410), Verdict::Pause);
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "Tue, 99 Foo 2020"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn excerpts_are_bounded_and_inert() {
        let e = excerpt(b"a\x1b[2J\nb\xff\"");
        assert_eq!(e, "a\\x1b[2J\\nb\\xff\\\"");
        let long = excerpt(&[b'x'; 1000]);
        assert_eq!(long.chars().filter(|&c| c == 'x').count(), EXCERPT_BYTES);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn urls_refuse_credentials_and_other_schemes_without_echoing_them() {
        assert!(parse_url("http://internal:8080/hooks").is_ok());
        assert!(parse_url("https://[::1]/x?y=1").is_ok());
        let e = parse_url("https://user:hunter2@internal/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("credentials") && !e.contains("hunter2"), "{e}");
        assert!(parse_url("https://tok@internal/x").is_err());
        assert!(parse_url("ftp://internal/x")
            .unwrap_err()
            .to_string()
            .contains("ftp"));
        assert!(parse_url("internal:8080").is_err());
        assert!(parse_url("not a url").is_err());
        let u = parse_url("https://h:8443/p?token=abc#f").unwrap();
        assert_eq!(shown_url(&u), "https://h:8443/p?…");
    }

    #[test]
    fn secrets_must_be_whsec_and_24_to_64_bytes() {
        use base64::Engine;
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        for n in [24, 32, 64] {
            let key = signing_key(&Secret::new(format!("whsec_{}", b64(n)))).unwrap();
            assert_eq!(key, vec![7u8; n]);
        }
        for bad in [
            format!("whsec_{}", b64(23)),
            format!("whsec_{}", b64(65)),
            b64(32),
            "whsec_not base64!".into(),
            format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode([0u8; 32])
            ),
        ] {
            let e = signing_key(&Secret::new(bad.clone()))
                .unwrap_err()
                .to_string();
            assert!(!e.contains(&bad), "{e}");
            assert!(e.contains("whsec_"), "{e}");
        }
    }

    #[test]
    fn a_value_that_cannot_be_a_header_is_left_out_and_the_rest_signed() {
        let c = HttpConfig {
            name: "relay".into(),
            url: parse_url("http://127.0.0.1:9/").unwrap(),
            key: vec![7; 32],
            timeout: Duration::from_secs(1),
            ca_file: None,
            ca_certs: Vec::new(),
        };
        let sink = HttpSink::new(&c).unwrap();
        let mut e = crate::forward::testing::event(1);
        e.event_type = Some("push\r\nX-Injected: 1".into());
        e.delivery_id = Some("a\u{7f}b".into());
        let h = sink.headers(&e);
        assert!(h.get("webhook-event").is_none() && h.get("x-injected").is_none());
        assert!(h.get("webhook-delivery-id").is_none());
        assert_eq!(h["webhook-id"], e.id.to_string().as_str());
        assert_eq!(h["webhook-hook"], "/github");
        assert_eq!(h["content-type"], "application/json");
        let ts: i64 = h["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        let expected = standard_webhooks::sign_v1(&[7; 32], &e.id.to_string(), ts, &e.body);
        assert_eq!(h["webhook-signature"], expected[2].1.as_str());
        assert!(format!("{c:?}").contains("key: \"***\""));
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        assert!(load_ca_file(&f)
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
        std::fs::write(&f, "hello\n").unwrap();
        assert!(load_ca_file(&f).unwrap_err().to_string().contains("no PEM"));
        std::fs::write(
            &f,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(load_ca_file(&f).is_err());
    }
}
