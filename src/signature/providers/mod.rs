//! Senders that sign in ways a generic "HMAC of the body" rule cannot express. Pure functions over
//! headers, the raw body, the hook's keys and the time, free of axum and tokio, so each can be checked
//! against its sender's published vectors and fuzzed alone. Every MAC comparison is constant time;
//! every refusal says why in a [`Rejection`] (never with a secret in it).
//!
//! - [`bitbucket`]: `X-Hub-Signature: sha256=<hex>` (SHA-256 despite GitHub's SHA-1 header name);
//!   event `X-Event-Key`, delivery `X-Request-UUID` (Cloud) or `X-Request-Id` (Data Center).
//! - [`discord`]: Ed25519 over `X-Signature-Timestamp` + body with the application's public key, and
//!   what to answer a PING on an Interactions endpoint (`{"type":1}`) or a Webhook Events one (204).
//! - [`ed25519`]: strict key loading (no small-order, no non-canonical keys) and `verify_strict`,
//!   shared by Discord and Standard Webhooks `v1a`.
//! - [`gitea`]: Gitea, Forgejo and Gogs: hex HMAC-SHA256 of the JSON payload, which for form
//!   deliveries is the decoded `payload=` field, not the bytes sent.
//! - [`linear`]: hex HMAC-SHA256 in `Linear-Signature`; the signed body's `webhookTimestamp` (ms)
//!   must be within the window (Linear's SDK: 60 s).
//! - [`pagerduty`]: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, any entry may match; event id and
//!   type from the V3 body (`event.id`, `event.event_type`).
//! - [`standard_webhooks`]: `webhook-signature` entries of both kinds, `v1` (HMAC, `whsec_`) and
//!   `v1a` (Ed25519, `whpk_` public keys), over `id.timestamp.body`.
//! - [`twilio`]: base64 HMAC-SHA1 of the public URL plus sorted form parameters, or of the URL alone
//!   when its `bodySHA256` covers a JSON body; the URL is tried with and without its default port.
//! - [`twitch`]: `sha256=<hex>` of id + timestamp + body, RFC 3339 timestamp in a 10-minute window,
//!   and the `webhook_callback_verification` challenge.
//! - [`zoom`]: `v0=<hex>` of `v0:{ts}:{body}`, and the `endpoint.url_validation` answer made with the
//!   secret that verified the request.

pub mod bitbucket;
pub mod discord;
pub mod ed25519;
pub mod gitea;
pub mod linear;
pub mod pagerduty;
pub mod standard_webhooks;
pub mod twilio;
pub mod twitch;
pub mod zoom;

#[cfg(test)]
mod proptests;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// Why a request was refused. The server answers each with the same 401; the variant and its text
/// go to diagnostics so an operator can tell a misconfigured sender from a forger. `kind()` matches
/// the names the existing `SignatureError` uses, so the wiring can map one onto the other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A header (or a field of the signed body) the scheme needs is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// Present but not in the sender's format.
    #[error("malformed {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// Well-formed, but no configured secret or key produced it.
    #[error("signature mismatch (no configured secret or key matches)")]
    Mismatch,
    /// The signature is good but the signed time is too far from now: a replay, or a skewed clock.
    #[error("timestamp outside tolerance ({skew_secs} s from now, {tolerance_secs} s allowed)")]
    OutsideTolerance { skew_secs: i64, tolerance_secs: u64 },
    /// Twilio: the URL's signed `bodySHA256` is not the SHA-256 of the body that arrived.
    #[error("body does not match the signed bodySHA256")]
    BodyHashMismatch,
}

impl Rejection {
    /// A short stable name for metrics and log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Missing(_) => "missing",
            Rejection::Malformed { .. } => "malformed",
            Rejection::Mismatch | Rejection::BodyHashMismatch => "mismatch",
            Rejection::OutsideTolerance { .. } => "outside_tolerance",
        }
    }
}

pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Rejection {
    Rejection::Malformed {
        what,
        reason: reason.into(),
    }
}

/// What most senders give besides the signature: a delivery id to de-duplicate on and an event type
/// to log. Both bounded (see [`bounded`]) so a sender cannot make a log line or dedupe key huge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: Option<String>,
    pub event_type: Option<String>,
}

/// Longest delivery id or event type kept; longer values are dropped rather than truncated, since a
/// truncated id could collide with another delivery's.
pub const MAX_LABEL_LEN: usize = 256;

/// `value` trimmed, if non-empty, at most [`MAX_LABEL_LEN`] bytes and free of control characters.
pub fn bounded(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty() && v.len() <= MAX_LABEL_LEN && !v.chars().any(char::is_control))
        .then(|| v.to_string())
}

