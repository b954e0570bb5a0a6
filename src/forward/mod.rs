//! Forwarding: every accepted event, once it is durable, goes on to each configured sink (NATS
//! JetStream, Redis Streams, a command, an HTTP relay) through a spool the service owns.
//!
//! The pieces, lowest first: [`event`] is what travels (pure data); [`sink`] is the one job a sink
//! has (deliver one event, say whether to retry); [`spool`] keeps every accepted event durable
//! until every sink has it (segments, checkpoints, dead letters); [`runner`] drives one sink over
//! the spool (retries, backoff, in-flight bound, filters, pause) and publishes its [`status`].
//! The spool, checkpoints, retries, backoff and dead letters live once, around every sink, not
//! inside each.

pub mod event;
pub mod filter;
pub mod runner;
pub mod sink;
pub mod spool;
pub mod status;
#[cfg(test)]
mod testing;
mod window;

pub use event::Event;
pub use filter::EventFilter;
pub use runner::{Runner, RunnerConfig};
pub use sink::{DeliveryError, Sink};
pub use spool::{Spool, SpoolConfig, SpoolError, SpoolHandle};
pub use status::{SinkState, SinkStatus, StatusSnapshot};
