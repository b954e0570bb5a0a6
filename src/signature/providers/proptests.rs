//! Tampering with any one byte of what a sender signs (body, timestamp, id, signature) is refused,
//! for every provider. Signatures are made by each module's `sign` (HMAC) or by `ring` (Ed25519),
//! then one byte is changed.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::*;

fn to_map(pairs: Vec<(String, String)>) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            HeaderName::try_from(k).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    h
}

fn flip(bytes: &[u8], at: usize, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let i = at % out.len();
    out[i] ^= mask;
    out
}

/// A header value with one of its signature bytes changed: decode, flip, re-encode with `enc`.
fn tamper_sig(
    h: &HeaderMap,
    name: &str,
    prefix: &str,
    at: usize,
    mask: u8,
    dec: fn(&str) -> Vec<u8>,
    enc: fn(&[u8]) -> String,
) -> HeaderMap {
    let v = h[name].to_str().unwrap();
    let raw = dec(v.strip_prefix(prefix).unwrap());
    let mut out = h.clone();
    let new = format!("{prefix}{}", enc(&flip(&raw, at, mask)));
    out.insert(
        HeaderName::try_from(name).unwrap(),
        HeaderValue::from_str(&new).unwrap(),
    );
    out
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}
fn hexed(b: &[u8]) -> String {
    hex::encode(b)
}
fn unb64(s: &str) -> Vec<u8> {
    base64_decode(s).unwrap()
}
fn b64(b: &[u8]) -> String {
    base64_encode(b)
}

/// A timestamp header with one digit changed to another: still well-formed, so only the signature
/// can refuse it.
fn bump_digit(h: &HeaderMap, name: &str, at: usize) -> HeaderMap {
    let v = h[name].to_str().unwrap().to_string();
    let digits: Vec<usize> = v
        .bytes()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    // The last digits, so the changed time stays within the window.
    let i = digits[digits.len() - 1 - at % 2];
    let mut b = v.into_bytes();
    b[i] = if b[i] == b'9' { b'0' } else { b[i] + 1 };
    let mut out = h.clone();
    out.insert(
        HeaderName::try_from(name).unwrap(),
        HeaderValue::from_bytes(&b).unwrap(),
    );
    out
}

