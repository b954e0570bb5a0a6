//! webhook-listener: receives webhooks, verifies each sender's signature over the raw body in
//! constant time, caps bodies, parses typed payloads, and acknowledges an event only once it is
//! durably appended to the event log.
//!
//! The request path: `server` (router, accept loop) → `extract` (hook lookup, allowlist, body cap,
//! signature via `signature`) → `handler` (typed `payload`, `dedupe`, `record` line) → `sink`
//! (group-committed, fsynced event log).

pub mod cli;
pub mod client;
pub mod config;
pub mod dedupe;
pub mod error;
pub mod extract;
pub mod forward;
pub mod handler;
pub mod metrics;
pub mod payload;
pub mod record;
pub mod server;
pub mod signature;
pub mod sink;
pub mod state;
