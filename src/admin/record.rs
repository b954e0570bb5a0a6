//! One delivery as the operator's page keeps it: everything the columns need, the headers
//! with every credential masked (scheme and length, never a value), and the body capped. Built
//! from what the router observed, before anything is stored, so the ring never holds a secret.

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::http::observe::Observed;
use crate::live_config::Hook;
use crate::metrics::Outcome;
use crate::signature::{self, Scheme, Secret};

/// Bytes of a body kept per delivery: enough for any NetBox or GitHub event, and it bounds the
/// ring to `recent` × 64 KiB whatever senders send.
pub const BODY_CAP: usize = 64 * 1024;

/// The columns of the list, the JSON API and the live stream.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The record's own id, increasing; also the SSE event id.
    pub id: u64,
    #[serde(serialize_with = "rfc3339")]
    pub received_at: DateTime<Utc>,
    /// The hook's path.
    pub hook: String,
    pub provider: Option<&'static str>,
    pub client: String,
    /// The metrics' outcome name.
    pub outcome: &'static str,
    pub status: u16,
    /// Why, in words; `None` for a plain accept.
    pub reason: Option<String>,
    /// Body bytes received (`None` when refused before the body was read).
    pub size: Option<usize>,
    pub event: Option<String>,
    pub delivery_id: Option<String>,
    pub event_id: Option<String>,
    pub latency_ms: f64,
}

/// A summary plus what only the detail page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    #[serde(flatten)]
    pub summary: Summary,
    pub method: String,
    /// Name and value, in the order received; credential values masked.
    pub headers: Vec<(String, String)>,
    /// The first [`BODY_CAP`] bytes.
    pub body: Option<KeptBody>,
    pub body_truncated: bool,
    /// For a refusal at a hook: what the hook expected. Never a key or an expected signature.
    pub expected: Option<Expected>,
}

/// The first [`BODY_CAP`] bytes of a body, copied (so the request's buffer, and the memory budget
/// it holds, go when the request does) and decoded to text only when shown: decoding on the request
/// path cost ~11.7k of the ~27k instructions recording took per 1.6 kB NetBox body (callgrind).
#[derive(Debug, Clone)]
pub struct KeptBody(Bytes);

