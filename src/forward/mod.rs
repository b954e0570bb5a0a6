//! Forwarding: every accepted event, once it is durable, goes on to each configured sink (NATS
//! JetStream, Redis Streams, a command, an HTTP relay) through a spool the service owns.
//!
//! The pieces, lowest first: [`event`] is what travels (pure data); [`sink`] is the one job a sink
//! has (deliver one event, say whether to retry); [`spool`] keeps every accepted event durable
//! until every sink has it (segments, checkpoints, dead letters); [`runner`] drives one sink over
//! the spool (retries, backoff, in-flight bound, filters, pause) and publishes its [`status`].
//! The spool, checkpoints, retries, backoff and dead letters live once, around every sink, not
//! inside each.
//!
//! # Wiring (what the server does with these)
//!
//! At start, before the event-log writer thread takes any line:
//! ```text
//! let (mut spool, report) = Spool::open(SpoolConfig { dir, max_bytes, segment_bytes })?;
//! // report.torn_tail: Some(..) -> warn with segment, offset, bytes_cut, records_cut, damage
//! let handle = spool.handle();                  // Clone + Send + Sync
//! for each [[sinks]] entry (name checked with spool::validate_sink_name at config load):
//!     let cp = handle.register(name)?;          // before the first append
//!     let runner = Runner::spawn(sink, &handle, cp, RunnerConfig { .. }, &shutdown_token)?;
//!     // keep runner.status().clone() for /healthz, metrics and required-sink waits
//! move `spool` into the writer thread
//! ```
//! Per group commit, on the writer thread: for each event `spool.append(&event)` (its `Ok(seq)`
//! goes back to the request; `Full` → that request answers 503 + Retry-After; `TooLarge` → 413 or
//! 503; any other error fails the whole group), write the log lines, then `fdatasync` the log and
//! `spool.sync()` — both must succeed before the group is acknowledged; `sync` publishes the
//! durable sequence that wakes the runners. The two syncs touch different files, so they can run
//! side by side (`std::thread::scope`) to keep one sync's latency per group.
//!
//! `required = true`: after the local commit, `timeout(required_timeout,
//! status.wait_confirmed(seq))` per required sink; on timeout 503 + Retry-After (the event stays
//! spooled). `/healthz`: `handle.is_full()` and each `status.snapshot()` (state, lag). SIGHUP:
//! `runner.resume()` on every runner; a sink removed from the config: `runner.stop()`,
//! `runner.join().await`, `handle.unregister(name)`. SIGTERM: cancel the shared token, then
//! `join` every runner (each waits at most its `shutdown_timeout`), then stop the writer.

pub mod event;
pub mod exec;
pub mod filter;
pub mod http;
pub mod lines;
pub mod nats;
pub mod redact;
pub mod redis;
pub mod runner;
pub mod service;
pub mod sink;
pub mod spool;
pub mod status;
pub mod subject;
#[cfg(test)]
mod testing;
pub mod threads;
mod window;

pub use event::Event;
pub use filter::EventFilter;
pub use runner::{Runner, RunnerConfig};
pub use service::{ActiveSink, ForwardError, Forwarding, SinkKind, SinkSpec};
pub use sink::{DeliveryError, Sink};
pub use spool::{Spool, SpoolConfig, SpoolError, SpoolHandle};
pub use status::{SinkState, SinkStatus, StatusSnapshot};
