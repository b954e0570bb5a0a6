//! What the router hands an [`Observer`] about every finished hook request: the operator's page
//! records it. A trait here, implemented above (`admin`), so this floor names nothing above it; and
//! the capture happens only when an observer is set, so a server without one pays nothing.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::client_ip::Client;
use crate::live_config::Hook;
use crate::metrics::Outcome;
use crate::signature::Scheme;

/// Sees each hook request once, where it is counted and logged. Must return at once: it runs on
/// the request path, before the response is sent.
pub trait Observer: Send + Sync + 'static {
    fn observe(&self, request: Observed<'_>);
}

/// What was learnt while serving a request, beyond its outcome. Filled only for an observer.
#[derive(Debug, Default)]
pub struct Seen {
    /// As received, credentials already masked.
    pub headers: KeptHeaders,
    /// The body when it was read (a refusal before reading leaves it `None`); shares the buffer.
    pub body: Option<Bytes>,
    /// The event type, as the log line records it.
    pub event: Option<String>,
    /// The delivery id the dedupe table keys on.
    pub delivery_id: Option<String>,
    /// The id the log line and every sink carry (UUIDv7), once the line is written.
    pub event_id: Option<uuid::Uuid>,
    /// The event's sequence number in the spool (with sinks configured): a sink whose confirmed
    /// point has passed it is done with it.
    pub seq: Option<u64>,
}

/// One finished hook request.
pub struct Observed<'a> {
    /// `None` for a path no hook has.
    pub hook: Option<&'a Hook>,
    /// The request path.
    pub path: &'a str,
    pub method: &'a Method,
    pub client: Client,
    pub received_at: DateTime<Utc>,
    pub latency: Duration,
    pub outcome: Outcome,
    /// The answer's status code.
    pub status: u16,
    /// In words ([`super::error::ApiError::reason`]); `None` for a plain accept.
    pub reason: Option<String>,
    pub seen: Seen,
}

/// A request's headers as an observer keeps them: every name and shown value in one buffer, each
/// credential value already replaced by [`mask`], so what is kept never holds a secret. One
/// allocation per request (two with the spans) instead of a `HeaderMap` clone plus two `String`s
/// per header.
#[derive(Debug, Clone, Default)]
pub struct KeptHeaders {
    text: String,
    /// Where each name and its value end in `text`.
    ends: Vec<(u32, u32)>,
}

/// Header bytes kept per request: a head is at most 64 KiB (hyper's read buffer), this keeps the
/// ring's share bounded and every offset in a `u32`.
const HEADERS_CAP: usize = 16 * 1024;

impl KeptHeaders {
    /// `map` in the order received, credentials masked for `scheme`'s hook. Values are shown as
    /// text, invalid UTF-8 replaced; past [`HEADERS_CAP`] bytes the rest is left out.
    pub fn capture(map: &HeaderMap, scheme: Option<&Scheme>) -> KeptHeaders {
        let size: usize = map.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
        let mut kept = KeptHeaders {
            text: String::with_capacity(size.min(HEADERS_CAP)),
            ends: Vec::with_capacity(map.len()),
        };
        for (name, value) in map {
            let name = name.as_str();
            if kept.text.len() + name.len() + value.len() > HEADERS_CAP {
                break;
            }
            kept.text.push_str(name);
            let name_end = kept.text.len();
            if is_credential(name, scheme) {
                mask_into(&mut kept.text, value.as_bytes());
            } else {
                // Visible ASCII, as nearly every value is, checks cheaper than `from_utf8`.
                match value.to_str() {
                    Ok(v) => kept.text.push_str(v),
                    Err(_) => kept
                        .text
                        .push_str(&String::from_utf8_lossy(value.as_bytes())),
                }
            }
            // Both below HEADERS_CAP plus one mask, so they fit.
            kept.ends.push((name_end as u32, kept.text.len() as u32));
        }
        kept
    }

    /// Name and shown value, in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&(n, v)| {
            let (n, v) = (n as usize, v as usize);
            let pair = (&self.text[start..n], &self.text[n..v]);
            start = v;
            pair
        })
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// As `[[name, value], …]`.
impl serde::Serialize for KeptHeaders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|(n, v)| [n, v]))
    }
}

/// A header that carries (or may carry) a credential: every scheme's signature or token header,
/// and anything named like one. Masking too much costs a little insight; too little, a secret.
pub fn is_credential(name: &str, scheme: Option<&Scheme>) -> bool {
    if let Some(Scheme::Hmac { header, .. }) = scheme {
        if name == header {
            return true;
        }
    }
    // GitLab's delivery id, not a credential.
    name != "idempotency-key" && names_a_credential(name.as_bytes())
}