impl KeptBody {
    pub fn new(bytes: &[u8]) -> KeptBody {
        KeptBody(Bytes::copy_from_slice(bytes))
    }
    /// As text, invalid UTF-8 replaced.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl Serialize for KeptBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

/// What a hook checks, for the detail page of a refused delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Expected {
    pub provider: &'static str,
    /// The headers its sender sends (signature, timestamp, delivery id).
    pub headers: Vec<String>,
    /// The replay window, for timestamped schemes.
    pub tolerance_secs: Option<u64>,
    pub allow_ips: Vec<String>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

impl Record {
    /// The record for `o`, id still 0 (the recorder numbers it).
    pub fn new(o: Observed<'_>) -> Record {
        let scheme = o.hook.map(|h| h.verifier.scheme());
        let headers = o
            .seen
            .headers
            .iter()
            .map(|(name, value)| {
                let name = name.as_str();
                let shown = if is_credential(name, scheme) {
                    mask(value.as_bytes())
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name.to_owned(), shown)
            })
            .collect();
        let size = o.seen.body.as_ref().map(Bytes::len);
        let (body, body_truncated) = match &o.seen.body {
            None => (None, false),
            Some(b) => {
                let kept = &b[..b.len().min(BODY_CAP)];
                (Some(KeptBody::new(kept)), b.len() > BODY_CAP)
            }
        };
        let refused = !matches!(o.outcome, Outcome::accepted | Outcome::duplicate);
        Record {
            summary: Summary {
                id: 0,
                received_at: o.received_at,
                hook: o.path.to_owned(),
                provider: scheme.map(|s| s.provider().name()),
                client: o.client.to_string(),
                outcome: o.outcome.as_str(),
                status: o.status,
                reason: o.reason,
                size,
                event: o.seen.event,
                delivery_id: o.seen.delivery_id,
                event_id: o.seen.event_id,
                latency_ms: o.latency.as_secs_f64() * 1000.0,
            },
            method: o.method.to_string(),
            headers,
            body,
            body_truncated,
            expected: o.hook.filter(|_| refused).map(expected),
        }
    }
}

/// A header that carries (or may carry) a credential: every scheme's signature or token header,
/// and anything named like one. Masking too much costs a little insight; too little, a secret.
fn is_credential(name: &str, scheme: Option<&Scheme>) -> bool {
    if let Some(Scheme::Hmac { header, .. }) = scheme {
        if name == header {
            return true;
        }
    }
    const WORDS: [&str; 9] = [
        "signature",
        "token",
        "secret",
        "auth",
        "cookie",
        "hmac",
        "password",
        "session",
        "key",
    ];
    // GitLab's delivery id, not a credential.
    name != "idempotency-key" && WORDS.iter().any(|w| name.contains(w))
}

/// `value` as its scheme and its length only: `sha256=‹masked, 71 bytes›`, `Bearer ‹masked, 47
/// bytes›`, `‹masked, 128 bytes›` for bare hex. A scheme is shown only when it is one of the known
/// names, so no part of a free-form token (`my-secret token`) is ever shown as one.
pub fn mask(value: &[u8]) -> String {
    const SCHEMES: [&str; 11] = [
        "bearer", "basic", "token", "sha1", "sha256", "sha512", "md5", "v0", "v1", "v1a", "t",
    ];
    let word = value
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let scheme = match value.get(word) {
        Some(b'=' | b',' | b' ')
            if SCHEMES
                .iter()
                .any(|s| s.as_bytes().eq_ignore_ascii_case(&value[..word])) =>
        {
            String::from_utf8_lossy(&value[..=word]).into_owned()
        }
        _ => String::new(),
    };
    format!("{scheme}‹masked, {} bytes›", value.len())
}

/// What `hook` checks. The header names come from signing an empty body with a throwaway key, so
/// every scheme's list is the one `sign` prints, without a list kept here.
pub fn expected(hook: &Hook) -> Expected {
    let scheme = hook.verifier.scheme();
    Expected {
        provider: scheme.provider().name(),
        headers: signature_headers(scheme),
        tolerance_secs: scheme
            .has_timestamp()
            .then(|| hook.verifier.tolerance().as_secs()),
        allow_ips: hook.allow_ips.iter().map(ToString::to_string).collect(),
    }
}

/// The header names a sender of `scheme` sets.
pub fn signature_headers(scheme: &Scheme) -> Vec<String> {
    // A Standard Webhooks key must be `whsec_` + base64; any HMAC scheme takes it as bytes.
    let throwaway = Secret::new("whsec_dGhyb3dhd2F5IGtleSBmb3IgaGVhZGVyIG5hbWVzIG9ubHk=");
    signature::sign(scheme, &throwaway, b"", 0, "id")
        .map(|hs| hs.into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_the_scheme_and_length_only() {
        assert_eq!(mask(b"sha256=abcdef"), "sha256=‹masked, 13 bytes›");
        assert_eq!(mask(b"Bearer tok"), "Bearer ‹masked, 10 bytes›");
        assert_eq!(mask(b"v1,Zm9v"), "v1,‹masked, 7 bytes›");
        assert_eq!(mask(b"0123abcd"), "‹masked, 8 bytes›");
        assert_eq!(mask(b"t=1,v1=ab"), "t=‹masked, 9 bytes›");
        assert_eq!(mask(b"my-secret token"), "‹masked, 15 bytes›");
        assert_eq!(mask(b"hunter2 x"), "‹masked, 9 bytes›");
        assert_eq!(mask(b""), "‹masked, 0 bytes›");
    }

    #[test]
    fn every_scheme_names_its_signature_header() {
        for scheme in [
            Scheme::Netbox,
            Scheme::Github,
            Scheme::Stripe,
            Scheme::Slack,
        ] {
            let names = signature_headers(&scheme);
            assert!(
                names
                    .iter()
                    .any(|n| is_credential(&n.to_ascii_lowercase(), Some(&scheme))),
                "{scheme:?}: {names:?}"
            );
        }
        assert_eq!(signature_headers(&Scheme::Netbox), ["X-Hook-Signature"]);
    }
}
