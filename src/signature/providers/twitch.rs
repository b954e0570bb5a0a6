//! Twitch EventSub webhooks: `Twitch-Eventsub-Message-Signature: sha256=<hex>` of HMAC-SHA256 over
//! message id + timestamp + body, no separators, with the timestamp exactly as sent (RFC 3339 with
//! nanoseconds). Twitch's "Verifying the event message" asks receivers to refuse messages older
//! than 10 minutes, hence the default window. Three message types: `notification` (an event),
//! `webhook_callback_verification` (signed like any message; answered 200 with the `challenge` as
//! `text/plain`, not an event) and `revocation` (the subscription was revoked; answer 2xx, log it).

use serde::Deserialize;

use super::{
    any_match, check_window, hmac_sha256, hmac_sha256_each, label, malformed, prefixed_hex_sig,
    required, Delivery, Rejection,
};
use http::HeaderMap;

pub const ID: &str = "twitch-eventsub-message-id";
pub const TIMESTAMP: &str = "twitch-eventsub-message-timestamp";
pub const SIGNATURE: &str = "twitch-eventsub-message-signature";
pub const TYPE: &str = "twitch-eventsub-message-type";
pub const SUBSCRIPTION_TYPE: &str = "twitch-eventsub-subscription-type";
/// Twitch: "make sure the message isn't older than 10 minutes".
pub const DEFAULT_TOLERANCE_SECS: u64 = 600;
/// Longest challenge echoed back. Twitch's are short; the bound keeps a reflected body small.
pub const MAX_CHALLENGE_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageKind {
    Notification,
    /// Answer 200, `Content-Type: text/plain`, body exactly this challenge.
    Verification {
        challenge: String,
    },
    Revocation,
    /// A type this code does not know; treat as an event rather than refuse a signed message.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub kind: MessageKind,
    /// Delivery id: the message id (Twitch resends a message with the same id); event type: the
    /// subscription type (e.g. `channel.follow`).
    pub delivery: Delivery,
}

/// `Twitch-Eventsub-Message-Timestamp` to unix seconds.
pub fn parse_timestamp(value: &str) -> Result<i64, Rejection> {
    chrono::DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.timestamp())
        .map_err(|_| malformed(TIMESTAMP, "not an RFC 3339 timestamp"))
}

#[derive(Deserialize)]
struct Challenge {
    challenge: Option<serde_json::Value>,
}

/// The `challenge` of a verified `webhook_callback_verification` body.
pub fn challenge(body: &[u8]) -> Result<String, Rejection> {
    let c: Challenge = serde_json::from_slice(body)
        .map_err(|e| malformed("body", format!("not a JSON object: {e}")))?;
    let text = c
        .challenge
        .ok_or(Rejection::Missing("challenge in the body"))?;
    let text = text
        .as_str()
        .ok_or_else(|| malformed("challenge", "not a string"))?;
    if text.is_empty() || text.len() > MAX_CHALLENGE_LEN || text.chars().any(char::is_control) {
        return Err(malformed(
            "challenge",
            "empty, longer than 1024 bytes, or with control characters",
        ));
    }
    Ok(text.to_string())
}

/// Verifies at `now` (unix seconds).
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[&[u8]],
    now: i64,
    tolerance_secs: u64,
) -> Result<Verified, Rejection> {
    let id = required(headers, ID)?;
    let ts = required(headers, TIMESTAMP)?;
    let sig = prefixed_hex_sig(SIGNATURE, required(headers, SIGNATURE)?, "sha256=")?;
    let kind = required(headers, TYPE)?.trim();
    let sent = parse_timestamp(ts)?;
    let tags = hmac_sha256_each(secrets, &[id.as_bytes(), ts.as_bytes(), body]);
    if !any_match(&tags, &[sig]) {
        return Err(Rejection::Mismatch);
    }
    check_window(sent, now, tolerance_secs)?;
    let kind = match kind {
        "notification" => MessageKind::Notification,
        "webhook_callback_verification" => MessageKind::Verification {
            challenge: challenge(body)?,
        },
        "revocation" => MessageKind::Revocation,
        other => MessageKind::Other(other.chars().take(64).collect()),
    };
    Ok(Verified {
        kind,
        delivery: Delivery {
            delivery_id: label(headers, &[ID]),
            event_type: label(headers, &[SUBSCRIPTION_TYPE]),
        },
    })
}

