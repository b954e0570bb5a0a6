//! Gitea, Forgejo and Gogs: hex HMAC-SHA256, no prefix, of the JSON payload. With the JSON content
//! type that is the body; with the form content type the body is `payload=<url-encoded JSON>` and the
//! signature is over the decoded JSON, not the bytes sent (Gitea `services/webhook/deliver.go` signs
//! `t.PayloadContent` and sends `url.Values{"payload": …}.Encode()`). So a form delivery is verified,
//! and handed on, as its decoded JSON.
//!
//! Header families: Gitea sends `X-Gitea-*` and `X-Gogs-*`, Forgejo adds `X-Forgejo-*`, Gogs sends
//! only `X-Gogs-*`. Each value is taken from the first family present in that order.

use std::borrow::Cow;

use super::{
    any_match, first_present, form_pairs, hex_sig, hmac_sha256, hmac_sha256_each, label, malformed,
    media_type, Delivery, Rejection, FORM,
};
use http::HeaderMap;

const SIGNATURES: [&str; 3] = [
    "x-gitea-signature",
    "x-forgejo-signature",
    "x-gogs-signature",
];
const DELIVERIES: [&str; 3] = ["x-gitea-delivery", "x-forgejo-delivery", "x-gogs-delivery"];
const EVENTS: [&str; 3] = ["x-gitea-event", "x-forgejo-event", "x-gogs-event"];

/// A verified delivery: the signed JSON (the body itself, or the decoded `payload=` field) and its
/// labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'a> {
    pub payload: Cow<'a, [u8]>,
    pub delivery: Delivery,
}

/// The JSON a delivery signed: the body, or for a form body its single `payload` field.
pub fn signed_payload<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Cow<'a, [u8]>, Rejection> {
    if media_type(headers).as_deref() != Some(FORM) {
        return Ok(Cow::Borrowed(body));
    }
    let mut payload = None;
    for (k, v) in form_pairs(body) {
        if k == b"payload" {
            if payload.is_some() {
                return Err(malformed("body", "more than one payload= field"));
            }
            payload = Some(v);
        }
    }
    payload
        .map(Cow::Owned)
        .ok_or(Rejection::Missing("payload= form field"))
}

pub fn verify<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    secrets: &[&[u8]],
) -> Result<Verified<'a>, Rejection> {
    let (name, value) = first_present(
        headers,
        &SIGNATURES,
        "X-Gitea-Signature, X-Forgejo-Signature or X-Gogs-Signature",
    )?;
    let sig = hex_sig(name, value)?;
    let payload = signed_payload(headers, body)?;
    let tags = hmac_sha256_each(secrets, &[&payload]);
    if !any_match(&tags, &[sig]) {
        return Err(Rejection::Mismatch);
    }
    Ok(Verified {
        payload,
        delivery: Delivery {
            delivery_id: label(headers, &DELIVERIES),
            event_type: label(headers, &EVENTS),
        },
    })
}

/// Headers as Gitea sends them for a JSON `payload`, for the `sign` command.
pub fn sign(
    secret: &[u8],
    payload: &[u8],
    delivery_id: &str,
    event: &str,
) -> Vec<(String, String)> {
    let sig = hex::encode(hmac_sha256(secret, &[payload]));
    vec![
        ("X-Gitea-Signature".into(), sig.clone()),
        ("X-Gitea-Delivery".into(), delivery_id.into()),
        ("X-Gitea-Event".into(), event.into()),
        ("X-Gogs-Signature".into(), sig),
        ("X-Gogs-Delivery".into(), delivery_id.into()),
        ("X-Gogs-Event".into(), event.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed with Python's hmac/hashlib (an independent implementation); Gitea, Forgejo
    // and Gogs publish none. `python3 -c "import hmac,hashlib;print(hmac.new(b'gitea-secret',
    // b'{\"ref\":\"refs/heads/main\",\"after\":\"abc\"}',hashlib.sha256).hexdigest())"`
    const SECRET: &[u8] = b"gitea-secret";
    const JSON: &[u8] = br#"{"ref":"refs/heads/main","after":"abc"}"#;
    const SIG: &str = "f0942913cec1c8b4581bf16d51fa7b194f91992c6d09d248bc54de82fb8e2b87";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn json_body_verifies_and_labels_follow_precedence() {
        let h = headers(&[
            ("x-gitea-signature", SIG),
            ("x-gitea-delivery", "d-gitea"),
            ("x-forgejo-delivery", "d-forgejo"),
            ("x-gogs-event", "push"),
            ("content-type", "application/json"),
        ]);
        let v = verify(&h, JSON, &[b"other", SECRET]).unwrap();
        assert_eq!(&*v.payload, JSON);
        assert_eq!(v.delivery.delivery_id.as_deref(), Some("d-gitea"));
        assert_eq!(v.delivery.event_type.as_deref(), Some("push"));
        assert_eq!(verify(&h, JSON, &[b"other"]), Err(Rejection::Mismatch));
        assert_eq!(verify(&h, b"{}", &[SECRET]), Err(Rejection::Mismatch));
    }

    #[test]
    fn forgejo_and_gogs_alone() {
        let f = headers(&[("x-forgejo-signature", SIG), ("x-forgejo-event", "issues")]);
        assert_eq!(
            verify(&f, JSON, &[SECRET])
                .unwrap()
                .delivery
                .event_type
                .as_deref(),
            Some("issues")
        );
        let g = headers(&[
            ("x-gogs-signature", &SIG.to_uppercase()),
            ("x-gogs-delivery", "7"),
        ]);
        assert_eq!(
            verify(&g, JSON, &[SECRET])
                .unwrap()
                .delivery
                .delivery_id
                .as_deref(),
            Some("7"),
            "hex of either case"
        );
    }

    #[test]
    fn form_body_is_verified_as_its_decoded_payload() {
        // What Gitea sends for content type "form": url.Values{"payload": {json}}.Encode().
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", std::str::from_utf8(JSON).unwrap())
            .finish();
        let h = headers(&[
            ("x-gitea-signature", SIG),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        ]);
        let v = verify(&h, form.as_bytes(), &[SECRET]).unwrap();
        assert_eq!(&*v.payload, JSON, "handed on as the JSON that was signed");
        // The same bytes under the JSON content type are not what was signed.
        let json_ct = headers(&[
            ("x-gitea-signature", SIG),
            ("content-type", "application/json"),
        ]);
        assert_eq!(
            verify(&json_ct, form.as_bytes(), &[SECRET]),
            Err(Rejection::Mismatch)
        );
        let twice = format!("{form}&{form}");
        assert_eq!(
            verify(&h, twice.as_bytes(), &[SECRET]).unwrap_err().kind(),
            "malformed"
        );
        assert_eq!(
            verify(&h, b"other=1", &[SECRET]),
            Err(Rejection::Missing("payload= form field"))
        );
    }

    #[test]
    fn missing_and_malformed_signature() {
        assert_eq!(
            verify(&HeaderMap::new(), JSON, &[SECRET])
                .unwrap_err()
                .kind(),
            "missing"
        );
        let h = headers(&[("x-gitea-signature", "sha256=00")]);
        assert_eq!(verify(&h, JSON, &[SECRET]).unwrap_err().kind(), "malformed");
    }

    #[test]
    fn sign_round_trips() {
        let mut h = HeaderMap::new();
        for (k, v) in sign(SECRET, JSON, "id-1", "push") {
            h.insert(http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
        }
        assert_eq!(h["x-gitea-signature"], SIG);
        assert!(verify(&h, JSON, &[SECRET]).is_ok());
    }
}
