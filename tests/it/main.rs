//! The integration tests: the real binary on 127.0.0.1:0, real sockets, the real event log. One
//! test binary with a module per subject, so the crate is linked once.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod admin_browser;
mod check_config;
mod client_addr;
mod config_errors;
mod dedupe_attacks;
mod diagnostics;
mod durability;
mod event_types;
mod exec_sink;
mod forward_sinks;
mod forwarding;
mod healthcheck;
mod hints;
mod inputs;
mod integrity;
mod layers;
mod memory;
mod netbox;
mod operations;
mod providers;
mod providers_more;
mod replay;
mod rotation;
mod systemd;
mod version;
mod writer_attacks;
