//! The integration tests: the real binary on 127.0.0.1:0, real sockets, the real event log. One
//! test binary with a module per subject, so the crate is linked once.

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod admin_browser;
mod client_addr;
mod dedupe_attacks;
mod durability;
mod event_types;
mod forward_sinks;
mod inputs;
mod integrity;
mod layers;
mod netbox;
mod operations;
mod providers;
mod writer_attacks;
