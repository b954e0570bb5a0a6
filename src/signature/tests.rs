//! Verifier tests on known vectors. Expected values come from outside this crate (the providers'
//! documentation, openssl, NetBox's own signatures), never from `sign`.

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            http::HeaderName::try_from(*k).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn verifier(scheme: Scheme, secrets: &[&str]) -> Verifier {
    let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(s.as_bytes())).collect();
    Verifier::new(scheme, &secrets, Duration::from_secs(300), false).unwrap()
}

#[test]
fn netbox_real_signature_from_fixture() {
    let body = include_bytes!("../../tests/fixtures/netbox/v4.6.8-created.json");
    let sig = "453f0cebc3f4d8722ff799cfae54f9fc530d1ea9e6904cd0e93a1ace1d90d42c89863e514d30cc871b3367c1cc6fcca88d106dd5801247a623ba332b359a260c";
    let v = verifier(Scheme::Netbox, &["my-webhook-secret"]);
    assert!(v
        .verify(
            &headers(&[("x-hook-signature", sig)]),
            Bytes::from_static(body),
            0
        )
        .is_ok());
    let upper = sig.to_ascii_uppercase();
    assert!(v
        .verify(
            &headers(&[("x-hook-signature", &upper)]),
            Bytes::from_static(body),
            0
        )
        .is_ok());
    let wrong = verifier(Scheme::Netbox, &["other"]);
    assert_eq!(
        wrong
            .verify(
                &headers(&[("x-hook-signature", sig)]),
                Bytes::from_static(body),
                0
            )
            .unwrap_err(),
        SignatureError::Mismatch
    );
}

#[test]
fn netbox_missing_and_malformed_headers() {
    let v = verifier(Scheme::Netbox, &["k"]);
    let e = v.verify(&HeaderMap::new(), Bytes::new(), 0).unwrap_err();
    assert_eq!(e.kind(), "missing");
    let e = v
        .verify(&headers(&[("x-hook-signature", "abc")]), Bytes::new(), 0)
        .unwrap_err();
    assert_eq!(e.kind(), "malformed");
}
