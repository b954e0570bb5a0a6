//! Standard Webhooks with both signature kinds the specification defines: `v1` (HMAC-SHA256 with a
//! `whsec_` secret) and `v1a` (Ed25519, verified with a `whpk_` public key), each base64 and over
//! `{webhook-id}.{webhook-timestamp}.{body}`. One `webhook-signature` header may carry several
//! entries of either kind, space-separated; any one that verifies under any configured secret or key
//! is enough. This supersedes the `v1`-only arm of the existing verifier, so a hook can hold secrets,
//! public keys, or both.

use super::ed25519::{any_verifies, KeyError, PublicKey};
use super::{
    any_match, base64_decode, base64_encode, bounded, check_window, first_present, hmac_sha256,
    hmac_sha256_each, malformed, unix_seconds, Rejection,
};
use http::HeaderMap;

/// The prefix the specification gives serialized public keys.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";
/// ±5 minutes, the tolerance of the reference libraries.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// A `whpk_<base64>` public key from the hook's `public_keys`.
pub fn parse_public_key(text: &str) -> Result<PublicKey, KeyError> {
    let text = text.trim();
    if text.starts_with("whsk_") {
        return Err(KeyError(
            "this is a whsk_ secret (private) key; configure the sender's whpk_ public key".into(),
        ));
    }
    let b64 = text
        .strip_prefix(PUBLIC_KEY_PREFIX)
        .ok_or_else(|| KeyError("a Standard Webhooks public key starts with whpk_".into()))?;
    let bytes = base64_decode(b64).ok_or_else(|| KeyError("not base64 after whpk_".into()))?;
    PublicKey::from_bytes(&bytes)
}

/// The entries of a `webhook-signature` header that decode, by kind. As in the reference libraries,
/// entries of other versions and entries that do not decode are skipped, so one odd entry cannot
/// hide a valid one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entries {
    pub v1: Vec<Vec<u8>>,
    pub v1a: Vec<[u8; 64]>,
}

pub fn parse_header(value: &str) -> Entries {
    let mut e = Entries::default();
    for entry in value.split_ascii_whitespace() {
        if let Some(sig) = entry.strip_prefix("v1,") {
            e.v1.extend(base64_decode(sig).filter(|s| !s.is_empty()));
        } else if let Some(sig) = entry.strip_prefix("v1a,") {
            e.v1a
                .extend(base64_decode(sig).and_then(|s| <[u8; 64]>::try_from(s).ok()));
        }
    }
    e
}

/// A verified delivery's id (`webhook-id`, the key to de-duplicate on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub delivery_id: Option<String>,
}

/// Verifies at `now` (unix seconds). `hmac_keys` are the decoded bytes of the hook's `whsec_`
/// secrets; `public_keys` its `whpk_` keys. Either may be empty.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    hmac_keys: &[&[u8]],
    public_keys: &[PublicKey],
    now: i64,
    tolerance_secs: u64,
) -> Result<Verified, Rejection> {
    let (_, id) = first_present(headers, &["webhook-id", "svix-id"], "webhook-id")?;
    let (_, ts) = first_present(
        headers,
        &["webhook-timestamp", "svix-timestamp"],
        "webhook-timestamp",
    )?;
    let (_, sig) = first_present(
        headers,
        &["webhook-signature", "svix-signature"],
        "webhook-signature",
    )?;
    let sent = unix_seconds("webhook-timestamp", ts)?;
    let entries = parse_header(sig);
    if entries.v1.is_empty() && entries.v1a.is_empty() {
        return Err(malformed(
            "webhook-signature",
            "no decodable v1,<base64> or v1a,<base64> entry",
        ));
    }
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
    let hmac_ok = !entries.v1.is_empty() && {
        let tags = hmac_sha256_each(hmac_keys, &parts);
        any_match(&tags, &entries.v1)
    };
    let ed_ok = !hmac_ok
        && !entries.v1a.is_empty()
        && !public_keys.is_empty()
        && any_verifies(public_keys, &parts.concat(), &entries.v1a);
    if !(hmac_ok || ed_ok) {
        return Err(Rejection::Mismatch);
    }
    check_window(sent, now, tolerance_secs)?;
    Ok(Verified {
        delivery_id: bounded(id),
    })
}

