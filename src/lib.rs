//! webhook-listener: receives webhooks, verifies each sender's signature over the raw body in
//! constant time, caps bodies, parses typed payloads, and acknowledges an event only once it is
//! durably appended to the event log.
//!
//! The modules, lowest floor first (a module imports only from its own floor or below; a test in
//! `tests/it/layers.rs` keeps it so):
//! - pure cores: [`signature`] (schemes, verification, signing), [`payload`] (typed bodies);
//! - services: [`event_log`] (group-committed, fsynced log and its line formats), [`dedupe`],
//!   [`metrics`], [`forward`], [`client_ip`] (the client address through trusted proxies),
//!   [`diagnostics`] (stderr, escaped);
//! - [`config`]: the file, validated, with every hook's verifier built;
//! - [`live_config`]: what a SIGHUP swaps;
//! - [`http`]: the public listener (router, extractor, handler, errors);
//! - [`admin`]: the operator's listener (every delivery and why, live; fed by `http`'s observer);
//! - [`app`]: build, serve, reload, stop;
//! - [`replay`]: sends dead letters or a JSON event log's events to a sink again;
//! - [`cli`]: the subcommands.

pub mod admin;
pub mod app;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod dedupe;
pub mod diagnostics;
pub mod event_log;
pub mod forward;
pub mod http;
pub mod live_config;
pub mod metrics;
pub mod payload;
pub mod replay;
pub mod signature;
