//! Verification: a request's headers and raw body against a hook's keys, in constant time.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use sha2::Digest;

use super::parse::{self, Malformed};
use super::providers::{self, any_match, ed25519::PublicKey, Delivery, Rejection};
use super::scheme::{Encoding, EventSource, Scheme};
use super::secret::{Key, KeyError, Secret};

/// Why a request's signature was refused. The server answers every variant with the same generic 401;
/// the variant goes to the diagnostics, so operators can tell a misconfigured sender from a forger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing header {0}")]
    Missing(String),
    #[error("malformed {header}: {reason}")]
    Malformed { header: String, reason: Malformed },
    #[error("signature mismatch (no configured secret matches)")]
    Mismatch,
    #[error("timestamp outside tolerance ({skew_secs} s from now, {tolerance_secs} s allowed)")]
    OutsideTolerance { skew_secs: i64, tolerance_secs: u64 },
    /// What a provider verifier (`providers`) refused for a reason of its own: a missing or
    /// malformed body field, a body that does not match Twilio's signed `bodySHA256`.
    #[error(transparent)]
    Provider(Rejection),
}

impl From<Rejection> for SignatureError {
    /// The reasons both enums share keep the core's variants (and texts), so diagnostics read the
    /// same whichever verifier refused.
    fn from(r: Rejection) -> SignatureError {
        match r {
            // Header names (one, or "a, b or c"); a body field keeps the provider's own wording.
            Rejection::Missing(name) if !name.contains("body") && !name.contains("field") => {
                SignatureError::Missing(name.to_string())
            }
            Rejection::Malformed { what, reason } => SignatureError::Malformed {
                header: what.to_string(),
                reason: Malformed(reason),
            },
            Rejection::Mismatch => SignatureError::Mismatch,
            Rejection::OutsideTolerance {
                skew_secs,
                tolerance_secs,
            } => SignatureError::OutsideTolerance {
                skew_secs,
                tolerance_secs,
            },
            other => SignatureError::Provider(other),
        }
    }
}

impl SignatureError {
    /// A short stable name for metrics and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            SignatureError::Missing(_) => "missing",
            SignatureError::Malformed { .. } => "malformed",
            SignatureError::Mismatch => "mismatch",
            SignatureError::OutsideTolerance { .. } => "outside_tolerance",
            SignatureError::Provider(r) => r.kind(),
        }
    }
}

/// What the sender expects back for a verified request that is a handshake, not an event: it is
/// answered exactly so and not logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// 200, `text/plain`, exactly this body (Twitch's `webhook_callback_verification` challenge).
    PlainText(String),
    /// 200, `application/json`, exactly this body (Zoom's `endpoint.url_validation`, Discord's
    /// Interactions PONG, Slack's challenge).
    Json(String),
    /// 204 and no body (Discord's Webhook Events PING).
    NoContent,
}

/// A body whose signature checked out. Only [`Verifier::verify`] can make one.
#[derive(Debug, Clone)]
pub struct Verified {
    body: Bytes,
    delivery_id: Option<String>,
    event_header: Option<String>,
    /// The event type a provider verifier found ([`EventSource::Verifier`]).
    event_type: Option<String>,
    handshake: Option<Handshake>,
}

impl Verified {
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// The sender's delivery id when the scheme carries one in a header.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }
    /// The scheme's event-type header, when the sender sent one (see [`EventSource::Header`]).
    pub fn event_header(&self) -> Option<&str> {
        self.event_header.as_deref()
    }
    /// The event type the provider's verifier found (see [`EventSource::Verifier`]).
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }
    /// Set when the request is the sender checking the endpoint, not an event.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_ref()
    }

    fn new(body: Bytes, delivery_id: Option<String>, event_header: Option<String>) -> Verified {
        Verified {
            body,
            delivery_id,
            event_header,
            event_type: None,
            handshake: None,
        }
    }

    /// A provider verifier's labels: the id as its dedupe key, the event type capped.
    fn labelled(mut self, d: Delivery) -> Verified {
        self.delivery_id = d.delivery_id.as_deref().map(delivery_key);
        self.event_type = d.event_type.as_deref().map(|e| cap_label(e).to_owned());
        self
    }
}

/// Verifies one hook's requests. Built once per config load; cheap to share.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    keys: Vec<Key>,
    /// Ed25519 keys from the hook's `public_keys` (Discord, Standard Webhooks `v1a`); loaded from
    /// configuration only, never from a request.
    public_keys: Vec<PublicKey>,
    tolerance_secs: u64,
    allow_unsigned: bool,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, SignatureError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| SignatureError::Malformed {
            header: name.to_string(),
            reason: Malformed("not visible ASCII".into()),
        }),
    }
}

