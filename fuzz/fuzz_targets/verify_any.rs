//! `Verifier::verify` for every provider scheme, on a request built from the input:
//!
//! ```text
//! <now, unix seconds>\n
//! <Header-Name>: <value>\n      (any number of lines, any bytes in the value)
//! \n
//! <body>
//! ```
//!
//! Every scheme's verifier (fixed secrets, two of them as during a rotation) must return without
//! panicking. Then the same request, signed at time `now` by the independent signer the tests use,
//! must verify for every scheme it can sign from headers and body alone (not Linear, Twilio or
//! Discord) whatever else the fuzzed headers hold. (That the `sign` command
//! agrees with that signer is a unit test.)
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use strum::IntoEnumIterator;
use webhook_listener::signature::{Algorithm, Encoding, Provider, Scheme, Secret, Verifier};

#[path = "../../tests/common/sign.rs"]
mod sign;

const SECRET: &str = "my-webhook-secret";
const OLD_SECRET: &str = "an-older-secret";
/// Standard Webhooks secrets are base64 keys (this one is from the Svix docs).
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD_WHSEC: &str = "whsec_c2VjcmV0LWtleS0x";
const DELIVERY_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";

fn schemes() -> Vec<Scheme> {
    // Every named provider; the generic one below in several shapes.
    let mut v: Vec<Scheme> = Provider::iter()
        .filter(|p| *p != Provider::Hmac)
        .map(Scheme::from_provider)
        .collect();
    for (algorithm, encoding, prefix) in [
        (Algorithm::Md5, Encoding::Hex, ""),
        (Algorithm::Sha1, Encoding::Hex, "sha1="),
        (Algorithm::Sha256, Encoding::Hex, "sha256="),
        (Algorithm::Sha512, Encoding::Base64, ""),
        (Algorithm::Sha256, Encoding::Base64, "v1="),
    ] {
        v.push(Scheme::Hmac {
            header: "x-signature".into(),
            algorithm,
            encoding,
            prefix: prefix.into(),
            delivery_id_header: Some("x-request-id".into()),
            event_header: Some("x-event".into()),
        });
    }
    v
}

struct Fixture {
    /// (scheme, current secret, verifier with current and old secret)
    signed: Vec<(Scheme, Secret, Verifier)>,
    unsigned: Verifier,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let signed = schemes()
            .into_iter()
            .map(|scheme| {
                let (cur, old) = if scheme == Scheme::StandardWebhooks {
                    (WHSEC, OLD_WHSEC)
                } else {
                    (SECRET, OLD_SECRET)
                };
                let secrets = [Secret::new(old), Secret::new(cur)];
                let verifier =
                    Verifier::new(scheme.clone(), &secrets, Duration::from_secs(300), false)
                        .expect("fixed secrets are valid");
                (scheme, Secret::new(cur), verifier)
            })
            .collect();
        let unsigned = Verifier::new(Scheme::Github, &[], Duration::from_secs(300), true).unwrap();
        Fixture { signed, unsigned }
    })
}

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn parse(data: &[u8]) -> (i64, HeaderMap, Bytes) {
    let (first, mut rest) = split_line(data);
    let now = std::str::from_utf8(first)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1_700_000_000);
    let mut headers = HeaderMap::new();
    while !rest.is_empty() {
        let (line, after) = split_line(rest);
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    (now, headers, Bytes::copy_from_slice(rest))
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (now, headers, body) = parse(data);

    for (_, _, verifier) in &f.signed {
        let _ = verifier.verify(&headers, body.clone(), now);
    }
    let unsigned = f.unsigned.verify(&headers, body.clone(), now);
    assert!(unsigned.is_ok(), "allow_unsigned refused: {unsigned:?}");

    // Timestamps senders can write: up to the end of year 9999, the last an RFC 3339 timestamp
    // (Twitch's header) can hold; unix_seconds takes at most 12 digits anyway.
    if !(0..253_402_300_800).contains(&now) {
        return;
    }
    for (scheme, secret, verifier) in &f.signed {
        // Not signable from headers and body alone: Linear's signed timestamp is a field of the
        // (fuzzed) body, Twilio signs the public URL and query, Discord holds no secret (Ed25519).
        // Their round trips are in tests/it/providers_more.rs and the unit vectors.
        if matches!(
            scheme,
            Scheme::Linear | Scheme::Twilio { .. } | Scheme::Discord { .. }
        ) {
            continue;
        }
        let signed = sign::request_headers(scheme, secret.expose(), &body, now, DELIVERY_ID);
        let mut h = headers.clone();
        for (name, value) in signed {
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("the signer writes valid names"),
                HeaderValue::from_str(&value).expect("the signer writes valid values"),
            );
        }
        // Gitea signs the JSON inside `payload=` of a form body; the signer here signs the body
        // as sent, which is what Gitea signs for its JSON content type.
        if matches!(scheme, Scheme::Gitea) {
            h.remove(http::header::CONTENT_TYPE);
        }
        if let Err(e) = verifier.verify(&h, body.clone(), now) {
            panic!("{scheme:?}: an independently signed request was refused: {e}");
        }
    }
});
