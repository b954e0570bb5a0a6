//! What every request shares: the reloadable hook table and the long-lived services.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use ipnet::IpNet;
use tokio::sync::Semaphore;

use crate::config::{Config, LogFormat, PayloadKind};
use crate::dedupe::Dedupe;
use crate::metrics::{HookMetrics, Metrics};
use crate::signature::Verifier;
use crate::sink::EventLog;

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
pub struct Runtime {
    pub hooks: HashMap<String, Arc<Hook>>,
    pub trusted_proxies: Vec<IpNet>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl Runtime {
    pub fn from_config(config: &Config, metrics: &Metrics) -> Result<Runtime, String> {
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
        Ok(Runtime {
            hooks,
            trusted_proxies: config.trusted_proxies.clone(),
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
        })
    }
}

/// Shared by all requests. Everything but `runtime` is fixed for the life of the process.
pub struct AppState {
    pub runtime: ArcSwap<Runtime>,
    pub log: EventLog,
    pub log_format: LogFormat,
    pub dedupe: Dedupe,
    pub metrics: Arc<Metrics>,
    /// Hook requests in flight; a request that finds none free is answered 503 at once.
    pub permits: Arc<Semaphore>,
    /// The number of permits `permits` started with.
    pub max_in_flight: usize,
}
