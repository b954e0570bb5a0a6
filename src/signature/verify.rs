//! Verification: a request's headers and raw body against a hook's keys, in constant time.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use sha2::Digest;
use subtle::ConstantTimeEq;

use super::parse::{self, Malformed};
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
}

impl SignatureError {
    /// A short stable name for metrics and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            SignatureError::Missing(_) => "missing",
            SignatureError::Malformed { .. } => "malformed",
            SignatureError::Mismatch => "mismatch",
            SignatureError::OutsideTolerance { .. } => "outside_tolerance",
        }
    }
}

/// A body whose signature checked out. Only [`Verifier::verify`] can make one.
#[derive(Debug, Clone)]
pub struct Verified {
    body: Bytes,
    delivery_id: Option<String>,
    event_header: Option<String>,
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
}

/// True when any candidate equals any tag, comparing every pair in constant time.
fn any_match(tags: &[Vec<u8>], candidates: &[Vec<u8>]) -> bool {
    let mut found = subtle::Choice::from(0);
    for tag in tags {
        for c in candidates {
            found |= tag.as_slice().ct_eq(c.as_slice());
        }
    }
    found.into()
}

/// Verifies one hook's requests. Built once per config load; cheap to share.
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    keys: Vec<Key>,
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
    if id.len() <= MAX_DELIVERY_ID_LEN && !id.starts_with(HASHED_ID_PREFIX) {
        id.to_string()
    } else {
        format!(
            "{HASHED_ID_PREFIX}{}",
            hex::encode(sha2::Sha256::digest(id.as_bytes()))
        )
    }
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
            tolerance_secs: tolerance.as_secs(),
            allow_unsigned,
        }
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

    fn check_time(&self, sent: i64, now: i64) -> Result<(), SignatureError> {
        let skew = now.saturating_sub(sent);
        if skew.unsigned_abs() > self.tolerance_secs {
            return Err(SignatureError::OutsideTolerance {
                skew_secs: skew,
                tolerance_secs: self.tolerance_secs,
            });
        }
        Ok(())
    }

    /// Verifies `body` against the scheme's headers at time `now` (unix seconds).
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        now: i64,
    ) -> Result<Verified, SignatureError> {
        let delivery_id = self.delivery_id(headers);
        let event_header = match self.scheme.event_source() {
            EventSource::Header { name, .. } => label_header(headers, name),
            _ => None,
        };
        if self.allow_unsigned {
            return Ok(Verified {
                body,
                delivery_id,
                event_header,
            });
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
        };
        if ok {
            Ok(Verified {
                body,
                delivery_id,
                event_header,
            })
        } else {
            Err(SignatureError::Mismatch)
        }
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
