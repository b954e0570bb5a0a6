//! Bitbucket Cloud and Data Center: `X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the body. The
//! header is the one GitHub uses for SHA-1, but Bitbucket puts SHA-256 in it; a `sha1=` value is
//! refused rather than checked with the weaker hash. Event `X-Event-Key` (e.g. `repo:push`); delivery
//! `X-Request-UUID` (Cloud) or `X-Request-Id` (Data Center).

use super::{
    any_match, hmac_sha256, hmac_sha256_each, label, prefixed_hex_sig, required, Delivery,
    Rejection,
};
use http::HeaderMap;

pub const SIGNATURE: &str = "x-hub-signature";

pub fn verify(headers: &HeaderMap, body: &[u8], secrets: &[&[u8]]) -> Result<Delivery, Rejection> {
    let sig = prefixed_hex_sig(SIGNATURE, required(headers, SIGNATURE)?, "sha256=")?;
    let tags = hmac_sha256_each(secrets, &[body]);
    if !any_match(&tags, &[sig]) {
        return Err(Rejection::Mismatch);
    }
    Ok(Delivery {
        delivery_id: label(headers, &["x-request-uuid", "x-request-id"]),
        event_type: label(headers, &["x-event-key"]),
    })
}

/// Headers as Bitbucket Cloud sends them, for the `sign` command.
pub fn sign(secret: &[u8], body: &[u8], delivery_id: &str, event: &str) -> Vec<(String, String)> {
    vec![
        (
            "X-Hub-Signature".into(),
            format!("sha256={}", hex::encode(hmac_sha256(secret, &[body]))),
        ),
        ("X-Request-UUID".into(), delivery_id.into()),
        ("X-Event-Key".into(), event.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed with Python's hmac/hashlib (independent of this crate); Bitbucket publishes no
    // vector. HMAC-SHA256(b"bitbucket-secret", BODY).
    const SECRET: &[u8] = b"bitbucket-secret";
    const BODY: &[u8] = br#"{"push":{"changes":[]},"repository":{"full_name":"team/repo"}}"#;
    const SIG: &str = "sha256=03c1f0d755dfade01fcf4c3e44ef9d21ebed62a0a5e68d3a0a27260d700f2b67";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cloud_delivery_verifies_with_labels() {
        let h = headers(&[
            (SIGNATURE, SIG),
            ("x-event-key", "repo:push"),
            ("x-request-uuid", "2f9a1b6c-0000-4000-8000-000000000001"),
            ("x-hook-uuid", "not-a-delivery-id"),
        ]);
        let d = verify(&h, BODY, &[b"old", SECRET]).unwrap();
        assert_eq!(d.event_type.as_deref(), Some("repo:push"));
        assert_eq!(
            d.delivery_id.as_deref(),
            Some("2f9a1b6c-0000-4000-8000-000000000001")
        );
        assert_eq!(verify(&h, BODY, &[b"old"]), Err(Rejection::Mismatch));
        assert_eq!(verify(&h, b"{}", &[SECRET]), Err(Rejection::Mismatch));
    }

    #[test]
    fn data_center_request_id_and_refusals() {
        let h = headers(&[(SIGNATURE, SIG), ("x-request-id", "dc-1")]);
        assert_eq!(
            verify(&h, BODY, &[SECRET]).unwrap().delivery_id.as_deref(),
            Some("dc-1")
        );
        let sha1 = headers(&[(SIGNATURE, "sha1=03c1f0d755dfade01fcf4c3e44ef9d21ebed62a0")]);
        assert_eq!(
            verify(&sha1, BODY, &[SECRET]).unwrap_err().kind(),
            "malformed"
        );
        assert_eq!(
            verify(&HeaderMap::new(), BODY, &[SECRET]),
            Err(Rejection::Missing(SIGNATURE))
        );
    }

    #[test]
    fn sign_round_trips() {
        let mut h = HeaderMap::new();
        for (k, v) in sign(SECRET, BODY, "u", "repo:push") {
            h.insert(http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
        }
        assert_eq!(h[SIGNATURE], SIG);
        assert!(verify(&h, BODY, &[SECRET]).is_ok());
    }
}
