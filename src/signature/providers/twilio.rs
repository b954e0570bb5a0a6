//! Twilio: `X-Twilio-Signature` is base64 HMAC-SHA1, keyed with the account's auth token, of the full
//! URL Twilio requested followed, for form bodies, by every parameter's name and value. This follows
//! twilio-python's `RequestValidator` (twilio/request_validator.py, 2023 onwards) exactly:
//!
//! - parameters sorted by name, and each name's values sorted and de-duplicated
//!   (`for param_name in sorted(set(params)): for value in sorted(set(values))`); twilio-node does
//!   the same (`Array.from(new Set(values)).sort()`);
//! - the URL is tried twice, without its port and with it, adding 443 for https and 80 otherwise
//!   when it has none ("sig generation on back end is inconsistent");
//! - when the URL's query has `bodySHA256` the body (JSON) is not a parameter list: the signature
//!   is over the URL alone, and `bodySHA256` must equal the body's hex SHA-256.
//!
//! The URL is the one Twilio was configured with, which a receiver behind a proxy cannot see: the
//! hook's `public_url` plus the query of the request as received ([`request_url`]).
//!
//! Not done: Twilio's newer HMAC-SHA256 "shared key" signing (announced by an
//! `X-Twilio-Webhooks-Signature-Settings` header). It is in public beta, and the helper libraries'
//! code in hand (twilio-python 2026-08, twilio-node 2026-07) does not implement it, so neither its
//! encoding nor a vector could be confirmed.

use sha2::Digest;
use subtle::ConstantTimeEq;

use super::{
    any_match, base64_decode, base64_encode, form_pairs, hmac_sha1, label, malformed, media_type,
    required, Delivery, Rejection, FORM,
};
use http::HeaderMap;

pub const SIGNATURE: &str = "x-twilio-signature";
/// Sent on webhooks, stable across Twilio's retries of one request.
pub const IDEMPOTENCY: &str = "i-twilio-idempotency-token";

/// The URL Twilio signed: `public_url` (the webhook URL as configured in Twilio, scheme, host, port
/// and path) with its own query replaced by the query of the request as received, which carries
/// `bodySHA256` for JSON bodies and any parameters configured in the URL.
pub fn request_url(public_url: &str, received_query: Option<&str>) -> String {
    let base = public_url.split(['?', '#']).next().unwrap_or(public_url);
    match received_query {
        Some(q) if !q.is_empty() => format!("{base}?{q}"),
        _ => base.to_string(),
    }
}

/// The URL without its port and with it (the default port added when it has none), as
/// twilio-python's `remove_port` and `add_port` make them. Unlike `remove_port`, a port is removed
/// from the host only, so credentials in the URL (`user:pass@host`) survive.
pub fn url_variants(url: &str) -> [String; 2] {
    let Some((scheme, rest)) = url.split_once("://") else {
        return [url.to_string(), url.to_string()];
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let colon = if hostport.starts_with('[') {
        hostport
            .find(']')
            .and_then(|i| (hostport.as_bytes().get(i + 1) == Some(&b':')).then_some(i + 1))
    } else {
        hostport.rfind(':')
    };
    let (host, port) = match colon {
        Some(i) => (&hostport[..i], &hostport[i + 1..]),
        None => (hostport, ""),
    };
    let without = format!("{scheme}://{userinfo}{host}{tail}");
    let with = if port.is_empty() {
        let default = if scheme.eq_ignore_ascii_case("https") {
            443
        } else {
            80
        };
        format!("{scheme}://{userinfo}{host}:{default}{tail}")
    } else {
        url.to_string()
    };
    [without, with]
}

/// The decoded form parameters in signing order: by name, then value, duplicates removed. Sorting
/// UTF-8 bytes is sorting code points, as Python sorts `str`. A parameter that does not decode to
/// UTF-8 is refused: Twilio sends UTF-8, and a lossy decoding would let different bodies share
/// one signature.
pub fn sorted_params(form_body: &[u8]) -> Result<Vec<(String, String)>, Rejection> {
    let mut params = form_pairs(form_body)
        .into_iter()
        .map(|(k, v)| Some((String::from_utf8(k).ok()?, String::from_utf8(v).ok()?)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| malformed("body", "a form parameter is not UTF-8"))?;
    params.sort();
    params.dedup();
    Ok(params)
}

/// The base64 signature of `url` and already-sorted `params` with `auth_token`.
pub fn signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    base64_encode(&tag(auth_token, url, params))
}

fn tag(auth_token: &[u8], url: &str, params: &[(String, String)]) -> [u8; 20] {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + 2 * params.len());
    parts.push(url.as_bytes());
    for (k, v) in params {
        parts.push(k.as_bytes());
        parts.push(v.as_bytes());
    }
    hmac_sha1(auth_token, &parts)
}

