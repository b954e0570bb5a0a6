//! Linear: `Linear-Signature` is hex HMAC-SHA256 of the body. Replay protection comes from the
//! signed body's `webhookTimestamp` (milliseconds), which must be present and within the window:
//! Linear's SDK (`LinearWebhooks.verify`) refuses more than one minute either way. The
//! `Linear-Timestamp` header is not signed and is not trusted. Delivery `Linear-Delivery`, event
//! `Linear-Event`.

use serde::Deserialize;

use super::{
    any_match, hex_sig, hmac_sha256, hmac_sha256_each, label, malformed, required, Delivery,
    Rejection,
};
use http::HeaderMap;

pub const SIGNATURE: &str = "linear-signature";
/// Linear's SDK allows one minute of difference.
pub const DEFAULT_TOLERANCE_SECS: u64 = 60;

#[derive(Deserialize)]
struct Stamp {
    #[serde(rename = "webhookTimestamp")]
    webhook_timestamp: Option<serde_json::Value>,
}

/// Verifies at `now_ms` (unix milliseconds; Linear's stamp has that precision).
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&[u8]],
    now_ms: i64,
    tolerance_secs: u64,
) -> Result<Delivery, Rejection> {
    let sig = hex_sig(SIGNATURE, required(headers, SIGNATURE)?)?;
    let tags = hmac_sha256_each(secrets, &[body]);
    if !any_match(&tags, &[sig]) {
        return Err(Rejection::Mismatch);
    }
    let stamp: Stamp = serde_json::from_slice(body)
        .map_err(|e| malformed("body", format!("not a JSON object: {e}")))?;
    let sent_ms = stamp
        .webhook_timestamp
        .ok_or(Rejection::Missing("webhookTimestamp in the body"))?
        .as_i64()
        .ok_or_else(|| malformed("webhookTimestamp", "not integer milliseconds"))?;
    let skew_ms = now_ms.saturating_sub(sent_ms);
    if skew_ms.unsigned_abs() > tolerance_secs.saturating_mul(1000) {
        return Err(Rejection::OutsideTolerance {
            skew_secs: skew_ms / 1000,
            tolerance_secs,
        });
    }
    Ok(Delivery {
        delivery_id: label(headers, &["linear-delivery"]),
        event_type: label(headers, &["linear-event"]),
    })
}

/// Headers for a body that already carries its `webhookTimestamp`, for the `sign` command.
pub fn sign(secret: &[u8], body: &[u8], delivery_id: &str, event: &str) -> Vec<(String, String)> {
    vec![
        (
            "Linear-Signature".into(),
            hex::encode(hmac_sha256(secret, &[body])),
        ),
        ("Linear-Delivery".into(), delivery_id.into()),
        ("Linear-Event".into(), event.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Linear's SDK tests sign with a random secret at run time, so there is no published vector;
    // this one was computed with Python's hmac/hashlib: HMAC-SHA256(b"lin_wh_secret", BODY).
    const SECRET: &[u8] = b"lin_wh_secret";
    const BODY: &[u8] = br#"{"action":"create","type":"Issue","data":{"id":"abc"},"webhookTimestamp":1700000000123,"webhookId":"w1"}"#;
    const SIG: &str = "c925419de89a99f0936c4c7a0c38f16216f5e06f5c9caed29ba2f58bd1cf2e94";
    const SENT_MS: i64 = 1700000000123;

    fn headers(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE, sig.parse().unwrap());
        h.insert(
            "linear-delivery",
            "7c1b2b4e-8f4c-4c8e-9a3e-1d2c3b4a5f6e".parse().unwrap(),
        );
        h.insert("linear-event", "Issue".parse().unwrap());
        h.insert("linear-timestamp", "1".parse().unwrap());
        h
    }

    #[test]
    fn verifies_within_sixty_seconds_either_way() {
        let d = verify(&headers(SIG), BODY, &[SECRET], SENT_MS + 60_000, 60).unwrap();
        assert_eq!(d.event_type.as_deref(), Some("Issue"));
        assert_eq!(
            d.delivery_id.as_deref(),
            Some("7c1b2b4e-8f4c-4c8e-9a3e-1d2c3b4a5f6e")
        );
        assert!(verify(&headers(SIG), BODY, &[SECRET], SENT_MS - 60_000, 60).is_ok());
        assert_eq!(
            verify(&headers(SIG), BODY, &[SECRET], SENT_MS + 60_001, 60),
            Err(Rejection::OutsideTolerance {
                skew_secs: 60,
                tolerance_secs: 60
            }),
            "the unsigned Linear-Timestamp header plays no part"
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(
            verify(&headers(SIG), BODY, &[b"other"], SENT_MS, 60),
            Err(Rejection::Mismatch)
        );
        let unstamped = br#"{"action":"create"}"#;
        let sig = hex::encode(hmac_sha256(SECRET, &[unstamped]));
        assert_eq!(
            verify(&headers(&sig), unstamped, &[SECRET], SENT_MS, 60),
            Err(Rejection::Missing("webhookTimestamp in the body"))
        );
        let text_stamp = br#"{"webhookTimestamp":"1700000000123"}"#;
        let sig = hex::encode(hmac_sha256(SECRET, &[text_stamp]));
        assert_eq!(
            verify(&headers(&sig), text_stamp, &[SECRET], SENT_MS, 60)
                .unwrap_err()
                .kind(),
            "malformed"
        );
        let mut none = headers(SIG);
        none.remove(SIGNATURE);
        assert_eq!(
            verify(&none, BODY, &[SECRET], SENT_MS, 60),
            Err(Rejection::Missing(SIGNATURE))
        );
    }

    #[test]
    fn sign_round_trips() {
        assert_eq!(sign(SECRET, BODY, "d", "Issue")[0].1, SIG);
    }
}
