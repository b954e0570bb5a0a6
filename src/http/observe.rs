//! What the router hands an [`Observer`] about every finished hook request: the operator's page
//! records it. A trait here, implemented above (`admin`), so this floor names nothing above it; and
//! the capture happens only when an observer is set, so a server without one pays nothing.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::client_ip::Client;
use crate::live_config::Hook;
use crate::metrics::Outcome;

/// Sees each hook request once, where it is counted and logged. Must return at once: it runs on
/// the request path, before the response is sent.
pub trait Observer: Send + Sync + 'static {
    fn observe(&self, request: Observed<'_>);
}

/// What was learnt while serving a request, beyond its outcome. Filled only for an observer.
#[derive(Debug, Default)]
pub struct Seen {
    /// As received (the observer masks what must not be kept).
    pub headers: HeaderMap,
    /// The body when it was read (a refusal before reading leaves it `None`); shares the buffer.
    pub body: Option<Bytes>,
    /// The event type, as the log line records it.
    pub event: Option<String>,
    /// The delivery id the dedupe table keys on.
    pub delivery_id: Option<String>,
    /// The id the log line and every sink carry (UUIDv7), once the line is written.
    pub event_id: Option<String>,
}

/// One finished hook request.
pub struct Observed<'a> {
    /// `None` for a path no hook has.
    pub hook: Option<&'a Hook>,
    /// The request path.
    pub path: &'a str,
    pub method: &'a Method,
    pub client: Client,
    pub received_at: DateTime<Utc>,
    pub latency: Duration,
    pub outcome: Outcome,
    /// The answer's status code.
    pub status: u16,
    /// In words ([`super::error::ApiError::reason`]); `None` for a plain accept.
    pub reason: Option<String>,
    pub seen: Seen,
}