/// Whether `name` (lower case, as every `HeaderName` is) contains one of the words a credential's
/// header is named with: `signature`, `token`, `secret`, `auth`, `cookie`, `hmac`, `password`,
/// `session`, `key`. One pass that looks further only at a word's first letter: nine
/// `str::contains` cost ~2k instructions per header (callgrind), most of what recording a request
/// cost; comparing all nine first letters at every byte still ~400.
fn names_a_credential(name: &[u8]) -> bool {
    // Sliced only at a candidate letter (slicing at every byte was ~350 instructions of bounds
    // checks per request), and literal needles: a few inline loads each, not a `memcmp` call.
    name.iter().enumerate().any(|(i, &b)| {
        let rest = || &name[i..];
        match b {
            b's' => {
                rest().starts_with(b"signature")
                    || rest().starts_with(b"secret")
                    || rest().starts_with(b"session")
            }
            b't' => rest().starts_with(b"token"),
            b'a' => rest().starts_with(b"auth"),
            b'c' => rest().starts_with(b"cookie"),
            b'h' => rest().starts_with(b"hmac"),
            b'p' => rest().starts_with(b"password"),
            b'k' => rest().starts_with(b"key"),
            _ => false,
        }
    })
}

/// `value` as its scheme and its length only: `sha256=‹masked, 71 bytes›`, `Bearer ‹masked, 47
/// bytes›`, `‹masked, 128 bytes›` for bare hex. A scheme is shown only when it is one of the known
/// names, so no part of a free-form token (`my-secret token`) is ever shown as one.
pub fn mask(value: &[u8]) -> String {
    let mut out = String::new();
    mask_into(&mut out, value);
    out
}

fn mask_into(out: &mut String, value: &[u8]) {
    const SCHEMES: [&str; 11] = [
        "bearer", "basic", "token", "sha1", "sha256", "sha512", "md5", "v0", "v1", "v1a", "t",
    ];
    // No scheme is longer than six letters: a bare 128-character hex signature is not scanned
    // whole (that was ~700 instructions per request).
    let word = value
        .iter()
        .take(7)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    if let Some(b'=' | b',' | b' ') = value.get(word) {
        if SCHEMES
            .iter()
            .any(|s| s.as_bytes().eq_ignore_ascii_case(&value[..word]))
        {
            // ASCII: alphanumerics and one separator.
            out.push_str(&String::from_utf8_lossy(&value[..=word]));
        }
    }
    // `itoa`, not `write!`: the formatting machinery was ~250 instructions per masked value.
    out.push_str("‹masked, ");
    out.push_str(itoa::Buffer::new().format(value.len()));
    out.push_str(" bytes›");
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn credential_names_are_found_anywhere_in_the_name() {
        for name in [
            "x-hook-signature",
            "authorization",
            "x-gitlab-token",
            "cookie",
            "x-api-key",
            "x-shopify-hmac-sha256",
            "session-id",
            "x-secret",
            "x-password",
            "key",
        ] {
            assert!(is_credential(name, None), "{name}");
        }
        for name in [
            "content-type",
            "x-github-event",
            "idempotency-key",
            "host",
            "x-ke",
            "",
        ] {
            assert!(!is_credential(name, None), "{name}");
        }
        let hmac = Scheme::Hmac {
            header: "x-sig".into(),
            algorithm: crate::signature::Algorithm::Sha256,
            encoding: crate::signature::Encoding::Hex,
            prefix: String::new(),
            delivery_id_header: None,
            event_header: None,
        };
        assert!(is_credential("x-sig", Some(&hmac)));
    }

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
    fn kept_headers_are_in_order_masked_and_capped() {
        let mut map = HeaderMap::new();
        map.append("x-hook-signature", HeaderValue::from_static("abcd"));
        map.append("x-note", HeaderValue::from_static("<b>one</b>"));
        map.append("x-note", HeaderValue::from_static("two"));
        map.append("authorization", HeaderValue::from_static("Bearer hunter2"));
        map.append("x-bytes", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let kept = KeptHeaders::capture(&map, Some(&Scheme::Netbox));
        let pairs: Vec<_> = kept.iter().collect();
        assert_eq!(
            pairs,
            [
                ("x-hook-signature", "‹masked, 4 bytes›"),
                ("x-note", "<b>one</b>"),
                ("x-note", "two"),
                ("authorization", "Bearer ‹masked, 14 bytes›"),
                ("x-bytes", "caf\u{fffd}"),
            ]
        );
        assert_eq!(
            serde_json::to_value(&kept).unwrap(),
            serde_json::json!([
                ["x-hook-signature", "‹masked, 4 bytes›"],
                ["x-note", "<b>one</b>"],
                ["x-note", "two"],
                ["authorization", "Bearer ‹masked, 14 bytes›"],
                ["x-bytes", "caf\u{fffd}"],
            ])
        );

        let mut big = HeaderMap::new();
        for i in 0..40 {
            let v = HeaderValue::from_str(&"v".repeat(1000)).unwrap();
            big.append(
                axum::http::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                v,
            );
        }
        let kept = KeptHeaders::capture(&big, None);
        assert!(
            kept.len() < 40 && kept.text.len() <= HEADERS_CAP,
            "{}",
            kept.len()
        );
    }
}
