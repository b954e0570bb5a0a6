//! Signature schemes and verification: pure functions over headers and the raw body, free of axum.
//!
//! The one way to obtain a [`Verified`] body is [`Verifier::verify`], so code that parses a payload
//! cannot be handed an unverified one: forgetting verification is a compile error.

pub mod parse;
pub mod providers;

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::config::Secret;
pub use parse::Malformed;

/// The sender a hook expects, as written in `provider = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    Netbox,
    Github,
    Gitlab,
    StandardWebhooks,
    Stripe,
    Slack,
    Shopify,
    Hmac,
}

impl Provider {
    pub const ALL: [Provider; 8] = [
        Provider::Netbox,
        Provider::Github,
        Provider::Gitlab,
        Provider::StandardWebhooks,
        Provider::Stripe,
        Provider::Slack,
        Provider::Shopify,
        Provider::Hmac,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Provider::Netbox => "netbox",
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::StandardWebhooks => "standard-webhooks",
            Provider::Stripe => "stripe",
            Provider::Slack => "slack",
            Provider::Shopify => "shopify",
            Provider::Hmac => "hmac",
        }
    }
}

/// Digest used by the generic `hmac` provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

/// How the generic `hmac` provider's digest is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Hex,
    Base64,
}

/// A fully specified signature scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Netbox,
    Github,
    Gitlab,
    StandardWebhooks,
    Stripe,
    Slack,
    Shopify,
    Hmac {
        /// Lower-case header name.
        header: String,
        algorithm: Algorithm,
        encoding: Encoding,
        prefix: String,
        delivery_id_header: Option<String>,
    },
}

/// Where a scheme's delivery id (the key for de-duplication) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryIdSource {
    None,
    /// A top-level string field of the JSON body (Stripe's event `id`, Slack's `event_id`).
    BodyField(&'static str),
}

impl Scheme {
    /// The scheme of a named provider; `Provider::Hmac` gets sha256/hex defaults and no header,
    /// which config always fills in.
    pub fn from_provider(p: Provider) -> Scheme {
        match p {
            Provider::Netbox => Scheme::Netbox,
            Provider::Github => Scheme::Github,
            Provider::Gitlab => Scheme::Gitlab,
            Provider::StandardWebhooks => Scheme::StandardWebhooks,
            Provider::Stripe => Scheme::Stripe,
            Provider::Slack => Scheme::Slack,
            Provider::Shopify => Scheme::Shopify,
            Provider::Hmac => Scheme::Hmac {
                header: "x-signature".into(),
                algorithm: Algorithm::Sha256,
                encoding: Encoding::Hex,
                prefix: String::new(),
                delivery_id_header: None,
            },
        }
    }

    pub fn provider(&self) -> Provider {
        match self {
            Scheme::Netbox => Provider::Netbox,
            Scheme::Github => Provider::Github,
            Scheme::Gitlab => Provider::Gitlab,
            Scheme::StandardWebhooks => Provider::StandardWebhooks,
            Scheme::Stripe => Provider::Stripe,
            Scheme::Slack => Provider::Slack,
            Scheme::Shopify => Provider::Shopify,
            Scheme::Hmac { .. } => Provider::Hmac,
        }
    }

    /// Whether the signed content includes a timestamp, so a replay window applies.
    pub fn has_timestamp(&self) -> bool {
        matches!(
            self,
            Scheme::StandardWebhooks | Scheme::Stripe | Scheme::Slack
        )
    }

    pub fn delivery_id_source(&self) -> DeliveryIdSource {
        match self {
            Scheme::Stripe => DeliveryIdSource::BodyField("id"),
            Scheme::Slack => DeliveryIdSource::BodyField("event_id"),
            _ => DeliveryIdSource::None,
        }
    }

    /// Checks that a secret can be used as this scheme's key (Standard Webhooks secrets are base64).
    pub fn check_secret(&self, secret: &Secret) -> Result<(), String> {
        self.key_bytes(secret).map(|_| ())
    }

    /// The HMAC key a secret stands for.
    fn key_bytes(&self, secret: &Secret) -> Result<Vec<u8>, String> {
        match self {
            Scheme::StandardWebhooks => {
                let text = std::str::from_utf8(secret.expose())
                    .map_err(|_| "is not text (expected whsec_<base64>)".to_string())?;
                let b64 = text.strip_prefix("whsec_").unwrap_or(text);
                let key = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| "is not base64 after the whsec_ prefix".to_string())?;
                if key.is_empty() {
                    return Err("decodes to an empty key".to_string());
                }
                Ok(key)
            }
            _ => Ok(secret.expose().to_vec()),
        }
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            Scheme::Netbox => Algorithm::Sha512,
            Scheme::Hmac { algorithm, .. } => *algorithm,
            _ => Algorithm::Sha256,
        }
    }
}

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
}

impl Verified {
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// The sender's delivery id when the scheme carries one in a header.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }
}

