//! A sink's one job: deliver one event and say, when it could not, whether trying again can help.
//! Checkpoints, retries with backoff, in-flight bounds and dead letters live once, in the runner
//! around every sink, so each sink stays small. A sink that can pipeline (a broker on one
//! connection) also answers for several events at once: [`Sink::deliver_batch`].

use std::future::Future;
use std::time::Duration;

use super::Event;

/// Why a delivery did not succeed, and what the runner should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The broker or service is away or said "later" (network error, timeout, 5xx, 429): retry with
    /// backoff, never give up. `retry_after` is the peer's own hint, when it gave one.
    #[error("{error}")]
    Retry {
        error: String,
        retry_after: Option<Duration>,
    },
    /// An answer that will never change for this event (too large for the server, a subject the
    /// stream rejects, a 4xx): dead-letter this one event and move on.
    #[error("{0}")]
    Permanent(String),
    /// The peer told us to stop sending altogether (HTTP 410 Gone): pause the sink, keep the events
    /// spooled, until a reload or restart.
    #[error("{0}")]
    Pause(String),
}

impl DeliveryError {
    pub fn retry(error: impl std::fmt::Display) -> Self {
        DeliveryError::Retry {
            error: error.to_string(),
            retry_after: None,
        }
    }
}

/// One destination. Implementations hold their own connection and reconnect lazily: a `deliver`
/// that finds the connection gone tries to re-establish it and answers `Retry` if it cannot.
pub trait Sink: Send + Sync + 'static {
    /// The sink's configured name, for metrics, diagnostics and file names.
    fn name(&self) -> &str;

    /// Delivers one event; `Ok` only once the destination confirmed it (a broker's ack, an exit
    /// status 0, a 2xx). A duplicate acknowledged by the broker's de-duplication is `Ok`.
    fn deliver(&self, event: &Event) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// Delivers `events` (never empty) in order and answers one result per event tried, in the
    /// same order; a shorter answer means the rest were not tried. The runner counts the leading
    /// `Ok`s as delivered and sends the first failure and everything after it again, in order
    /// (later `Ok`s included: the broker's de-duplication makes that re-send harmless).
    ///
    /// The default delivers only the first event and lets the runner come back for the rest, so a
    /// sink that cannot pipeline is confirmed one event at a time, exactly as with `deliver`.
    fn deliver_batch(
        &self,
        events: &[Event],
    ) -> impl Future<Output = Vec<Result<(), DeliveryError>>> + Send {
        async move {
            match events.first() {
                Some(first) => vec![self.deliver(first).await],
                None => Vec::new(),
            }
        }
    }

    /// Batches this sink may have out at once. More than 1 only where batches reach the
    /// destination in the order they were handed over, on one connection (Redis runs a
    /// connection's commands in order), so building and confirming one batch overlaps the
    /// destination's work on the other. The runner sends a second batch only while nothing has
    /// failed since the first went out, and only the first one retries.
    fn pipeline_depth(&self) -> usize {
        1
    }
}
