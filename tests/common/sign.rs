//! The independent signer: what each provider's documentation says a sender sends, computed with
//! the `hmac`, `sha1`, `sha2`, `md-5`, `base64` and `hex` crates directly, never with the crate's
//! `signature::sign`, so a bug shared by signer and verifier cannot pass. Its output is checked
//! against the providers' published vectors in the signature unit tests.
//!
//! One file, included with `#[path]` by the signature unit tests, the integration tests, the bench
//! and the fuzz targets. It names schemes with the crate's own types, which the including module
//! brings into scope as `Algorithm`, `Encoding` and `Scheme` (the types only, not their code).
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};

use super::{Algorithm, Encoding, Scheme};

/// HMAC of the concatenated parts.
pub fn mac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <M as Mac>::new_from_slice(key).expect("hmac takes any key");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Md5 => run::<Hmac<md5::Md5>>(key, parts),
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
        Algorithm::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
    }
}

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A digest as the generic `hmac` provider writes it.
pub fn encode(encoding: Encoding, tag: &[u8]) -> String {
    match encoding {
        Encoding::Hex => hex::encode(tag),
        Encoding::Base64 => b64(tag),
    }
}

/// The HMAC key a configured secret stands for: Standard Webhooks secrets are `whsec_` (optional)
/// and base64; every other scheme keys with the secret's bytes as they are (Stripe's `whsec_…`
/// included).
pub fn key_for(scheme: &Scheme, secret: &[u8]) -> Vec<u8> {
    match scheme {
        Scheme::StandardWebhooks => {
            let text = std::str::from_utf8(secret).expect("a whsec_ secret is text");
            B64.decode(text.strip_prefix("whsec_").unwrap_or(text))
                .expect("a whsec_ secret is base64")
        }
        _ => secret.to_vec(),
    }
}

/// The headers a signature needs, no more, made with the raw HMAC `key` (for GitLab, the token).
/// `ts` and `id` are used where the scheme signs them.
pub fn signature_headers(
    scheme: &Scheme,
    key: &[u8],
    body: &[u8],
    ts: i64,
    id: &str,
) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let p = |n: &str, v: String| (n.to_string(), v);
    match scheme {
        Scheme::Netbox => vec![p(
            "x-hook-signature",
            hex::encode(mac(Algorithm::Sha512, key, &[body])),
        )],
        Scheme::Github => vec![p(
            "x-hub-signature-256",
            format!(
                "sha256={}",
                hex::encode(mac(Algorithm::Sha256, key, &[body]))
            ),
        )],
        Scheme::Gitlab => vec![p(
            "x-gitlab-token",
            String::from_utf8(key.to_vec()).expect("a GitLab token is text"),
        )],
        Scheme::Shopify => vec![p(
            "x-shopify-hmac-sha256",
            b64(&mac(Algorithm::Sha256, key, &[body])),
        )],
        Scheme::StandardWebhooks => {
            let signed: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
            vec![
                p("webhook-id", id.to_string()),
                p("webhook-timestamp", ts.clone()),
                p(
                    "webhook-signature",
                    format!("v1,{}", b64(&mac(Algorithm::Sha256, key, &signed))),
                ),
            ]
        }
        Scheme::Stripe => {
            let tag = mac(Algorithm::Sha256, key, &[ts.as_bytes(), b".", body]);
            vec![p(
                "stripe-signature",
                format!("t={ts},v1={}", hex::encode(tag)),
            )]
        }
        Scheme::Slack => {
            let tag = mac(Algorithm::Sha256, key, &[b"v0:", ts.as_bytes(), b":", body]);
            vec![
                p("x-slack-request-timestamp", ts.clone()),
                p("x-slack-signature", format!("v0={}", hex::encode(tag))),
            ]
        }
        Scheme::Hmac {
            header,
            algorithm,
            encoding,
            prefix,
            ..
        } => {
            let tag = mac(*algorithm, key, &[body]);
            vec![p(header, format!("{prefix}{}", encode(*encoding, &tag)))]
        }
        // Gitea (docs "Webhooks": hex HMAC-SHA256 of the JSON payload, no prefix).
        Scheme::Gitea => vec![p(
            "x-gitea-signature",
            hex::encode(mac(Algorithm::Sha256, key, &[body])),
        )],
        // Bitbucket Cloud: SHA-256 in the header GitHub uses for SHA-1.
        Scheme::Bitbucket => vec![p(
            "x-hub-signature",
            format!(
                "sha256={}",
                hex::encode(mac(Algorithm::Sha256, key, &[body]))
            ),
        )],
        Scheme::Pagerduty => vec![p(
            "x-pagerduty-signature",
            format!("v1={}", hex::encode(mac(Algorithm::Sha256, key, &[body]))),
        )],
        // Linear signs the body only; its replay stamp is the body's `webhookTimestamp`.
        Scheme::Linear => vec![p(
            "linear-signature",
            hex::encode(mac(Algorithm::Sha256, key, &[body])),
        )],
        // Twitch: id + timestamp + body, no separators; the timestamp RFC 3339 with nanoseconds.
        Scheme::Twitch => {
            let stamp = twitch_timestamp(ts.parse().expect("ts"));
            let tag = mac(
                Algorithm::Sha256,
                key,
                &[id.as_bytes(), stamp.as_bytes(), body],
            );
            vec![
                p("twitch-eventsub-message-id", id.to_string()),
                p("twitch-eventsub-message-timestamp", stamp),
                p(
                    "twitch-eventsub-message-signature",
                    format!("sha256={}", hex::encode(tag)),
                ),
                p("twitch-eventsub-message-type", "notification".into()),
            ]
        }
        Scheme::Zoom => {
            let tag = mac(Algorithm::Sha256, key, &[b"v0:", ts.as_bytes(), b":", body]);
            vec![
                p("x-zm-request-timestamp", ts.clone()),
                p("x-zm-signature", format!("v0={}", hex::encode(tag))),
            ]
        }
        Scheme::Twilio { public_url } => {
            vec![p(
                "x-twilio-signature",
                twilio_signature(key, public_url, body),
            )]
        }
        // Ed25519: not an HMAC; `tests/common/ed25519.rs` signs with a private key.
        Scheme::Discord { .. } => Vec::new(),
    }
}

