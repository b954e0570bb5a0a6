//! What a reload swaps: the hook table and the per-request limits, built from a validated config.
//!
//! Every request loads one snapshot and uses it to the end, so a SIGHUP changes hooks for new
//! requests without dropping connections or mixing two configs in one request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use crate::client_ip::ClientIpHeader;
use crate::config::Config;
use crate::metrics::{HookMetrics, Metrics};
use crate::payload::PayloadKind;
use crate::signature::Verifier;

/// One configured hook, ready to serve.
#[derive(Debug)]
pub struct Hook {
    /// The exact path it answers; shared with the metrics labels and the log lines, not copied.
    pub path: Arc<str>,
    /// The scheme and keys its requests are checked against.
    pub verifier: Verifier,
    /// What its verified bodies must be.
    pub payload: PayloadKind,
    /// Client networks allowed to call it; empty allows everyone.
    pub allow_ips: Vec<IpNet>,
    /// Its series of the accepted-request counter and duration histogram, looked up once per load
    /// rather than per request.
    pub metrics: HookMetrics,
}

/// The part of the configuration a SIGHUP can change without dropping connections. Held in an
/// `ArcSwap` by the app state; a reload stores a new one, requests in flight keep the old.
#[derive(Debug)]
pub struct LiveConfig {
    /// Hooks by exact path.
    pub hooks: HashMap<String, Arc<Hook>>,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Which forwarding header the trusted proxies set.
    pub client_ip_header: ClientIpHeader,
    /// The body cap, applied to the declared `Content-Length` and to the bytes read.
    pub max_body_bytes: usize,
    /// How long a client may take to send its body.
    pub request_timeout: Duration,
    /// The average a body must keep arriving at after its first second (0: unchecked).
    pub min_body_bytes_per_sec: u64,
    /// One client address holds at most 1/this of the body budget and of the request slots.
    pub client_share_divisor: usize,
}

impl LiveConfig {
    /// Cannot fail: every verifier was built when the config was validated.
    pub fn new(config: &Config, metrics: &Metrics) -> LiveConfig {
        let hooks = config
            .hooks
            .iter()
            .map(|h| {
                let path: Arc<str> = Arc::from(h.path.as_str());
                let hook = Hook {
                    metrics: metrics.hook(&path),
                    path,
                    verifier: h.verifier.clone(),
                    payload: h.payload,
                    allow_ips: h.allow_ips.clone(),
                };
                (h.path.clone(), Arc::new(hook))
            })
            .collect();
        LiveConfig {
            hooks,
            trusted_proxies: config.trusted_proxies.clone(),
            client_ip_header: config.client_ip_header,
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
            min_body_bytes_per_sec: config.min_body_bytes_per_sec,
            client_share_divisor: config.client_share_divisor,
        }
    }
}
