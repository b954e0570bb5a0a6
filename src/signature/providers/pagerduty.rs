//! PagerDuty V3 webhooks: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 of the body,
//! one entry per signing secret during a rotation; any entry may match (PagerDuty developer docs,
//! "Verifying Signatures"). Event id and type come from the body: `event.id`, `event.event_type`
//! ("v3 Overview", "Webhook Payload").

use serde::Deserialize;

use super::{
    any_match, bounded, hex_sig, hmac_sha256, hmac_sha256_each, malformed, required, Delivery,
    Rejection,
};
use http::HeaderMap;

pub const SIGNATURE: &str = "x-pagerduty-signature";

/// The `v1` entries that decode; entries of other versions and undecodable ones are skipped, but at
/// least one `v1` must decode.
pub fn parse_header(value: &str) -> Result<Vec<Vec<u8>>, Rejection> {
    let sigs: Vec<Vec<u8>> = value
        .split(',')
        .filter_map(|e| e.trim().strip_prefix("v1="))
        .filter_map(|h| hex_sig(SIGNATURE, h).ok())
        .collect();
    if sigs.is_empty() {
        return Err(malformed(SIGNATURE, "no decodable v1=<hex> entry"));
    }
    Ok(sigs)
}

pub fn verify(headers: &HeaderMap, body: &[u8], secrets: &[&[u8]]) -> Result<Delivery, Rejection> {
    let sigs = parse_header(required(headers, SIGNATURE)?)?;
    let tags = hmac_sha256_each(secrets, &[body]);
    if !any_match(&tags, &sigs) {
        return Err(Rejection::Mismatch);
    }
    Ok(event_labels(body))
}

#[derive(Deserialize)]
struct Envelope {
    event: Option<Event>,
}

#[derive(Deserialize)]
struct Event {
    id: Option<serde_json::Value>,
    event_type: Option<serde_json::Value>,
}

/// `event.id` and `event.event_type` of a verified body; absent or odd values are left out.
pub fn event_labels(body: &[u8]) -> Delivery {
    let Ok(Envelope { event: Some(e) }) = serde_json::from_slice::<Envelope>(body) else {
        return Delivery::default();
    };
    let text = |v: Option<serde_json::Value>| v.as_ref().and_then(|v| v.as_str()).and_then(bounded);
    Delivery {
        delivery_id: text(e.id),
        event_type: text(e.event_type),
    }
}

/// The header PagerDuty would send for `body` signed with every one of `secrets`.
pub fn sign(secrets: &[&[u8]], body: &[u8]) -> Vec<(String, String)> {
    let entries: Vec<String> = secrets
        .iter()
        .map(|s| format!("v1={}", hex::encode(hmac_sha256(s, &[body]))))
        .collect();
    vec![("X-PagerDuty-Signature".into(), entries.join(","))]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PagerDuty/go-pagerduty, webhookv3/webhookv3_test.go, TestVerifySignature: the official Go
    /// client's secret, body (an `incident.priority_updated` V3 payload) and valid signature.
    const SECRET: &[u8] = b"lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK";
    const BODY: &str = r#"{"event":{"id":"01BWDWL3NYY7LUFPZCC28QUCMK","event_type":"incident.priority_updated","resource_type":"incident","occurred_at":"2021-04-26T17:36:27.458Z","agent":{"html_url":"https://acme.pagerduty.com/users/PLH1HKV","id":"PLH1HKV","self":"https://api.pagerduty.com/users/PLH1HKV","summary":"Tenex Engineer","type":"user_reference"},"client":null,"data":{"id":"PGR0VU2","type":"incident","self":"https://api.pagerduty.com/incidents/PGR0VU2","html_url":"https://acme.pagerduty.com/incidents/PGR0VU2","number":2,"status":"triggered","title":"A little bump in the road","service":{"html_url":"https://acme.pagerduty.com/services/PF9KMXH","id":"PF9KMXH","self":"https://api.pagerduty.com/services/PF9KMXH","summary":"API Service","type":"service_reference"},"assignees":[{"html_url":"https://acme.pagerduty.com/users/PTUXL6G","id":"PTUXL6G","self":"https://api.pagerduty.com/users/PTUXL6G","summary":"User 123","type":"user_reference"}],"escalation_policy":{"html_url":"https://acme.pagerduty.com/escalation_policies/PUS0KTE","id":"PUS0KTE","self":"https://api.pagerduty.com/escalation_policies/PUS0KTE","summary":"Default","type":"escalation_policy_reference"},"teams":[{"html_url":"https://acme.pagerduty.com/teams/PFCVPS0","id":"PFCVPS0","self":"https://api.pagerduty.com/teams/PFCVPS0","summary":"Engineering","type":"team_reference"}],"priority":{"html_url":"https://acme.pagerduty.com/account/incident_priorities","id":"PSO75BM","self":"https://api.pagerduty.com/priorities/PSO75BM","summary":"P1","type":"priority_reference"},"urgency":"high","conference_bridge":{"conference_number":1000,"conference_url":"https://example.com"},"resolve_reason":null}}}"#;
    const VALID: &str = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd";
    /// The same test's "mismatch" case.
    const MISMATCH: &str = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5";

    fn headers(sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE, sig.parse().unwrap());
        h
    }

    #[test]
    fn go_pagerduty_vector() {
        let d = verify(&headers(VALID), BODY.as_bytes(), &[SECRET]).unwrap();
        assert_eq!(d.delivery_id.as_deref(), Some("01BWDWL3NYY7LUFPZCC28QUCMK"));
        assert_eq!(d.event_type.as_deref(), Some("incident.priority_updated"));
        assert_eq!(
            verify(&headers(MISMATCH), BODY.as_bytes(), &[SECRET]),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            verify(&HeaderMap::new(), BODY.as_bytes(), &[SECRET]),
            Err(Rejection::Missing(SIGNATURE))
        );
    }

    #[test]
    fn any_entry_may_match_during_rotation() {
        let both = format!("{MISMATCH},{VALID}");
        assert!(verify(&headers(&both), BODY.as_bytes(), &[SECRET]).is_ok());
        let odd = format!("v2=00, v1=zz ,{VALID}");
        assert!(verify(&headers(&odd), BODY.as_bytes(), &[b"new", SECRET]).is_ok());
        assert_eq!(
            verify(&headers("v2=00,v1=zz"), BODY.as_bytes(), &[SECRET])
                .unwrap_err()
                .kind(),
            "malformed"
        );
        assert_eq!(
            sign(&[b"new", SECRET], BODY.as_bytes())[0]
                .1
                .split(',')
                .nth(1),
            Some(VALID)
        );
    }

    #[test]
    fn labels_tolerate_odd_bodies() {
        assert_eq!(event_labels(b"[]"), Delivery::default());
        assert_eq!(
            event_labels(br#"{"event":{"id":5,"event_type":"pagey.ping"}}"#),
            Delivery {
                delivery_id: None,
                event_type: Some("pagey.ping".into())
            }
        );
    }
}