const NOW: i64 = 1_700_000_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn bitbucket(body in proptest::collection::vec(any::<u8>(), 1..200), secret in "[a-z]{1,20}", at in any::<usize>(), mask in 1u8..) {
        let h = to_map(bitbucket::sign(secret.as_bytes(), &body, "d", "repo:push"));
        prop_assert!(bitbucket::verify(&h, &body, &[secret.as_bytes()]).is_ok());
        prop_assert!(bitbucket::verify(&h, &flip(&body, at, mask), &[secret.as_bytes()]).is_err());
        let bad = tamper_sig(&h, "x-hub-signature", "sha256=", at, mask, unhex, hexed);
        prop_assert!(bitbucket::verify(&bad, &body, &[secret.as_bytes()]).is_err());
    }

    #[test]
    fn gitea(body in proptest::collection::vec(any::<u8>(), 1..200), secret in "[a-z]{1,20}", at in any::<usize>(), mask in 1u8..) {
        let h = to_map(gitea::sign(secret.as_bytes(), &body, "d", "push"));
        prop_assert!(gitea::verify(&h, &body, &[secret.as_bytes()]).is_ok());
        prop_assert!(gitea::verify(&h, &flip(&body, at, mask), &[secret.as_bytes()]).is_err());
        let bad = tamper_sig(&h, "x-gitea-signature", "", at, mask, unhex, hexed);
        prop_assert!(gitea::verify(&bad, &body, &[secret.as_bytes()]).is_err());
    }

    #[test]
    fn pagerduty(body in proptest::collection::vec(any::<u8>(), 1..200), secret in "[a-z]{1,20}", at in any::<usize>(), mask in 1u8..) {
        let h = to_map(pagerduty::sign(&[secret.as_bytes()], &body));
        prop_assert!(pagerduty::verify(&h, &body, &[secret.as_bytes()]).is_ok());
        prop_assert!(pagerduty::verify(&h, &flip(&body, at, mask), &[secret.as_bytes()]).is_err());
        let bad = tamper_sig(&h, "x-pagerduty-signature", "v1=", at, mask, unhex, hexed);
        prop_assert!(pagerduty::verify(&bad, &body, &[secret.as_bytes()]).is_err());
    }

    #[test]
    fn linear(text in "[a-z ]{0,100}", secret in "[a-z]{1,20}", at in any::<usize>(), mask in 1u8..) {
        let body = format!(r#"{{"type":"Issue","data":"{text}","webhookTimestamp":{}}}"#, NOW * 1000);
        let body = body.as_bytes();
        let h = to_map(linear::sign(secret.as_bytes(), body, "d", "Issue"));
        let ok = |h: &HeaderMap, b: &[u8]| linear::verify(h, b, &[secret.as_bytes()], NOW * 1000, 60).is_ok();
        prop_assert!(ok(&h, body));
        prop_assert!(!ok(&h, &flip(body, at, mask)));
        prop_assert!(!ok(&tamper_sig(&h, "linear-signature", "", at, mask, unhex, hexed), body));
    }

    #[test]
    fn twitch(body in proptest::collection::vec(any::<u8>(), 1..200), secret in "[a-z]{1,20}", id in "[a-f0-9-]{1,36}", at in any::<usize>(), mask in 1u8..) {
        let h = to_map(twitch::sign(secret.as_bytes(), &body, &id, NOW, "channel.follow"));
        let ok = |h: &HeaderMap, b: &[u8]| twitch::verify(h, b, &[secret.as_bytes()], NOW, 600).is_ok();
        prop_assert!(ok(&h, &body));
        prop_assert!(!ok(&h, &flip(&body, at, mask)));
        prop_assert!(!ok(&bump_digit(&h, twitch::TIMESTAMP, at), &body));
        prop_assert!(!ok(&tamper_sig(&h, twitch::SIGNATURE, "sha256=", at, mask, unhex, hexed), &body));
        let mut other_id = h.clone();
        other_id.insert(twitch::ID, HeaderValue::from_str(&format!("{id}x")).unwrap());
        prop_assert!(!ok(&other_id, &body));
    }

    #[test]
    fn zoom(body in proptest::collection::vec(any::<u8>(), 1..200), secret in "[a-z]{1,20}", at in any::<usize>(), mask in 1u8..) {
        let h = to_map(zoom::sign(secret.as_bytes(), &body, NOW));
        let ok = |h: &HeaderMap, b: &[u8]| zoom::verify(h, b, &[secret.as_bytes()], NOW, 300).is_ok();
        prop_assert!(ok(&h, &body));
        prop_assert!(!ok(&h, &flip(&body, at, mask)));
        prop_assert!(!ok(&bump_digit(&h, zoom::TIMESTAMP, at), &body));
        prop_assert!(!ok(&tamper_sig(&h, zoom::SIGNATURE, "v0=", at, mask, unhex, hexed), &body));
    }

    #[test]
    fn standard_webhooks_v1(body in proptest::collection::vec(any::<u8>(), 1..200), key in proptest::collection::vec(any::<u8>(), 24..64), at in any::<usize>(), mask in 1u8..) {
        let h = to_map(standard_webhooks::sign_v1(&key, "msg_1", NOW, &body));
        let ok = |h: &HeaderMap, b: &[u8]| standard_webhooks::verify(h, b, &[&key], &[], NOW, 300).is_ok();
        prop_assert!(ok(&h, &body));
        prop_assert!(!ok(&h, &flip(&body, at, mask)));
        prop_assert!(!ok(&bump_digit(&h, "webhook-timestamp", at), &body));
        prop_assert!(!ok(&tamper_sig(&h, "webhook-signature", "v1,", at, mask, unb64, b64), &body));
    }

    #[test]
    fn standard_webhooks_v1a(body in proptest::collection::vec(any::<u8>(), 1..200), seed in any::<[u8; 32]>(), at in any::<usize>(), mask in 1u8..) {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let key = ed25519::PublicKey::from_bytes(pair.public_key().as_ref()).unwrap();
        let ts = NOW.to_string();
        let msg = [b"msg_1.".as_slice(), ts.as_bytes(), b".", &body].concat();
        let h = to_map(vec![
            ("webhook-id".into(), "msg_1".into()),
            ("webhook-timestamp".into(), ts.clone()),
            ("webhook-signature".into(), format!("v1a,{}", b64(pair.sign(&msg).as_ref()))),
        ]);
        let ok = |h: &HeaderMap, b: &[u8]| standard_webhooks::verify(h, b, &[], std::slice::from_ref(&key), NOW, 300).is_ok();
        prop_assert!(ok(&h, &body));
        prop_assert!(!ok(&h, &flip(&body, at, mask)));
        prop_assert!(!ok(&bump_digit(&h, "webhook-timestamp", at), &body));
        prop_assert!(!ok(&tamper_sig(&h, "webhook-signature", "v1a,", at, mask, unb64, b64), &body));
    }

    #[test]
    fn discord(body in proptest::collection::vec(any::<u8>(), 1..200), seed in any::<[u8; 32]>(), at in any::<usize>(), mask in 1u8..) {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let key = ed25519::PublicKey::from_bytes(pair.public_key().as_ref()).unwrap();
        let ts = NOW.to_string();
        let msg = [ts.as_bytes(), &body].concat();
        let h = to_map(vec![
            (discord::TIMESTAMP.into(), ts.clone()),
            (discord::SIGNATURE.into(), hexed(pair.sign(&msg).as_ref())),
        ]);
        let ok = |h: &HeaderMap, b: &[u8]| discord::verify(h, b, std::slice::from_ref(&key), NOW, None).is_ok();
        prop_assert!(ok(&h, &body));
        prop_assert!(!ok(&h, &flip(&body, at, mask)));
        prop_assert!(!ok(&bump_digit(&h, discord::TIMESTAMP, at), &body));
        prop_assert!(!ok(&tamper_sig(&h, discord::SIGNATURE, "", at, mask, unhex, hexed), &body));
    }

    #[test]
    fn twilio_form(values in proptest::collection::vec("[A-Za-z0-9]{1,12}", 1..6), token in "[a-f0-9]{32}", at in any::<usize>(), mask in 1u8..) {
        // Distinct names: Twilio's own de-duplication of repeated name=value pairs means changing one
        // duplicate into another can leave the signed content unchanged, for its libraries too.
        let body: String = values.iter().enumerate().map(|(i, v)| format!("P{i}={v}")).collect::<Vec<_>>().join("&");
        let url = "https://example.com/twilio/sms?x=1";
        let mut h = to_map(twilio::sign(token.as_bytes(), url, body.as_bytes()).unwrap());
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(FORM));
        let ok = |h: &HeaderMap, u: &str, b: &[u8]| twilio::verify(u, h, b, &[token.as_bytes()]).is_ok();
        prop_assert!(ok(&h, url, body.as_bytes()));
        // Change one byte of the body to a different alphanumeric, so the form still parses.
        let mut tampered = body.clone().into_bytes();
        let i = at % tampered.len();
        if tampered[i].is_ascii_alphanumeric() {
            tampered[i] = if tampered[i] == b'z' { b'y' } else { b'z' };
            prop_assert!(!ok(&h, url, &tampered));
        }
        prop_assert!(!ok(&h, "https://example.com/twilio/sms?x=2", body.as_bytes()), "the URL is signed");
        prop_assert!(!ok(&tamper_sig(&h, twilio::SIGNATURE, "", at, mask, unb64, b64), url, body.as_bytes()));
    }

    #[test]
    fn twilio_json(body in proptest::collection::vec(any::<u8>(), 1..200), token in "[a-f0-9]{32}", at in any::<usize>(), mask in 1u8..) {
        let url = twilio::with_body_sha256("https://example.com/twilio/events", &body);
        let mut h = to_map(twilio::sign(token.as_bytes(), &url, b"").unwrap());
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let ok = |h: &HeaderMap, b: &[u8]| twilio::verify(&url, h, b, &[token.as_bytes()]).is_ok();
        prop_assert!(ok(&h, &body));
        prop_assert!(!ok(&h, &flip(&body, at, mask)));
        prop_assert!(!ok(&tamper_sig(&h, twilio::SIGNATURE, "", at, mask, unb64, b64), &body));
    }
}
