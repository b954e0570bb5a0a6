//! Forwarding: every accepted event, once it is durable, goes on to each configured sink (NATS
//! JetStream, Redis Streams, a command, an HTTP relay) through a spool the service owns.
//!
//! The pieces, lowest first: [`event`] is what travels (pure data); [`sink`] is the one job a sink
//! has (deliver one event, say whether to retry). The spool, checkpoints, retries, backoff and dead
//! letters live once, around every sink, not inside each.

pub mod event;
pub mod nats;
pub mod redact;
pub mod redis;
pub mod sink;
pub mod subject;

pub use event::Event;
pub use sink::{DeliveryError, Sink};