/// The first `bodySHA256` value of the URL's query, percent-decoded.
fn body_sha256_param(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    form_pairs(query.as_bytes())
        .into_iter()
        .find(|(k, _)| k == b"bodySHA256")
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

/// Verifies a request Twilio made to `url` (see [`request_url`]) with `auth_tokens`.
pub fn verify(
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
    auth_tokens: &[&[u8]],
) -> Result<Delivery, Rejection> {
    let sig = base64_decode(required(headers, SIGNATURE)?)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed(SIGNATURE, "not base64"))?;
    let body_hash = body_sha256_param(url);
    let params = match &body_hash {
        Some(_) => Vec::new(),
        None if media_type(headers).as_deref() == Some(FORM) => sorted_params(body)?,
        None if body.is_empty() => Vec::new(),
        None => {
            return Err(malformed(
                "body",
                "neither form-encoded nor covered by a bodySHA256 URL parameter, so not signed",
            ))
        }
    };
    let urls = url_variants(url);
    let tags: Vec<[u8; 20]> = auth_tokens
        .iter()
        .flat_map(|t| urls.iter().map(|u| tag(t, u, &params)))
        .collect();
    if !any_match(&tags, &[sig]) {
        return Err(Rejection::Mismatch);
    }
    if let Some(expected) = body_hash {
        let actual = hex::encode(sha2::Sha256::digest(body));
        if !bool::from(actual.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(Rejection::BodyHashMismatch);
        }
    }
    Ok(Delivery {
        delivery_id: label(headers, &[IDEMPOTENCY]),
        event_type: None,
    })
}

/// The header Twilio would send for a request to `url` with `body`, for the `sign` command: a form
/// body's parameters are signed, a URL with `bodySHA256` is signed alone.
pub fn sign(
    auth_token: &[u8],
    url: &str,
    form_body: &[u8],
) -> Result<Vec<(String, String)>, Rejection> {
    let params = if body_sha256_param(url).is_some() {
        Vec::new()
    } else {
        sorted_params(form_body)?
    };
    Ok(vec![(
        "X-Twilio-Signature".into(),
        signature(auth_token, url, &params),
    )])
}

