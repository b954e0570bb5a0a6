//! Discord: Ed25519 (`X-Signature-Ed25519`, hex) over `X-Signature-Timestamp` + body, verified with
//! the application's public key from the hook's `public_keys`, never from the request. Discord sends
//! deliberately bad signatures when an endpoint is saved and removes endpoints that accept them, so
//! every failure here must become a 401.
//!
//! The two endpoint kinds answer their PING differently, which is why the hook must say which it is:
//! an Interactions endpoint answers `type` 1 with `{"type":1}`; a Webhook Events endpoint answers its
//! PING (`type` 0) with 204 and no body, and there `type` 1 is a real event.

use serde::Deserialize;

use super::ed25519::{any_verifies, PublicKey};
use super::{bounded, check_window, malformed, required, unix_seconds, Rejection};
use http::HeaderMap;

pub const SIGNATURE: &str = "x-signature-ed25519";
pub const TIMESTAMP: &str = "x-signature-timestamp";

/// Which URL of the application this hook is: it decides what a PING is and how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointKind {
    /// The "Interactions Endpoint URL": slash commands, components, modals.
    Interactions,
    /// The "Webhook Events" URL: application authorised, entitlements, and so on.
    WebhookEvents,
}

/// Verifies the signature. Discord documents no replay window; `tolerance_secs` applies one to
/// `X-Signature-Timestamp` (unix seconds) when the hook sets it, and `None` checks only its format.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    keys: &[PublicKey],
    now: i64,
    tolerance_secs: Option<u64>,
) -> Result<(), Rejection> {
    let sig_hex = required(headers, SIGNATURE)?;
    let ts = required(headers, TIMESTAMP)?;
    let sent = unix_seconds(TIMESTAMP, ts)?;
    let sig: [u8; 64] = hex::decode(sig_hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed(SIGNATURE, "not 128 hex characters"))?;
    let mut message = Vec::with_capacity(ts.len() + body.len());
    message.extend_from_slice(ts.as_bytes());
    message.extend_from_slice(body);
    if !any_verifies(keys, &message, &[sig]) {
        return Err(Rejection::Mismatch);
    }
    if let Some(t) = tolerance_secs {
        check_window(sent, now, t)?;
    }
    Ok(())
}

/// What a verified body asks of the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Answer 200 with `application/json` body [`PONG`]; not an event.
    InteractionPing,
    /// Answer 204 with an empty body; not an event.
    WebhookPing,
    /// A real delivery, to log like any other.
    Event {
        /// Interactions: the interaction `id`; webhook events carry no id of their own.
        delivery_id: Option<String>,
        /// Webhook events: `event.type` (e.g. `APPLICATION_AUTHORIZED`); interactions: the
        /// interaction type's name (e.g. `APPLICATION_COMMAND`).
        event_type: Option<String>,
    },
}

/// The body of the answer to an Interactions PING.
pub const PONG: &str = r#"{"type":1}"#;

/// Only the fields needed; the labels are loose `Value`s so an odd one is dropped, not fatal.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<i64>,
    id: Option<serde_json::Value>,
    event: Option<EventBody>,
}

#[derive(Deserialize)]
struct EventBody {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
}

/// Decides what a verified body is for an endpoint of `kind`. A body that is not a JSON object
/// with a numeric `type` is malformed: Discord always sends one.
pub fn classify(kind: EndpointKind, body: &[u8]) -> Result<Message, Rejection> {
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| malformed("body", format!("not JSON: {e}")))?;
    let t = env
        .kind
        .ok_or_else(|| malformed("body", "no numeric \"type\""))?;
    Ok(match (kind, t) {
        (EndpointKind::Interactions, 1) => Message::InteractionPing,
        (EndpointKind::WebhookEvents, 0) => Message::WebhookPing,
        (EndpointKind::Interactions, t) => Message::Event {
            delivery_id: env.id.as_ref().and_then(|v| v.as_str()).and_then(bounded),
            event_type: Some(interaction_type_name(t)),
        },
        (EndpointKind::WebhookEvents, _) => Message::Event {
            delivery_id: None,
            event_type: env
                .event
                .and_then(|e| e.kind)
                .as_ref()
                .and_then(|v| v.as_str())
                .and_then(bounded),
        },
    })
}