fn required<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, SignatureError> {
    header(headers, name)?.ok_or_else(|| SignatureError::Missing(name.to_string()))
}

/// The first of several alternative header names that is present (e.g. `webhook-id` / `svix-id`).
fn required_any<'a>(headers: &'a HeaderMap, names: &[&str]) -> Result<&'a str, SignatureError> {
    for n in names {
        if let Some(v) = header(headers, n)? {
            return Ok(v);
        }
    }
    Err(SignatureError::Missing(names.join(" or ")))
}

/// The longest delivery id kept as sent; a longer one is replaced by its hash.
pub const MAX_DELIVERY_ID_LEN: usize = 256;

/// Marks an id as a hash of the real one. A real id that starts with it is hashed too, so a sender
/// cannot name another delivery's hashed key.
const HASHED_ID_PREFIX: &str = "sha256:";

/// The form of a sender's delivery id used as its dedupe key and logged: the id itself when it is
/// at most [`MAX_DELIVERY_ID_LEN`] bytes, else `sha256:` + the hex SHA-256 of it. Header and body
/// ids both go through here, so length never turns de-duplication off and memory stays bounded.
pub fn delivery_key(id: &str) -> String {
    if id.len() <= MAX_DELIVERY_ID_LEN && !looks_hashed(id) {
        id.to_string()
    } else {
        hashed_key(id)
    }
}

/// `sha256:` + the hex SHA-256 of `value`: what stands for a key too long to use whole (here, and
/// for a `Nats-Msg-Id` over the header cap).
pub fn hashed_key(value: &str) -> String {
    format!(
        "{HASHED_ID_PREFIX}{}",
        hex::encode(sha2::Sha256::digest(value.as_bytes()))
    )
}

/// Whether `value` is spelled like a [`hashed_key`]: such a value is hashed as well, so no sender
/// can name another key's hash.
pub fn looks_hashed(value: &str) -> bool {
    value.starts_with(HASHED_ID_PREFIX)
}

/// A delivery id from a header, if present and printable, as its [`delivery_key`].
fn delivery_header(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        let v = headers.get(*n)?.to_str().ok()?.trim();
        (!v.is_empty()).then(|| delivery_key(v))
    })
}

/// Longest event type kept; a longer one is cut at a character boundary (it labels, it keys nothing).
pub const MAX_EVENT_LEN: usize = 256;

/// A label header's value (an event type), trimmed and capped; `None` when absent, empty or not
/// visible ASCII.
fn label_header(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty()).then(|| cap_label(v).to_owned())
}