/// `url` with `bodySHA256=<hex SHA-256 of body>` appended, as Twilio requests JSON webhooks.
pub fn with_body_sha256(url: &str, body: &[u8]) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}bodySHA256={}",
        hex::encode(sha2::Sha256::digest(body))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every vector below is from twilio/twilio-python, tests/unit/test_request_validator.py
    // (ValidationTest.setUp and the tests named beside each assertion): auth token "12345", URL
    // https://mycompany.com/myapp.php?foo=1&bar=2 and these parameters.
    const TOKEN: &[u8] = b"12345";
    const URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const FORM_BODY: &str =
        "CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
    const EXPECTED: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    const JSON_BODY: &str = r#"{"property": "value", "boolean": true}"#;
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

    fn headers(sig: &str, content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE, sig.parse().unwrap());
        h.insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
        h
    }

    fn form(sig: &str) -> HeaderMap {
        headers(sig, "application/x-www-form-urlencoded")
    }

    #[test]
    fn compute_signature() {
        // test_compute_signature
        assert_eq!(
            signature(TOKEN, URI, &sorted_params(FORM_BODY.as_bytes()).unwrap()),
            EXPECTED
        );
        // test_validation
        assert!(verify(URI, &form(EXPECTED), FORM_BODY.as_bytes(), &[TOKEN]).is_ok());
        assert_eq!(
            verify(URI, &form(EXPECTED), FORM_BODY.as_bytes(), &[b"54321"]),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn duplicate_parameters() {
        // test_compute_signature_duplicate_query_dict: Digits=5678&Digits=1234 sorts to 1234, 5678.
        let body = "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
        assert_eq!(
            signature(TOKEN, URI, &sorted_params(body.as_bytes()).unwrap()),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
        assert!(verify(
            URI,
            &form("IK+Dwps556ElfBT0I3Rgjkr1wJU="),
            body.as_bytes(),
            &[TOKEN]
        )
        .is_ok());
        assert_eq!(
            sorted_params(b"a=2&a=1&a=2&b=0").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("a".into(), "2".into()),
                ("b".into(), "0".into())
            ],
            "values sorted and de-duplicated, as sorted(set(values))"
        );
    }

    #[test]
    fn ports() {
        let b = FORM_BODY.as_bytes();
        // test_validation_removes_port_on_https
        let https_1234 = URI.replace(".com", ".com:1234");
        assert!(verify(&https_1234, &form(EXPECTED), b, &[TOKEN]).is_ok());
        // test_validation_removes_port_on_http: signed with the port, as given.
        let http_1234 = https_1234.replace("https", "http");
        assert!(verify(
            &http_1234,
            &form("Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
            b,
            &[TOKEN]
        )
        .is_ok());
        // test_validation_adds_port_on_https
        assert!(verify(URI, &form("kvajT1Ptam85bY51eRf/AJRuM3w="), b, &[TOKEN]).is_ok());
        // test_validation_adds_port_on_http
        let http = URI.replace("https", "http");
        assert!(verify(&http, &form("0ZXoZLH/DfblKGATFgpif+LLRf4="), b, &[TOKEN]).is_ok());
        assert_eq!(
            verify(&http, &form("kvajT1Ptam85bY51eRf/AJRuM3w="), b, &[TOKEN]),
            Err(Rejection::Mismatch),
            "443 is not tried for http"
        );
    }

    #[test]
    fn url_variants_keep_credentials_and_ipv6() {
        assert_eq!(
            url_variants("https://u:p@h.example:8443/x?y=1"),
            [
                "https://u:p@h.example/x?y=1".to_string(),
                "https://u:p@h.example:8443/x?y=1".into()
            ]
        );
        assert_eq!(
            url_variants("http://[::1]/x"),
            ["http://[::1]/x".to_string(), "http://[::1]:80/x".into()]
        );
        assert_eq!(
            url_variants("https://[::1]:9/x"),
            ["https://[::1]/x".to_string(), "https://[::1]:9/x".into()]
        );
        assert_eq!(
            url_variants("https://h?q=a:b"),
            ["https://h?q=a:b".to_string(), "https://h:443?q=a:b".into()]
        );
        assert_eq!(url_variants("no-scheme")[0], "no-scheme");
    }

    #[test]
    fn json_body_with_body_sha256() {
        // test_compute_hash_unicode and test_validation_of_body_succeeds.
        assert_eq!(
            hex::encode(sha2::Sha256::digest(JSON_BODY.as_bytes())),
            BODY_HASH
        );
        let uri = format!("{URI}&bodySHA256={BODY_HASH}");
        assert_eq!(with_body_sha256(URI, JSON_BODY.as_bytes()), uri);
        let h = headers("a9nBmqA0ju/hNViExpshrM61xv4=", "application/json");
        assert!(verify(&uri, &h, JSON_BODY.as_bytes(), &[TOKEN]).is_ok());
        assert_eq!(
            verify(
                &uri,
                &h,
                br#"{"property": "value", "boolean": false}"#,
                &[TOKEN]
            ),
            Err(Rejection::BodyHashMismatch)
        );
        assert_eq!(
            verify(URI, &h, JSON_BODY.as_bytes(), &[TOKEN])
                .unwrap_err()
                .kind(),
            "malformed",
            "a JSON body without bodySHA256 is not signed at all"
        );
        assert_eq!(
            sign(TOKEN, &uri, b"").unwrap()[0].1,
            "a9nBmqA0ju/hNViExpshrM61xv4="
        );
        assert_eq!(
            verify(URI, &form(EXPECTED), b"Body=%FF", &[TOKEN])
                .unwrap_err()
                .kind(),
            "malformed",
            "no lossy decoding"
        );
    }

    #[test]
    fn behind_a_proxy_the_public_url_is_used() {
        let url = request_url(
            "https://mycompany.com/myapp.php?ignored=1",
            Some("foo=1&bar=2"),
        );
        assert_eq!(url, URI);
        assert!(verify(&url, &form(EXPECTED), FORM_BODY.as_bytes(), &[TOKEN]).is_ok());
        assert_eq!(request_url("https://h/p", None), "https://h/p");
        assert_eq!(request_url("https://h/p#f", Some("")), "https://h/p");
    }

    #[test]
    fn missing_malformed_and_labels() {
        assert_eq!(
            verify(URI, &HeaderMap::new(), b"", &[TOKEN]),
            Err(Rejection::Missing(SIGNATURE))
        );
        assert_eq!(
            verify(URI, &form("@@@"), FORM_BODY.as_bytes(), &[TOKEN])
                .unwrap_err()
                .kind(),
            "malformed"
        );
        let mut h = form(EXPECTED);
        h.insert(IDEMPOTENCY, "1234-abcd".parse().unwrap());
        assert_eq!(
            verify(URI, &h, FORM_BODY.as_bytes(), &[TOKEN])
                .unwrap()
                .delivery_id
                .as_deref(),
            Some("1234-abcd")
        );
    }
}
