//! What the forwarding benches share: one real NetBox body as an accepted event.

use bytes::Bytes;
use chrono::Utc;
use uuid::Uuid;

use webhook_listener::forward::Event;

/// The NetBox body the benches forward (1,588 bytes, as NetBox 4.6.8 sent it).
pub fn netbox_body() -> Bytes {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/netbox/v4.6.8-created.json"
    );
    Bytes::from(std::fs::read(path).expect("read the NetBox fixture"))
}

/// An accepted event around `body`, with a fresh id (so dedupe never collapses two).
pub fn netbox_event(body: &Bytes) -> Event {
    Event {
        id: Uuid::now_v7(),
        hook: "/netbox".into(),
        provider: "netbox".into(),
        event_type: Some("dcim.site.created".into()),
        delivery_id: None,
        received_at: Utc::now(),
        content_type: Some("application/json".into()),
        client: Some("192.0.2.10".into()),
        body: body.clone(),
    }
}
