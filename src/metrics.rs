//! Prometheus metrics. Every request ends in exactly one [`Outcome`], which both counts and names
//! the diagnostic, so dashboards and logs agree.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The package version, as `--version`, the start-up line, `/healthz` and `/metrics` say it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the binary was built from (`git describe`, stamped by build.rs; "unknown" without git).
pub const COMMIT: &str = env!("WEBHOOK_LISTENER_COMMIT");

use crate::forward::Forwarding;

mod sinks;

/// How a request ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    accepted,
    duplicate,
    rejected_signature,
    too_large,
    invalid_payload,
    unavailable,
    overloaded,
    /// The body did not fit in `max_buffered_bytes`.
    over_budget,
    timeout,
    forbidden,
    not_found,
    method_not_allowed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::accepted => "accepted",
            Outcome::duplicate => "duplicate",
            Outcome::rejected_signature => "rejected_signature",
            Outcome::too_large => "too_large",
            Outcome::invalid_payload => "invalid_payload",
            Outcome::unavailable => "unavailable",
            Outcome::overloaded => "overloaded",
            Outcome::over_budget => "over_budget",
            Outcome::timeout => "timeout",
            Outcome::forbidden => "forbidden",
            Outcome::not_found => "not_found",
            Outcome::method_not_allowed => "method_not_allowed",
        }
    }
}

/// A hook path as a label value, shared rather than copied on every request.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct HookName(pub Arc<str>);

impl EncodeLabelValue for HookName {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    hook: HookName,
    outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabel {
    hook: HookName,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_buckets() -> Histogram {
    // 100 µs .. ~6.5 s: a verified, synced request takes about a millisecond.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// One hook's handles into [`Metrics`] for the common case, an accepted request.
#[derive(Debug, Clone)]
pub struct HookMetrics {
    accepted: Counter,
    duration: Histogram,
}

impl HookMetrics {
    pub fn accepted(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
        self.accepted.inc();
    }
}

/// All metrics of one process.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily<HookLabel>,
    log_write: Histogram,
    log_sync: Histogram,
    log_bytes: Counter,
    in_flight: Gauge<i64, std::sync::atomic::AtomicI64>,
    buffered_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    reloads: Family<ReloadLabels, Counter>,
    dedupe_evictions: Family<HookLabel, Counter>,
    none: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Webhook requests by hook path and outcome",
            requests.clone(),
        );
        let duration: HistogramFamily<HookLabel> = Family::new_with_constructor(request_buckets);
        registry.register(
            "webhook_request_duration_seconds",
            "Time from request start to response, by hook",
            duration.clone(),
        );
        let log_write = Histogram::new(exponential_buckets(0.00001, 2.0, 18));
        registry.register(
            "webhook_event_log_write_seconds",
            "Time to write one group of event lines",
            log_write.clone(),
        );
        let log_sync = Histogram::new(exponential_buckets(0.00001, 2.0, 18));
        registry.register(
            "webhook_event_log_sync_seconds",
            "Time of one fdatasync of the event log",
            log_sync.clone(),
        );
        let log_bytes = Counter::default();
        registry.register(
            "webhook_event_log_bytes",
            "Bytes appended to the event log",
            log_bytes.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "webhook_requests_in_flight",
            "Hook requests being processed",
            in_flight.clone(),
        );
        let buffered_bytes = Gauge::default();
        registry.register(
            "webhook_buffered_body_bytes",
            "Request body bytes reserved from max_buffered_bytes",
            buffered_bytes.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "webhook_config_reloads",
            "Configuration reloads by result",
            reloads.clone(),
        );
        let dedupe_evictions = Family::<HookLabel, Counter>::default();
        registry.register(
            "webhook_listener_dedupe_evictions",
            "Delivery ids forgotten before their dedupe window ended (a replay of one is accepted)",
            dedupe_evictions.clone(),
        );
        // `webhook_listener_build_info{version, commit} 1`: dashboards join on it to say what runs.
        registry.register(
            "webhook_listener_build",
            "The version and commit of the running binary",
            Info::new(vec![("version", VERSION), ("commit", COMMIT)]),
        );
        Metrics {
            registry,
            requests,
            duration,
            log_write,
            log_sync,
            log_bytes,
            in_flight,
            buffered_bytes,
            reloads,
            dedupe_evictions,
            none: Arc::from("none"),
        }
    }

    /// The series an accepted request of `hook` updates, looked up once per config load instead of
    /// per request (each family lookup takes a lock and hashes the labels).
    pub fn hook(&self, hook: &Arc<str>) -> HookMetrics {
        let name = HookName(hook.clone());
        HookMetrics {
            accepted: self
                .requests
                .get_or_create(&RequestLabels {
                    hook: name.clone(),
                    outcome: Outcome::accepted,
                })
                .clone(),
            duration: self
                .duration
                .get_or_create(&HookLabel { hook: name })
                .clone(),
        }
    }

    /// The counter of `hook`'s ids evicted early; created at zero so dashboards see the series.
    pub fn dedupe_evictions(&self, hook: &Arc<str>) -> Counter {
        self.dedupe_evictions
            .get_or_create(&HookLabel {
                hook: HookName(hook.clone()),
            })
            .clone()
    }

    /// Counts a finished request. `hook` is a configured path or `None` (counted as `"none"`), so
    /// label values stay bounded whatever paths clients try.
    pub fn request(&self, hook: Option<&Arc<str>>, outcome: Outcome, elapsed: Duration) {
        let hook = HookName(hook.cloned().unwrap_or_else(|| self.none.clone()));
        self.duration
            .get_or_create(&HookLabel { hook: hook.clone() })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels { hook, outcome })
            .inc();
    }

    pub fn in_flight(&self) -> &Gauge<i64, std::sync::atomic::AtomicI64> {
        &self.in_flight
    }

    pub fn buffered_bytes(&self) -> &Gauge<i64, std::sync::atomic::AtomicI64> {
        &self.buffered_bytes
    }

    pub fn observe_log_write(&self, elapsed: Duration, bytes: usize) {
        self.log_write.observe(elapsed.as_secs_f64());
        self.log_bytes.inc_by(bytes as u64);
    }

    pub fn observe_log_sync(&self, elapsed: Duration) {
        self.log_sync.observe(elapsed.as_secs_f64());
    }

    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// Per-sink series (delivered, retried, dead-lettered, lag, connected), read from each sink's
    /// status at scrape time, so they cannot drift from `/healthz`.
    pub fn register_sinks(&mut self, forward: Arc<Forwarding>) {
        self.registry
            .register_collector(Box::new(sinks::SinkCollector(forward)));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