/// `s` cut to at most [`MAX_EVENT_LEN`] bytes at a character boundary.
pub fn cap_label(s: &str) -> &str {
    if s.len() <= MAX_EVENT_LEN {
        return s;
    }
    let mut end = MAX_EVENT_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn with_header<T>(name: &str, r: Result<T, Malformed>) -> Result<T, SignatureError> {
    r.map_err(|reason| SignatureError::Malformed {
        header: name.to_string(),
        reason,
    })
}

impl Verifier {
    /// Prepares the keys for `secrets`. Fails only on a secret the scheme cannot use.
    pub fn new(
        scheme: Scheme,
        secrets: &[Secret],
        tolerance: Duration,
        allow_unsigned: bool,
    ) -> Result<Verifier, KeyError> {
        let keys = secrets
            .iter()
            .map(|s| Key::new(&scheme, s))
            .collect::<Result<_, _>>()?;
        Ok(Verifier::from_keys(scheme, keys, tolerance, allow_unsigned))
    }

    /// A verifier for keys already made (config makes them one by one, to name a bad secret).
    pub fn from_keys(
        scheme: Scheme,
        keys: Vec<Key>,
        tolerance: Duration,
        allow_unsigned: bool,
    ) -> Verifier {
        Verifier {
            scheme,
            keys,
            public_keys: Vec::new(),
            tolerance_secs: tolerance.as_secs(),
            allow_unsigned,
        }
    }

    /// The same verifier, also accepting signatures made with these Ed25519 keys.
    pub fn with_public_keys(mut self, public_keys: Vec<PublicKey>) -> Verifier {
        self.public_keys = public_keys;
        self
    }

    /// How many Ed25519 public keys it accepts.
    pub fn public_key_count(&self) -> usize {
        self.public_keys.len()
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// How many secrets it accepts (several while one is being rotated out).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// How far a signed timestamp may be from now (schemes that sign one).
    pub fn tolerance(&self) -> Duration {
        Duration::from_secs(self.tolerance_secs)
    }

    /// Whether it accepts requests without checking a signature (`allow_unsigned = true`).
    pub fn allows_unsigned(&self) -> bool {
        self.allow_unsigned
    }

    fn tags(&self, parts: &[&[u8]]) -> Vec<Vec<u8>> {
        self.keys.iter().map(|k| k.tag(parts)).collect()
    }

    /// The one replay-window rule, shared with the providers' verifiers.
    fn check_time(&self, sent: i64, now: i64) -> Result<(), SignatureError> {
        Ok(super::providers::check_window(
            sent,
            now,
            self.tolerance_secs,
        )?)
    }

    /// Verifies `body` against the scheme's headers at time `now` (unix seconds), for a request
    /// without a query string.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        now: i64,
    ) -> Result<Verified, SignatureError> {
        self.verify_request(headers, None, body, now.saturating_mul(1000))
    }

    /// Verifies a request: its headers, its query (Twilio signs the URL), its raw body, at
    /// `now_ms` (unix milliseconds; Linear signs a millisecond timestamp).
    pub fn verify_request(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        body: Bytes,
        now_ms: i64,
    ) -> Result<Verified, SignatureError> {
        let now = now_ms.div_euclid(1000);
        let delivery_id = self.delivery_id(headers);
        let event_header = match self.scheme.event_source() {
            EventSource::Header { name, .. } => label_header(headers, name),
            _ => None,
        };
        if self.allow_unsigned {
            return Ok(Verified::new(body, delivery_id, event_header));
        }
        if let Some(v) = self.verify_provider(headers, query, &body, now_ms)? {
            return Ok(v);
        }
        let ok = match &self.scheme {
            Scheme::Netbox => {
                let name = "x-hook-signature";
                let sig = with_header(name, parse::hex_digest(required(headers, name)?))?;
                any_match(&self.tags(&[&body]), &[sig])
            }
            Scheme::Github => {
                let name = "x-hub-signature-256";
                let sig = with_header(
                    name,
                    parse::prefixed_hex(required(headers, name)?, "sha256="),
                )?;
                any_match(&self.tags(&[&body]), &[sig])
            }
            Scheme::Gitlab => {
                let token = required(headers, "x-gitlab-token")?;
                let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
                any_match(&self.tags(&[]), &[digest.to_vec()])
            }
            Scheme::Shopify => {
                let name = "x-shopify-hmac-sha256";
                let sig = with_header(name, parse::base64_digest(required(headers, name)?))?;
                any_match(&self.tags(&[&body]), &[sig])
            }
            Scheme::Hmac {
                header: name,
                encoding,
                prefix,
                ..
            } => {
                let value = required(headers, name)?;
                let value = value.trim().strip_prefix(prefix.as_str()).ok_or_else(|| {
                    SignatureError::Malformed {
                        header: name.clone(),
                        reason: Malformed(format!("signature does not start with {prefix:?}")),
                    }
                })?;
                let sig = with_header(
                    name,
                    match encoding {
                        Encoding::Hex => parse::hex_digest(value),
                        Encoding::Base64 => parse::base64_digest(value),
                    },
                )?;
                any_match(&self.tags(&[&body]), &[sig])
            }
            Scheme::StandardWebhooks if !self.public_keys.is_empty() => {
                unreachable!("verify_provider handles Standard Webhooks with public keys")
            }
            Scheme::StandardWebhooks => {
                let id = required_any(headers, &["webhook-id", "svix-id"])?;
                let ts = required_any(headers, &["webhook-timestamp", "svix-timestamp"])?;
                let sent = with_header("webhook-timestamp", parse::unix_seconds(ts))?;
                let sigs = with_header(
                    "webhook-signature",
                    parse::standard_webhooks(required_any(
                        headers,
                        &["webhook-signature", "svix-signature"],
                    )?),
                )?;
                let ok = any_match(
                    &self.tags(&[id.as_bytes(), b".", ts.as_bytes(), b".", &body]),
                    &sigs,
                );
                if ok {
                    self.check_time(sent, now)?;
                }
                ok
            }
            Scheme::Stripe => {
                let name = "stripe-signature";
                let h = with_header(name, parse::stripe(required(headers, name)?))?;
                let ok = any_match(&self.tags(&[h.timestamp.as_bytes(), b".", &body]), &h.v1);
                if ok {
                    self.check_time(h.unix, now)?;
                }
                ok
            }
            Scheme::Slack => {
                let ts = required(headers, "x-slack-request-timestamp")?;
                let sent = with_header("x-slack-request-timestamp", parse::unix_seconds(ts))?;
                let name = "x-slack-signature";
                let sig = with_header(name, parse::prefixed_hex(required(headers, name)?, "v0="))?;
                let ok = any_match(
                    &self.tags(&[b"v0:", ts.trim().as_bytes(), b":", &body]),
                    &[sig],
                );
                if ok {
                    self.check_time(sent, now)?;
                }
                ok
            }
            Scheme::Gitea
            | Scheme::Bitbucket
            | Scheme::Pagerduty
            | Scheme::Linear
            | Scheme::Twitch
            | Scheme::Zoom
            | Scheme::Twilio { .. }
            | Scheme::Discord { .. } => unreachable!("verify_provider handles {:?}", self.scheme),
        };
        if ok {
            Ok(Verified::new(body, delivery_id, event_header))
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// The schemes verified by their own module in [`providers`]: `None` for the others.
    fn verify_provider(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
        body: &Bytes,
        now_ms: i64,
    ) -> Result<Option<Verified>, SignatureError> {
        let now = now_ms.div_euclid(1000);
        let tol = self.tolerance_secs;
        let secrets: Vec<&[u8]> = self.keys.iter().map(Key::bytes).collect();
        let plain = |d: Delivery| Verified::new(body.clone(), None, None).labelled(d);
        let v = match &self.scheme {
            Scheme::Gitea => {
                let v = providers::gitea::verify(headers, body, &secrets)?;
                // A form delivery is handed on as the JSON it signed, not the bytes sent.
                let payload = match v.payload {
                    std::borrow::Cow::Borrowed(_) => body.clone(),
                    std::borrow::Cow::Owned(json) => Bytes::from(json),
                };
                Verified::new(payload, None, None).labelled(v.delivery)
            }
            Scheme::Bitbucket => plain(providers::bitbucket::verify(headers, body, &secrets)?),
            Scheme::Pagerduty => plain(providers::pagerduty::verify(headers, body, &secrets)?),
            Scheme::Linear => plain(providers::linear::verify(
                headers, body, &secrets, now_ms, tol,
            )?),
            Scheme::Twitch => {
                use providers::twitch::MessageKind;
                let v = providers::twitch::verify(headers, body, &secrets, now, tol)?;
                let mut d = v.delivery;
                let handshake = match v.kind {
                    MessageKind::Verification { challenge } => {
                        Some(Handshake::PlainText(challenge))
                    }
                    // Logged like an event, under its own type, so a revoked subscription is seen.
                    MessageKind::Revocation => {
                        d.event_type = Some("revocation".into());
                        None
                    }
                    MessageKind::Notification | MessageKind::Other(_) => None,
                };
                let mut out = plain(d);
                out.handshake = handshake;
                out
            }
            Scheme::Zoom => {
                let v = providers::zoom::verify(headers, body, &secrets, now, tol)?;
                let mut out = plain(v.delivery);
                out.handshake = v.url_validation.map(Handshake::Json);
                out
            }
            Scheme::Twilio { public_url } => {
                let url = providers::twilio::request_url(public_url, query);
                plain(providers::twilio::verify(&url, headers, body, &secrets)?)
            }
            Scheme::Discord {
                endpoint,
                replay_window,
            } => {
                use providers::discord::{self, Message};
                let window = replay_window.then_some(tol);
                discord::verify(headers, body, &self.public_keys, now, window)?;
                let mut out = Verified::new(body.clone(), None, None);
                match discord::classify(*endpoint, body)? {
                    Message::InteractionPing => {
                        out.handshake = Some(Handshake::Json(discord::PONG.into()))
                    }
                    Message::WebhookPing => out.handshake = Some(Handshake::NoContent),
                    Message::Event {
                        delivery_id,
                        event_type,
                    } => {
                        out = out.labelled(Delivery {
                            delivery_id,
                            event_type,
                        })
                    }
                }
                out
            }
            Scheme::StandardWebhooks if !self.public_keys.is_empty() => {
                providers::standard_webhooks::verify(
                    headers,
                    body,
                    &secrets,
                    &self.public_keys,
                    now,
                    tol,
                )?;
                Verified::new(body.clone(), self.delivery_id(headers), None)
            }
            _ => return Ok(None),
        };
        Ok(Some(v))
    }

    fn delivery_id(&self, headers: &HeaderMap) -> Option<String> {
        match &self.scheme {
            Scheme::Github => delivery_header(headers, &["x-github-delivery"]),
            Scheme::Gitlab => delivery_header(headers, &["idempotency-key", "x-gitlab-event-uuid"]),
            Scheme::StandardWebhooks => delivery_header(headers, &["webhook-id", "svix-id"]),
            Scheme::Shopify => delivery_header(headers, &["x-shopify-webhook-id"]),
            Scheme::Hmac {
                delivery_id_header: Some(h),
                ..
            } => delivery_header(headers, &[h.as_str()]),
            _ => None,
        }
    }
}