/// A unix time as Twitch writes `Twitch-Eventsub-Message-Timestamp` (docs example
/// `2023-07-19T14:56:51.634234626Z`): always nine fractional digits.
pub fn twitch_timestamp(unix: i64) -> String {
    let t = chrono::DateTime::from_timestamp(unix, 0).expect("time in range");
    format!("{}.123456789Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// `application/x-www-form-urlencoded` decoding by hand (`+` is a space, `%XX` a byte), so the
/// signer shares no parser with the verifier.
pub fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(h, 16).expect("%XX"));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).expect("utf-8")
}

/// Twilio's `X-Twilio-Signature` as twilio-python's `RequestValidator.compute_signature` makes it:
/// base64 HMAC-SHA1 of the URL followed by each form parameter's name and value, by name (each
/// name's values sorted); for a URL with `bodySHA256` the caller passes an empty `form`.
pub fn twilio_signature(auth_token: &[u8], url: &str, form: &[u8]) -> String {
    let form = std::str::from_utf8(form).expect("form is text");
    let mut params: Vec<(String, String)> = form
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (form_decode(k), form_decode(v))
        })
        .collect();
    params.sort();
    params.dedup();
    let mut signed = url.to_string();
    for (k, v) in params {
        signed.push_str(&k);
        signed.push_str(&v);
    }
    b64(&mac(Algorithm::Sha1, auth_token, &[signed.as_bytes()]))
}

/// What a sender of `scheme` sends for `body` with the configured `secret`: the signature headers,
/// then the header that carries the delivery id `id`, where the scheme has one.
pub fn request_headers(
    scheme: &Scheme,
    secret: &[u8],
    body: &[u8],
    ts: i64,
    id: &str,
) -> Vec<(String, String)> {
    let mut headers = signature_headers(scheme, &key_for(scheme, secret), body, ts, id);
    let delivery = match scheme {
        Scheme::Github => Some("x-github-delivery"),
        Scheme::Gitlab => Some("x-gitlab-event-uuid"),
        Scheme::Shopify => Some("x-shopify-webhook-id"),
        Scheme::Gitea => Some("x-gitea-delivery"),
        Scheme::Bitbucket => Some("x-request-uuid"),
        Scheme::Linear => Some("linear-delivery"),
        Scheme::Twilio { .. } => Some("i-twilio-idempotency-token"),
        Scheme::Hmac {
            delivery_id_header, ..
        } => delivery_id_header.as_deref(),
        _ => None,
    };
    if let Some(name) = delivery {
        headers.push((name.to_string(), id.to_string()));
    }
    headers
}