/// The `v1` headers for `body`, for the `sign` command (only symmetric keys can sign here).
pub fn sign_v1(hmac_key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
    let ts = timestamp.to_string();
    let tag = hmac_sha256(hmac_key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts),
        (
            "webhook-signature".into(),
            format!("v1,{}", base64_encode(&tag)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    /// The public key for a seed, derived by `ring` (not the verifier's crate).
    fn public_from_seed(seed: &[u8]) -> PublicKey {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).unwrap();
        let whpk = format!("whpk_{}", base64_encode(pair.public_key().as_ref()));
        parse_public_key(&whpk).unwrap()
    }

    fn headers(id: &str, ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    /// standard-webhooks/standard-webhooks, libraries/go/webhook_asymmetric_test.go,
    /// TestAsymmetricWebhookSign (commit f50a00a, "Implement Webhook Interface for Asymmetric
    /// Signatures"): seed base64 `VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=`.
    const GO_SEED_B64: &str = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
    const GO_SIG: &str = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";
    /// standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts (commit
    /// 659f674, "Added tests for v1a javascript"): seed 0x01 repeated, same id, timestamp, payload.
    const JS_SIG: &str = "v1a,Ykcu7AtGZGmZxFEH1Gaa2Nd7feY/CTuruoL4fqgnKwfbHU4DhemoVHZdvGfIvKvn4BIgwktLGGPGIr/i9nK7AA==";

    #[test]
    fn reference_library_v1a_vectors_verify() {
        let go_key = public_from_seed(&base64_decode(GO_SEED_B64).unwrap());
        let js_key = public_from_seed(&[1u8; 32]);
        let now = 1614265330;
        let ok = verify(
            &headers(MSG_ID, TS, GO_SIG),
            BODY,
            &[],
            std::slice::from_ref(&go_key),
            now,
            300,
        );
        assert_eq!(ok.unwrap().delivery_id.as_deref(), Some(MSG_ID));
        assert!(verify(
            &headers(MSG_ID, TS, JS_SIG),
            BODY,
            &[],
            std::slice::from_ref(&js_key),
            now,
            300
        )
        .is_ok());
        assert_eq!(
            verify(
                &headers(MSG_ID, TS, GO_SIG),
                BODY,
                &[],
                std::slice::from_ref(&js_key),
                now,
                300
            ),
            Err(Rejection::Mismatch),
            "the other library's key"
        );
        assert_eq!(
            verify(
                &headers(MSG_ID, "1614265331", GO_SIG),
                BODY,
                &[],
                std::slice::from_ref(&go_key),
                now,
                300
            ),
            Err(Rejection::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(
            verify(
                &headers(MSG_ID, TS, GO_SIG),
                BODY,
                &[],
                &[go_key],
                now + 301,
                300
            ),
            Err(Rejection::OutsideTolerance {
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    /// The symmetric vector of the Standard Webhooks libraries (e.g. libraries/python tests,
    /// `test_sign_function`): key `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, same id, time, payload.
    #[test]
    fn v1_and_v1a_in_one_header() {
        let hmac_key = base64_decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let v1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let both = format!("{v1} {GO_SIG}");
        let go_key = public_from_seed(&base64_decode(GO_SEED_B64).unwrap());
        let now = 1614265330;
        let h = headers(MSG_ID, TS, &both);
        assert!(
            verify(&h, BODY, &[&hmac_key], &[], now, 300).is_ok(),
            "v1 alone"
        );
        assert!(
            verify(&h, BODY, &[], std::slice::from_ref(&go_key), now, 300).is_ok(),
            "v1a alone"
        );
        assert!(verify(&h, BODY, &[b"wrong"], &[go_key], now, 300).is_ok());
        assert_eq!(
            verify(
                &h,
                BODY,
                &[b"wrong"],
                &[public_from_seed(&[2; 32])],
                now,
                300
            ),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            sign_v1(&hmac_key, MSG_ID, 1614265330, BODY)[2].1,
            v1,
            "our signer reproduces the reference vector"
        );
    }

    #[test]
    fn header_parsing_skips_odd_entries_and_needs_one_good_one() {
        let e = parse_header("v1a,AAAA v1,AAEC junk v2,AAEC v1a,@@@ v1,");
        assert_eq!(e.v1, vec![vec![0, 1, 2]]);
        assert!(e.v1a.is_empty(), "a v1a entry must be 64 bytes");
        let h = headers(MSG_ID, TS, "v2,AAEC v1a,AAAA");
        assert_eq!(
            verify(&h, BODY, &[b"k"], &[], 1614265330, 300)
                .unwrap_err()
                .kind(),
            "malformed"
        );
    }

    #[test]
    fn non_canonical_v1a_signature_is_refused() {
        let go_key = public_from_seed(&base64_decode(GO_SEED_B64).unwrap());
        let sig: [u8; 64] = base64_decode(GO_SIG.strip_prefix("v1a,").unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let nc = super::super::ed25519::tests::non_canonical(&sig);
        let h = headers(MSG_ID, TS, &format!("v1a,{}", base64_encode(&nc)));
        assert_eq!(
            verify(&h, BODY, &[], &[go_key], 1614265330, 300),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn public_keys_must_be_whpk_and_strong() {
        assert!(parse_public_key("whsk_AAAA")
            .unwrap_err()
            .0
            .contains("private"));
        assert!(
            parse_public_key(&base64_encode(&[9; 32])).is_err(),
            "prefix required"
        );
        assert!(parse_public_key("whpk_@@@").is_err());
        let identity = {
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        };
        assert!(parse_public_key(&format!("whpk_{}", base64_encode(&identity))).is_err());
    }

    #[test]
    fn missing_headers_are_named() {
        let h = headers(MSG_ID, TS, GO_SIG);
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            let mut m = h.clone();
            m.remove(name);
            assert_eq!(
                verify(&m, BODY, &[], &[], 0, 300),
                Err(Rejection::Missing(name))
            );
        }
    }
}
