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
    }
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
