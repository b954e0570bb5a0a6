//! Events for the forwarding tests: a fixed sample and a proptest strategy over every field.

use bytes::Bytes;
use chrono::DateTime;
use proptest::prelude::*;
use uuid::Uuid;

use super::Event;

/// A plausible event, distinct per `n` (id, delivery id, body), about `body_len` bytes of body.
pub fn event(n: u64) -> Event {
    event_sized(n, 64)
}

pub fn event_sized(n: u64, body_len: usize) -> Event {
    let mut body = format!("{{\"n\":{n},\"pad\":\"").into_bytes();
    body.resize(body_len.saturating_sub(2).max(body.len()), b'x');
    body.extend_from_slice(b"\"}");
    Event {
        id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(n)),
        hook: "/github".into(),
        provider: "github".into(),
        event_type: Some(
            if n.is_multiple_of(2) {
                "push"
            } else {
                "pull_request.opened"
            }
            .into(),
        ),
        delivery_id: Some(format!("d-{n}")),
        received_at: DateTime::from_timestamp(1_700_000_000 + n as i64, 123_456_789)
            .unwrap_or_default(),
        content_type: Some("application/json".into()),
        client: Some("192.0.2.1".into()),
        body: Bytes::from(body),
    }
}

/// Any event the intake could produce, and some it could not (any Unicode, any body bytes).
pub fn any_event() -> impl Strategy<Value = Event> {
    (
        any::<u128>(),
        ".{0,20}",
        ".{0,12}",
        proptest::option::of(".{0,24}"),
        proptest::option::of(".{0,40}"),
        (-8_000_000_000i64..8_000_000_000i64, 0u32..1_000_000_000),
        proptest::option::of(".{0,30}"),
        proptest::option::of(".{0,16}"),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(
            |(id, hook, provider, event_type, delivery_id, (s, ns), ct, client, body)| Event {
                id: Uuid::from_u128(id),
                hook,
                provider,
                event_type,
                delivery_id,
                received_at: DateTime::from_timestamp(s, ns).unwrap_or_default(),
                content_type: ct,
                client,
                body: Bytes::from(body),
            },
        )
}