/// A header as text. Non-visible-ASCII values are malformed rather than absent, so a sender that
/// sends garbage is told so instead of "missing".
pub(crate) fn header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, Rejection> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| malformed(name, "not visible ASCII")),
    }
}

pub(crate) fn required<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<&'a str, Rejection> {
    header(headers, name)?.ok_or(Rejection::Missing(name))
}

/// The first of `names` that is present, with its name; `missing` names them all in the error.
pub(crate) fn first_present<'a>(
    headers: &'a HeaderMap,
    names: &[&'static str],
    missing: &'static str,
) -> Result<(&'static str, &'a str), Rejection> {
    for n in names {
        if let Some(v) = header(headers, n)? {
            return Ok((n, v));
        }
    }
    Err(Rejection::Missing(missing))
}

/// The first of `names` present with a usable value, for delivery ids and event types, which are
/// labels, not proofs: an unusable one is ignored, never a reason to refuse.
pub(crate) fn label(headers: &HeaderMap, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| bounded(headers.get(*n)?.to_str().ok()?))
}

/// The media type of `Content-Type`, lower-cased, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(http::header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = v.split(';').next()?.trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// HMAC-SHA256 of the concatenated parts.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length, so this cannot fail.
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("hmac takes any key");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The HMAC-SHA256 of the parts under each of a hook's secrets, in order (rotation: any may match).
pub(crate) fn hmac_sha256_each(secrets: &[&[u8]], parts: &[&[u8]]) -> Vec<[u8; 32]> {
    secrets.iter().map(|s| hmac_sha256(s, parts)).collect()
}

/// HMAC-SHA1 of the concatenated parts (Twilio).
pub(crate) fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut m = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).expect("hmac takes any key");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The index of the first tag that equals any candidate. Every pair is compared in constant time and
/// every pair is compared, so timing tells neither the tag nor how far a forgery got; only which
/// secret matched can show, and that is needed (Zoom answers with the secret that verified).
pub(crate) fn matching_index<T: AsRef<[u8]>, C: AsRef<[u8]>>(
    tags: &[T],
    candidates: &[C],
) -> Option<usize> {
    let mut found = None;
    for (i, tag) in tags.iter().enumerate() {
        let mut hit = subtle::Choice::from(0);
        for c in candidates {
            hit |= tag.as_ref().ct_eq(c.as_ref());
        }
        if bool::from(hit) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

pub(crate) fn any_match<T: AsRef<[u8]>, C: AsRef<[u8]>>(tags: &[T], candidates: &[C]) -> bool {
    matching_index(tags, candidates).is_some()
}

/// Refuses `sent` (unix seconds) more than `tolerance_secs` from `now`, in either direction.
pub(crate) fn check_window(sent: i64, now: i64, tolerance_secs: u64) -> Result<(), Rejection> {
    let skew = now.saturating_sub(sent);
    if skew.unsigned_abs() > tolerance_secs {
        return Err(Rejection::OutsideTolerance {
            skew_secs: skew,
            tolerance_secs,
        });
    }
    Ok(())
}

/// Hex of either case, through the signature core's parser (odd lengths and non-hex refused),
/// with the header it came from named.
pub(crate) fn hex_sig(what: &'static str, value: &str) -> Result<Vec<u8>, Rejection> {
    super::parse::hex_digest(value).map_err(|e| malformed(what, e.0))
}

/// `prefix` then hex, through the signature core's parser.
pub(crate) fn prefixed_hex_sig(
    what: &'static str,
    value: &str,
    prefix: &str,
) -> Result<Vec<u8>, Rejection> {
    super::parse::prefixed_hex(value, prefix).map_err(|e| malformed(what, e.0))
}

/// Standard base64, padded or not.
pub(crate) fn base64_decode(value: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let value = value.trim();
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(value))
        .ok()
}

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Unix seconds as senders write them in timestamp headers, through the signature core's parser.
pub(crate) fn unix_seconds(what: &'static str, value: &str) -> Result<i64, Rejection> {
    super::parse::unix_seconds(value).map_err(|e| malformed(what, e.0))
}

/// `application/x-www-form-urlencoded` pairs decoded to exact bytes (`+` is a space, `%XX` a byte,
/// empty segments skipped), with none of the lossy UTF-8 replacement `form_urlencoded::parse` does:
/// two different bodies must not decode to the same signed content.
pub(crate) fn form_pairs(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decode = |s: &[u8]| -> Vec<u8> {
        let plus: Vec<u8> = s
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&plus).collect()
    };
    body.split(|&b| b == b'&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&seg[..i]), decode(&seg[i + 1..])),
            None => (decode(seg), Vec::new()),
        })
        .collect()
}
