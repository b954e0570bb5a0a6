//! Zoom: `x-zm-signature: v0=<hex>` of HMAC-SHA256 (the app's secret token) over
//! `v0:{x-zm-request-timestamp}:{body}`, the timestamp in unix seconds. Zoom documents no window;
//! the hook's `tolerance_secs` applies. An `endpoint.url_validation` event (signed like the others)
//! is answered 200 with `{"plainToken": p, "encryptedToken": hex(HMAC-SHA256(secret, p))}`, made
//! with the secret that verified the request, so rotation works while both secrets are configured.

use serde::Deserialize;

use super::{
    bounded, check_window, hmac_sha256, hmac_sha256_each, malformed, matching_index,
    prefixed_hex_sig, required, unix_seconds, Delivery, Rejection,
};
use http::HeaderMap;

pub const SIGNATURE: &str = "x-zm-signature";
pub const TIMESTAMP: &str = "x-zm-request-timestamp";
pub const URL_VALIDATION: &str = "endpoint.url_validation";
/// Longest plainToken answered; Zoom's are ~22 characters.
pub const MAX_PLAIN_TOKEN_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// `event` of the body; Zoom gives no per-delivery id.
    pub delivery: Delivery,
    /// For `endpoint.url_validation`: the JSON body to answer with (200, `application/json`);
    /// such a request is not an event.
    pub url_validation: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    event: Option<serde_json::Value>,
    payload: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "plainToken")]
    plain_token: Option<serde_json::Value>,
}

/// The answer to a URL validation: `plainToken` echoed, `encryptedToken` its hex HMAC-SHA256.
pub fn url_validation_response(secret: &[u8], plain_token: &str) -> String {
    serde_json::json!({
        "plainToken": plain_token,
        "encryptedToken": hex::encode(hmac_sha256(secret, &[plain_token.as_bytes()])),
    })
    .to_string()
}

/// Verifies at `now` (unix seconds).
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&[u8]],
    now: i64,
    tolerance_secs: u64,
) -> Result<Verified, Rejection> {
    let ts = required(headers, TIMESTAMP)?;
    let sent = unix_seconds(TIMESTAMP, ts)?;
    let sig = prefixed_hex_sig(SIGNATURE, required(headers, SIGNATURE)?, "v0=")?;
    let tags = hmac_sha256_each(secrets, &[b"v0:", ts.trim().as_bytes(), b":", body]);
    let Some(which) = matching_index(&tags, &[sig]) else {
        return Err(Rejection::Mismatch);
    };
    check_window(sent, now, tolerance_secs)?;
    let env: Option<Envelope> = serde_json::from_slice(body).ok();
    let event = env
        .as_ref()
        .and_then(|e| e.event.as_ref())
        .and_then(|v| v.as_str())
        .and_then(bounded);
    let url_validation = if event.as_deref() == Some(URL_VALIDATION) {
        let token = env
            .and_then(|e| e.payload)
            .and_then(|p| p.plain_token)
            .ok_or(Rejection::Missing("payload.plainToken in the body"))?;
        let token = token
            .as_str()
            .filter(|t| !t.is_empty() && t.len() <= MAX_PLAIN_TOKEN_LEN)
            .ok_or_else(|| malformed("plainToken", "not a string of 1 to 256 bytes"))?;
        Some(url_validation_response(secrets[which], token))
    } else {
        None
    };
    Ok(Verified {
        delivery: Delivery {
            delivery_id: None,
            event_type: event,
        },
        url_validation,
    })
}

/// Headers Zoom would send for `body` at `timestamp`, for the `sign` command.
pub fn sign(secret: &[u8], body: &[u8], timestamp: i64) -> Vec<(String, String)> {
    let ts = timestamp.to_string();
    let sig = hex::encode(hmac_sha256(secret, &[b"v0:", ts.as_bytes(), b":", body]));
    vec![
        ("x-zm-request-timestamp".into(), ts),
        ("x-zm-signature".into(), format!("v0={sig}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Zoom's docs ("Verify webhook events", "Validate your webhook endpoint") give the algorithm and
    // sample bodies but no secret, so signatures were computed with Python's hmac/hashlib:
    // HMAC-SHA256(b"zoom-secret-token", b"v0:1700000000:" + body). The validation body and its
    // plainToken are the docs' sample.
    const SECRET: &[u8] = b"zoom-secret-token";
    const TS: &str = "1700000000";
    const EVENT: &[u8] =
        br#"{"event":"meeting.started","event_ts":1700000000000,"payload":{"account_id":"a"}}"#;
    const EVENT_SIG: &str = "v0=f66dda0c14f1a8e90f5d0c1d47a104819cb72196246a7c6274026e1ce2882fa6";
    const VALIDATION: &[u8] = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    const VALIDATION_SIG: &str =
        "v0=58f944042f127e5fde4f63c1e6a81adf7ce8f95d3c50868308092e3bdd8bcb94";
    const ENCRYPTED: &str = "d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3";

    fn headers(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP, TS.parse().unwrap());
        h.insert(SIGNATURE, sig.parse().unwrap());
        h
    }

    #[test]
    fn event_verifies() {
        let v = verify(&headers(EVENT_SIG), EVENT, &[SECRET], 1700000000, 300).unwrap();
        assert_eq!(v.delivery.event_type.as_deref(), Some("meeting.started"));
        assert_eq!(v.url_validation, None);
        assert_eq!(
            verify(&headers(EVENT_SIG), EVENT, &[b"x"], 1700000000, 300),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            verify(&headers(EVENT_SIG), EVENT, &[SECRET], 1700000301, 300),
            Err(Rejection::OutsideTolerance {
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn url_validation_is_answered_with_the_secret_that_verified() {
        let v = verify(
            &headers(VALIDATION_SIG),
            VALIDATION,
            &[b"rotated-out", SECRET],
            1700000000,
            300,
        )
        .unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(v.url_validation.as_deref().unwrap()).unwrap();
        assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(answer["encryptedToken"], ENCRYPTED);
        assert_eq!(
            verify(
                &headers(VALIDATION_SIG),
                VALIDATION,
                &[b"rotated-out"],
                1700000000,
                300
            ),
            Err(Rejection::Mismatch),
            "an unsigned validation is not answered"
        );
        let no_token = br#"{"event":"endpoint.url_validation","payload":{}}"#;
        let h = headers(&sign(SECRET, no_token, 1700000000)[1].1);
        assert_eq!(
            verify(&h, no_token, &[SECRET], 1700000000, 300),
            Err(Rejection::Missing("payload.plainToken in the body"))
        );
    }

    #[test]
    fn missing_and_malformed() {
        let mut h = headers(EVENT_SIG);
        h.remove(SIGNATURE);
        assert_eq!(
            verify(&h, EVENT, &[SECRET], 0, 300),
            Err(Rejection::Missing(SIGNATURE))
        );
        let mut h = headers(EVENT_SIG);
        h.remove(TIMESTAMP);
        assert_eq!(
            verify(&h, EVENT, &[SECRET], 0, 300),
            Err(Rejection::Missing(TIMESTAMP))
        );
        let h = headers(EVENT_SIG.trim_start_matches("v0="));
        assert_eq!(
            verify(&h, EVENT, &[SECRET], 0, 300).unwrap_err().kind(),
            "malformed"
        );
    }

    #[test]
    fn sign_round_trips() {
        let s = sign(SECRET, EVENT, 1700000000);
        assert_eq!(s[1].1, EVENT_SIG);
    }
}