/// Headers Twitch would send for a `notification`, for the `sign` command. `timestamp` is written
/// as RFC 3339 with nanoseconds, as Twitch writes it.
pub fn sign(
    secret: &[u8],
    body: &[u8],
    message_id: &str,
    timestamp: i64,
    subscription_type: &str,
) -> Vec<(String, String)> {
    let ts = chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let sig = hex::encode(hmac_sha256(
        secret,
        &[message_id.as_bytes(), ts.as_bytes(), body],
    ));
    vec![
        ("Twitch-Eventsub-Message-Id".into(), message_id.into()),
        ("Twitch-Eventsub-Message-Timestamp".into(), ts),
        (
            "Twitch-Eventsub-Message-Signature".into(),
            format!("sha256={sig}"),
        ),
        ("Twitch-Eventsub-Message-Type".into(), "notification".into()),
        (
            "Twitch-Eventsub-Subscription-Type".into(),
            subscription_type.into(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    // Twitch's docs show the scheme with example headers but no secret, so the signatures here were
    // computed with Python's hmac/hashlib: HMAC-SHA256(b"s3cRe7twitch", ID + TS + body). The id
    // and nanosecond timestamp are in the shape of the docs' examples.
    const SECRET: &[u8] = b"s3cRe7twitch";
    const MSG_ID: &str = "befa7b53-d79d-478f-86b9-120f112b044e";
    const TS: &str = "2023-07-19T14:56:51.634234626Z";
    const SENT: i64 = 1689778611;
    const NOTIFICATION: &[u8] = br#"{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","type":"channel.follow"},"event":{"user_id":"1337"}}"#;
    const NOTIFICATION_SIG: &str =
        "sha256=37a38b57bae5aade92c3e1acf0d2928af26cb768da116b8909c9a4683ffdd907";
    const VERIFICATION: &[u8] = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","type":"channel.follow"}}"#;
    const VERIFICATION_SIG: &str =
        "sha256=1882c274d0446fa72c14fa012432e1e31ea7d5f93bf4afdce948851cc20ba693";

    fn headers(sig: &str, kind: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ID, MSG_ID.parse().unwrap());
        h.insert(TIMESTAMP, TS.parse().unwrap());
        h.insert(SIGNATURE, sig.parse().unwrap());
        h.insert(TYPE, kind.parse().unwrap());
        h.insert(SUBSCRIPTION_TYPE, "channel.follow".parse().unwrap());
        h
    }

    #[test]
    fn notification_verifies_with_labels() {
        let v = verify(
            &headers(NOTIFICATION_SIG, "notification"),
            NOTIFICATION,
            &[SECRET],
            SENT,
            600,
        )
        .unwrap();
        assert_eq!(v.kind, MessageKind::Notification);
        assert_eq!(v.delivery.delivery_id.as_deref(), Some(MSG_ID));
        assert_eq!(v.delivery.event_type.as_deref(), Some("channel.follow"));
        assert_eq!(parse_timestamp(TS), Ok(SENT));
    }

    #[test]
    fn verification_yields_the_challenge_and_revocation_is_recognised() {
        let v = verify(
            &headers(VERIFICATION_SIG, "webhook_callback_verification"),
            VERIFICATION,
            &[b"old", SECRET],
            SENT,
            600,
        )
        .unwrap();
        assert_eq!(
            v.kind,
            MessageKind::Verification {
                challenge: "pogchamp-kappa-360noscope-vohiyo".into()
            }
        );
        assert_eq!(
            verify(
                &headers(VERIFICATION_SIG, "webhook_callback_verification"),
                VERIFICATION,
                &[b"old"],
                SENT,
                600
            ),
            Err(Rejection::Mismatch),
            "an unsigned challenge is never echoed"
        );
        let revoke =
            br#"{"subscription":{"status":"authorization_revoked","type":"channel.follow"}}"#;
        let sig = hex::encode(hmac_sha256(
            SECRET,
            &[MSG_ID.as_bytes(), TS.as_bytes(), revoke],
        ));
        let r = verify(
            &headers(&format!("sha256={sig}"), "revocation"),
            revoke,
            &[SECRET],
            SENT,
            600,
        );
        assert_eq!(r.unwrap().kind, MessageKind::Revocation);
    }

    #[test]
    fn window_is_ten_minutes_and_the_timestamp_is_signed() {
        let h = headers(NOTIFICATION_SIG, "notification");
        assert!(verify(&h, NOTIFICATION, &[SECRET], SENT + 600, 600).is_ok());
        assert_eq!(
            verify(&h, NOTIFICATION, &[SECRET], SENT + 601, 600),
            Err(Rejection::OutsideTolerance {
                skew_secs: 601,
                tolerance_secs: 600
            })
        );
        let mut moved = h.clone();
        moved.insert(TIMESTAMP, "2023-07-19T14:56:51.634234627Z".parse().unwrap());
        assert_eq!(
            verify(&moved, NOTIFICATION, &[SECRET], SENT, 600),
            Err(Rejection::Mismatch),
            "even a nanosecond changes the signed text"
        );
        let mut other_id = h;
        other_id.insert(ID, "another".parse().unwrap());
        assert_eq!(
            verify(&other_id, NOTIFICATION, &[SECRET], SENT, 600),
            Err(Rejection::Mismatch)
        );
    }

    #[test]
    fn missing_and_malformed() {
        let h = headers(NOTIFICATION_SIG, "notification");
        for name in [ID, TIMESTAMP, SIGNATURE, TYPE] {
            let mut m = h.clone();
            m.remove(name);
            assert_eq!(
                verify(&m, NOTIFICATION, &[SECRET], SENT, 600),
                Err(Rejection::Missing(name))
            );
        }
        let mut bad_ts = h.clone();
        bad_ts.insert(TIMESTAMP, "1689778611".parse().unwrap());
        assert_eq!(
            verify(&bad_ts, NOTIFICATION, &[SECRET], SENT, 600)
                .unwrap_err()
                .kind(),
            "malformed"
        );
        let mut bare = h;
        bare.insert(
            SIGNATURE,
            NOTIFICATION_SIG
                .trim_start_matches("sha256=")
                .parse()
                .unwrap(),
        );
        assert_eq!(
            verify(&bare, NOTIFICATION, &[SECRET], SENT, 600)
                .unwrap_err()
                .kind(),
            "malformed"
        );
        assert!(challenge(br#"{"challenge":""}"#).is_err());
        assert!(challenge(br#"{"challenge":7}"#).is_err());
        assert!(challenge(br#"{"challenge":"a\nb"}"#).is_err());
        assert_eq!(
            challenge(b"{}"),
            Err(Rejection::Missing("challenge in the body"))
        );
    }

    #[test]
    fn sign_round_trips() {
        let mut h = HeaderMap::new();
        for (k, v) in sign(SECRET, NOTIFICATION, MSG_ID, SENT, "channel.follow") {
            h.insert(http::HeaderName::try_from(k).unwrap(), v.parse().unwrap());
        }
        assert_eq!(h[TIMESTAMP], "2023-07-19T14:56:51.000000000Z");
        assert!(verify(&h, NOTIFICATION, &[SECRET], SENT, 600).is_ok());
    }
}
