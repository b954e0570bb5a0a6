//! One delivery as the operator's page keeps it: everything the columns need, the headers
//! with every credential masked (scheme and length, never a value), and the body capped. Built
//! from what the router observed, before anything is stored, so the ring never holds a secret.

use std::sync::Arc;

use axum::http::Method;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::client_ip::Client;
use crate::http::observe::{KeptHeaders, Observed};
use crate::live_config::Hook;
use crate::metrics::Outcome;
use crate::signature::{self, Scheme, Secret};

/// Bytes of a body kept per delivery: enough for any NetBox or GitHub event, and it bounds the
/// ring to `recent` × 64 KiB whatever senders send.
pub const BODY_CAP: usize = 64 * 1024;

/// The columns of the list, the JSON API and the live stream. Kept as the request path had them
/// (shared path, address, id) and turned into text only when shown.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The record's own id, increasing; also the SSE event id.
    pub id: u64,
    #[serde(serialize_with = "rfc3339")]
    pub received_at: DateTime<Utc>,
    /// The hook's path (shared with the config's hook).
    #[serde(serialize_with = "display")]
    pub hook: Arc<str>,
    pub provider: Option<&'static str>,
    #[serde(serialize_with = "display")]
    pub client: Client,
    /// The metrics' outcome name.
    pub outcome: &'static str,
    pub status: u16,
    /// Why, in words; `None` for a plain accept.
    pub reason: Option<String>,
    /// Body bytes received (`None` when refused before the body was read).
    pub size: Option<usize>,
    pub event: Option<String>,
    pub delivery_id: Option<String>,
    pub event_id: Option<uuid::Uuid>,
    pub latency_ms: f64,
    /// The event's spool sequence number, to compare with each sink's confirmed point.
    #[serde(skip)]
    pub seq: Option<u64>,
}

/// A summary plus what only the detail page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    #[serde(flatten)]
    pub summary: Summary,
    #[serde(serialize_with = "display")]
    pub method: Method,
    /// Name and value, in the order received; credential values masked.
    pub headers: KeptHeaders,
    /// The first [`BODY_CAP`] bytes.
    pub body: Option<KeptBody>,
    pub body_truncated: bool,
    /// For a refusal at a hook: what the hook expected. Never a key or an expected signature.
    pub expected: Option<Expected>,
}

/// The first [`BODY_CAP`] bytes of a body, copied (so the request's buffer, and the memory budget
/// it holds, go when the request does: sharing it would let the ring hold `recent` bodies' worth
/// of the budget) and decoded to text only when shown: decoding on the request path cost ~11.7k of
/// the ~27k instructions recording took per 1.6 kB NetBox body (callgrind).
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

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Record {
    /// The record for `o`, id still 0 (the recorder numbers it).
    pub fn new(o: Observed<'_>) -> Record {
        let scheme = o.hook.map(|h| h.verifier.scheme());
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
                hook: o.hook.map_or_else(|| o.path.into(), |h| h.path.clone()),
                provider: scheme.map(|s| s.provider().name()),
                client: o.client,
                outcome: o.outcome.as_str(),
                status: o.status,
                reason: o.reason,
                size,
                event: o.seen.event,
                delivery_id: o.seen.delivery_id,
                event_id: o.seen.event_id,
                latency_ms: o.latency.as_secs_f64() * 1000.0,
                seq: o.seen.seq,
            },
            method: o.method.clone(),
            headers: o.seen.headers,
            body,
            body_truncated,
            expected: o.hook.filter(|_| refused).map(expected),
        }
    }
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
    use crate::http::observe::is_credential;

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