/// Discord's names for interaction types (developer docs, "Interaction Type").
fn interaction_type_name(t: i64) -> String {
    match t {
        2 => "APPLICATION_COMMAND".into(),
        3 => "MESSAGE_COMPONENT".into(),
        4 => "APPLICATION_COMMAND_AUTOCOMPLETE".into(),
        5 => "MODAL_SUBMIT".into(),
        other => format!("interaction_type_{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    /// A key pair from `ring`, a different implementation than the verifier's `ed25519-dalek`.
    fn signer(seed: u8) -> (Ed25519KeyPair, PublicKey) {
        let pair = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let public = PublicKey::from_bytes(pair.public_key().as_ref()).unwrap();
        (pair, public)
    }

    fn signed(pair: &Ed25519KeyPair, ts: &str, body: &[u8]) -> HeaderMap {
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(body);
        let sig = pair.sign(&msg);
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE, hex::encode(sig.as_ref()).parse().unwrap());
        h.insert(TIMESTAMP, ts.parse().unwrap());
        h
    }

    const PING: &[u8] = br#"{"type":1,"id":"1","application_id":"2","token":"t","version":1}"#;

    #[test]
    fn independent_signature_verifies_and_wrong_key_or_tampering_does_not() {
        let (pair, key) = signer(7);
        let (_, other) = signer(8);
        let h = signed(&pair, "1700000000", PING);
        assert_eq!(
            verify(&h, PING, std::slice::from_ref(&key), 1700000000, None),
            Ok(())
        );
        assert_eq!(
            verify(&h, PING, &[other.clone(), key.clone()], 0, None),
            Ok(()),
            "any configured key may match"
        );
        assert_eq!(
            verify(&h, PING, &[other], 0, None),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            verify(&h, br#"{"type":2}"#, std::slice::from_ref(&key), 0, None),
            Err(Rejection::Mismatch)
        );
        let mut later = h.clone();
        later.insert(TIMESTAMP, "1700000001".parse().unwrap());
        assert_eq!(
            verify(&later, PING, std::slice::from_ref(&key), 0, None),
            Err(Rejection::Mismatch),
            "the timestamp is signed"
        );
        assert_eq!(verify(&h, PING, &[], 0, None), Err(Rejection::Mismatch));
    }

    #[test]
    fn non_canonical_signature_is_refused() {
        let (pair, key) = signer(9);
        let h = signed(&pair, "1700000000", PING);
        let sig: [u8; 64] = hex::decode(h[SIGNATURE].to_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let mut nc = h.clone();
        let bad = super::super::ed25519::tests::non_canonical(&sig);
        nc.insert(SIGNATURE, hex::encode(bad).parse().unwrap());
        assert_eq!(verify(&nc, PING, &[key], 0, None), Err(Rejection::Mismatch));
    }

    #[test]
    fn missing_and_malformed_headers_are_named() {
        let (pair, key) = signer(7);
        let h = signed(&pair, "1700000000", PING);
        let mut no_sig = h.clone();
        no_sig.remove(SIGNATURE);
        assert_eq!(
            verify(&no_sig, PING, std::slice::from_ref(&key), 0, None),
            Err(Rejection::Missing(SIGNATURE))
        );
        let mut no_ts = h.clone();
        no_ts.remove(TIMESTAMP);
        assert_eq!(
            verify(&no_ts, PING, std::slice::from_ref(&key), 0, None),
            Err(Rejection::Missing(TIMESTAMP))
        );
        let mut short = h.clone();
        short.insert(SIGNATURE, "abcd".parse().unwrap());
        assert_eq!(
            verify(&short, PING, std::slice::from_ref(&key), 0, None)
                .unwrap_err()
                .kind(),
            "malformed"
        );
        let mut words = h;
        words.insert(TIMESTAMP, "yesterday".parse().unwrap());
        assert_eq!(
            verify(&words, PING, &[key], 0, None).unwrap_err().kind(),
            "malformed"
        );
    }

    #[test]
    fn optional_window_applies_after_the_signature() {
        let (pair, key) = signer(7);
        let h = signed(&pair, "1700000000", PING);
        assert_eq!(
            verify(
                &h,
                PING,
                std::slice::from_ref(&key),
                1700000000 + 301,
                Some(300)
            ),
            Err(Rejection::OutsideTolerance {
                skew_secs: 301,
                tolerance_secs: 300
            })
        );
        assert_eq!(
            verify(&h, PING, &[key], 1700000000 + 300, Some(300)),
            Ok(())
        );
    }

    #[test]
    fn pings_are_answered_per_endpoint_kind() {
        // Discord developer docs: Interactions "Receiving an Interaction" (PING is type 1, answered
        // with a PONG of type 1) and Webhook Events "Preparing for Events" (PING is type 0,
        // answered 204 with no body; type 1 is an event with `event.type`).
        assert_eq!(
            classify(EndpointKind::Interactions, PING),
            Ok(Message::InteractionPing)
        );
        assert_eq!(
            classify(
                EndpointKind::WebhookEvents,
                br#"{"version":1,"application_id":"123","type":0}"#
            ),
            Ok(Message::WebhookPing)
        );
        assert_eq!(
            classify(
                EndpointKind::WebhookEvents,
                br#"{"version":1,"application_id":"123","type":1,"event":{"type":"APPLICATION_AUTHORIZED","timestamp":"2024-10-18T14:42:53.064834","data":{}}}"#
            ),
            Ok(Message::Event {
                delivery_id: None,
                event_type: Some("APPLICATION_AUTHORIZED".into())
            }),
            "type 1 on a webhook-events endpoint is an event, not a ping"
        );
        assert_eq!(
            classify(
                EndpointKind::Interactions,
                br#"{"type":2,"id":"1112223334","data":{"name":"hello"}}"#
            ),
            Ok(Message::Event {
                delivery_id: Some("1112223334".into()),
                event_type: Some("APPLICATION_COMMAND".into())
            })
        );
        assert_eq!(
            classify(EndpointKind::Interactions, br#"{"type":0}"#),
            Ok(Message::Event {
                delivery_id: None,
                event_type: Some("interaction_type_0".into())
            }),
            "a webhook-events PING sent to an interactions endpoint is not answered as a PING"
        );
        assert!(classify(EndpointKind::Interactions, b"not json").is_err());
        assert!(classify(EndpointKind::WebhookEvents, br#"{"type":"0"}"#).is_err());
        assert_eq!(PONG, r#"{"type":1}"#);
    }
}
