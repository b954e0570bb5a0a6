//! What a reload swaps: the hook table and the per-request limits, built from a validated config.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use crate::config::{Config, PayloadKind};
use crate::metrics::{HookMetrics, Metrics};
use crate::signature::Verifier;

/// One configured hook, ready to serve.
#[derive(Debug)]
pub struct Hook {
    pub path: Arc<str>,
    pub verifier: Verifier,
    pub payload: PayloadKind,
    pub allow_ips: Vec<IpNet>,
    pub metrics: HookMetrics,
}

/// The part of the configuration a SIGHUP can change without dropping connections.
#[derive(Debug)]
pub struct LiveConfig {
    pub hooks: HashMap<String, Arc<Hook>>,
    pub trusted_proxies: Vec<IpNet>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl LiveConfig {
    pub fn from_config(config: &Config, metrics: &Metrics) -> Result<LiveConfig, String> {
        let mut hooks = HashMap::new();
        for h in &config.hooks {
            let verifier =
                Verifier::new(h.scheme.clone(), &h.secrets, h.tolerance, h.allow_unsigned)
                    .map_err(|e| format!("hook {}: {e}", h.path))?;
            let path: Arc<str> = Arc::from(h.path.as_str());
            hooks.insert(
                h.path.clone(),
                Arc::new(Hook {
                    metrics: metrics.hook(&path),
                    path,
                    verifier,
                    payload: h.payload,
                    allow_ips: h.allow_ips.clone(),
                }),
            );
        }
        Ok(LiveConfig {
            hooks,
            trusted_proxies: config.trusted_proxies.clone(),
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
        })
    }
}