/// HMAC state with the key already absorbed: cloning it skips re-hashing the key on every request.
#[derive(Clone)]
enum Key {
    Md5(Hmac<md5::Md5>),
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
    /// GitLab: the SHA-256 of the token, so comparison is constant-time whatever the lengths.
    Token([u8; 32]),
}

impl Key {
    fn new(scheme: &Scheme, key: &[u8]) -> Key {
        // `new_from_slice` accepts keys of any length for HMAC, so the expects below cannot fire.
        match scheme {
            Scheme::Gitlab => Key::Token(sha2::Sha256::digest(key).into()),
            _ => match scheme.algorithm() {
                Algorithm::Md5 => Key::Md5(Mac::new_from_slice(key).expect("hmac takes any key")),
                Algorithm::Sha1 => Key::Sha1(Mac::new_from_slice(key).expect("hmac takes any key")),
                Algorithm::Sha256 => {
                    Key::Sha256(Mac::new_from_slice(key).expect("hmac takes any key"))
                }
                Algorithm::Sha512 => {
                    Key::Sha512(Mac::new_from_slice(key).expect("hmac takes any key"))
                }
            },
        }
    }

    /// HMAC of the concatenated parts.
    fn tag(&self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]]) -> Vec<u8> {
            let mut m = m.clone();
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Key::Md5(m) => run(m, parts),
            Key::Sha1(m) => run(m, parts),
            Key::Sha256(m) => run(m, parts),
            Key::Sha512(m) => run(m, parts),
            Key::Token(t) => t.to_vec(),
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key([redacted])")
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

/// A delivery id from a header, if present and sane (bounded, printable) to use as a dedupe key.
fn delivery_header(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        let v = headers.get(*n)?.to_str().ok()?.trim();
        (!v.is_empty() && v.len() <= 256).then(|| v.to_string())
    })
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
    ) -> Result<Verifier, String> {
        let keys = secrets
            .iter()
            .map(|s| scheme.key_bytes(s).map(|k| Key::new(&scheme, &k)))
            .collect::<Result<_, _>>()?;
        Ok(Verifier {
            scheme,
            keys,
            tolerance_secs: tolerance.as_secs(),
            allow_unsigned,
        })
    }

    pub fn scheme(&self) -> &Scheme {
        &self.scheme
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
        if self.allow_unsigned {
            return Ok(Verified { body, delivery_id });
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
            Ok(Verified { body, delivery_id })
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

/// The headers a sender of `scheme` would send for `body`, signed with `secret`: for the `sign`
/// command, so operators can test a setup with curl. `timestamp` and `id` are used where the scheme
/// signs them.
pub fn sign(
    scheme: &Scheme,
    secret: &Secret,
    body: &[u8],
    timestamp: i64,
    id: &str,
) -> Result<Vec<(String, String)>, String> {
    let key = Key::new(scheme, &scheme.key_bytes(secret)?);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let ts = timestamp.to_string();
    let h = |n: &str, v: String| (n.to_string(), v);
    Ok(match scheme {
        Scheme::Netbox => vec![h("X-Hook-Signature", hex::encode(key.tag(&[body])))],
        Scheme::Github => vec![
            h(
                "X-Hub-Signature-256",
                format!("sha256={}", hex::encode(key.tag(&[body]))),
            ),
            h("X-GitHub-Delivery", id.to_string()),
        ],
        Scheme::Gitlab => vec![h(
            "X-Gitlab-Token",
            String::from_utf8_lossy(secret.expose()).into_owned(),
        )],
        Scheme::Shopify => vec![
            h("X-Shopify-Hmac-Sha256", b64(&key.tag(&[body]))),
            h("X-Shopify-Webhook-Id", id.to_string()),
        ],
        Scheme::Hmac {
            header,
            encoding,
            prefix,
            delivery_id_header,
            ..
        } => {
            let tag = key.tag(&[body]);
            let enc = match encoding {
                Encoding::Hex => hex::encode(tag),
                Encoding::Base64 => b64(&tag),
            };
            let mut v = vec![h(header, format!("{prefix}{enc}"))];
            if let Some(d) = delivery_id_header {
                v.push(h(d, id.to_string()));
            }
            v
        }
        Scheme::StandardWebhooks => vec![
            h("webhook-id", id.to_string()),
            h("webhook-timestamp", ts.clone()),
            h(
                "webhook-signature",
                format!(
                    "v1,{}",
                    b64(&key.tag(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]))
                ),
            ),
        ],
        Scheme::Stripe => vec![h(
            "Stripe-Signature",
            format!(
                "t={ts},v1={}",
                hex::encode(key.tag(&[ts.as_bytes(), b".", body]))
            ),
        )],
        Scheme::Slack => vec![
            h("X-Slack-Request-Timestamp", ts.clone()),
            h(
                "X-Slack-Signature",
                format!(
                    "v0={}",
                    hex::encode(key.tag(&[b"v0:", ts.as_bytes(), b":", body]))
                ),
            ),
        ],
    })
}

#[cfg(test)]
mod tests;
