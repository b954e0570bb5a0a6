//! The event as it is spooled and forwarded: what a sink needs to deliver it, and nothing of the
//! request that is not part of the event (no headers beyond the content type, no secrets).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Assigned at intake (UUIDv7, so ids sort by arrival); the same in the event log line, the
    /// spool record and every forwarded message.
    pub id: Uuid,
    /// The hook's path, e.g. `/github`.
    pub hook: String,
    /// The provider's config name, e.g. `github`.
    pub provider: String,
    /// The event type as the log records it (`push`, `pull_request.opened`, `dcim.site.created`),
    /// when the sender gives one.
    pub event_type: Option<String>,
    /// The sender's delivery id, when it sends one (already length-capped at intake).
    pub delivery_id: Option<String>,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
    /// The request's `Content-Type`, as sent.
    pub content_type: Option<String>,
    /// The client address as the event log records it (`unknown` when it could not be decided).
    pub client: Option<String>,
    /// The body exactly as received.
    pub body: Bytes,
}

impl Event {
    /// The key brokers de-duplicate on: `<hook>:<delivery id>` when the sender supplied a delivery
    /// id (so a sender's retry that lands on another replica collapses), else the event id (so our
    /// own re-send after a crash collapses).
    pub fn dedupe_key(&self) -> String {
        match &self.delivery_id {
            Some(d) => format!("{}:{}", self.hook, d),
            None => self.id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(delivery_id: Option<&str>) -> Event {
        Event {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            hook: "/github".into(),
            provider: "github".into(),
            event_type: Some("push".into()),
            delivery_id: delivery_id.map(str::to_owned),
            received_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            content_type: Some("application/json".into()),
            client: Some("192.0.2.1".into()),
            body: Bytes::from_static(b"{}"),
        }
    }

    #[test]
    fn dedupe_key_prefers_the_senders_delivery_id() {
        assert_eq!(event(Some("abc")).dedupe_key(), "/github:abc");
        assert_eq!(
            event(None).dedupe_key(),
            "01900000-0000-7000-8000-000000000001"
        );
    }
}
