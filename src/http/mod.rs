//! The public listener's router: `/healthz`, `/metrics`, and every configured hook path.

pub mod budget;
pub mod error;
pub mod extract;
pub mod handler;
pub mod linger;
pub mod observe;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::Semaphore;

use crate::config::{reserved, Config};
use crate::dedupe::Dedupe;
use crate::event_log::{EventLog, LogFormat};
use crate::forward::Forwarding;
use crate::live_config::{Hook, LiveConfig};
use crate::metrics::{Metrics, Outcome, COMMIT, VERSION};
use crate::payload::{PayloadError, PayloadKind};
use budget::{Budget, RefusalLog};
use error::{result, ApiError};
use extract::{HookRequest, HookTarget};
use handler::Accepted;
use observe::{Observed, Observer, Seen};

/// Shared by all requests. Everything but `live` is fixed for the life of the process: a reload
/// that changes the rest says it takes effect after a restart.
pub struct AppState {
    /// The hooks and limits of the current config; a reload stores a new snapshot, and each request
    /// loads one and keeps it to the end.
    pub live: ArcSwap<LiveConfig>,
    /// The writer's handle: an accepted event is answered only once its line is durable here.
    pub log: EventLog,
    /// How event lines are written (`log.format`).
    pub log_format: LogFormat,
    /// Delivery ids accepted within the window, one table per hook path; outside `live`, so a reload
    /// keeps the ids of the hooks it keeps.
    pub dedupe: Dedupe,
    /// Every counter and histogram of the process; `/metrics` encodes it.
    pub metrics: Arc<Metrics>,
    /// Hook requests in flight; a request that finds none free is answered 503 at once.
    pub permits: Arc<Semaphore>,
    /// The number of permits `permits` started with.
    pub max_in_flight: usize,
    /// Sees every hook request (the admin listener's recorder); `None`: nothing is captured.
    pub observer: Option<Arc<dyn Observer>>,
    /// Whether `/metrics` answers here too (`admin.public_metrics`); otherwise it is 404.
    pub public_metrics: bool,
    /// Body bytes all requests may hold at once (`max_buffered_bytes`, read at start only).
    pub budget: Budget,
    /// Keeps a flood of refusals for memory to one diagnostic line per interval.
    pub over_budget_log: RefusalLog,
    /// The sinks and their spool, when any `[[sinks]]` are configured: every accepted event is
    /// spooled with its line, and required sinks are waited for.
    pub forward: Option<Arc<Forwarding>>,
}

impl AppState {
    /// The state for `config`, writing to `log` and counting into `metrics`.
    pub fn new(config: &Config, log: EventLog, metrics: Arc<Metrics>) -> AppState {
        AppState {
            live: ArcSwap::from_pointee(LiveConfig::new(config, &metrics)),
            log,
            log_format: config.log.format,
            dedupe: Dedupe::new(
                config.dedupe_window,
                config.dedupe_max_entries,
                metrics.clone(),
            ),
            metrics,
            permits: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            max_in_flight: config.max_concurrent_requests,
            observer: None,
            public_metrics: config.admin.public_metrics,
            budget: Budget::new(config.max_buffered_bytes),
            over_budget_log: RefusalLog::default(),
            forward: None,
        }
    }

    /// The same state, forwarding through `forward`.
    pub fn with_forwarding(mut self, forward: Option<Arc<Forwarding>>) -> AppState {
        self.forward = forward;
        self
    }
}

/// The router: the [`reserved`] paths, and every configured hook path (looked up per request, so a
/// reload changes hooks without rebuilding anything).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(reserved::HEALTHZ, get(healthz).fallback(method_not_allowed))
        .route(reserved::METRICS, get(metrics).fallback(method_not_allowed))
        .fallback(hook)
        .with_state(state)
}

async fn method_not_allowed() -> Response {
    let mut r = result(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: use GET",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// The `service` field of `/healthz`: `healthcheck` believes only an answer that carries it.
pub const SERVICE: &str = "webhook-listener";

/// Public: states and counts only. The free-text errors (a relay's answer body, a path, the event
/// log's I/O error) are for operators: the diagnostics and the admin listener's `/api/sinks`.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let failing = state.log.health().error().is_some();
    let mut body = if failing {
        serde_json::json!({ "result": "degraded", "event_log": "failing" })
    } else {
        serde_json::json!({ "result": "ok", "event_log": "ok" })
    };
    body["service"] = SERVICE.into();
    body["version"] = VERSION.into();
    body["commit"] = COMMIT.into();
    if let Some(forward) = &state.forward {
        let spool = forward.spool();
        let snapshots: Vec<_> = forward
            .sinks()
            .iter()
            .map(|s| (s.clone(), s.status.snapshot()))
            .collect();
        // The full flag is cleared only by the next append; once every sink has caught up that
        // append succeeds, so a quiet spool whose sinks are done is not reported full.
        let full = spool.is_full() && snapshots.iter().any(|(_, st)| st.lag_events > 0);
        body["spool"] = serde_json::json!({
            "state": if full { "full" } else { "ok" },
            "used_bytes": spool.used_bytes(),
        });
        if full {
            // Senders get 503 until the sinks catch up: an operator must look.
            body["result"] = "degraded".into();
        }
        // A sink its destination paused (HTTP 410) delivers nothing until an operator acts (SIGHUP
        // or a restart): degraded. A sink that is only behind does not make intake unhealthy
        // (events wait in the spool): it is listed, not counted against the result.
        if snapshots
            .iter()
            .any(|(_, st)| st.state == crate::forward::SinkState::Paused)
        {
            body["result"] = "degraded".into();
        }
        let sinks: Vec<serde_json::Value> = snapshots
            .iter()
            .map(|(s, st)| {
                serde_json::json!({
                    "name": s.name,
                    "kind": s.kind,
                    "state": st.state.as_str(),
                    "connected": s.connected(),
                    "required": s.required_timeout.is_some(),
                    "lag_events": st.lag_events,
                    "lag_seconds": st.lag_seconds,
                    "delivered": st.delivered,
                    "dead_lettered": st.dead_lettered,
                })
            })
            .collect();
        body["sinks"] = sinks.into();
    }
    (StatusCode::OK, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    if !state.public_metrics {
        // Served on the admin listener: on the public port it lists hook paths to strangers.
        return ApiError::NotFound.into_response();
    }
    metrics_text(&state)
}

/// The Prometheus text, for the public `/metrics` and the admin listener's.
pub fn metrics_text(state: &AppState) -> Response {
    // Requests in flight are the permits taken: read here rather than counted up and down by every
    // request on a shared atomic.
    let taken = state
        .max_in_flight
        .saturating_sub(state.permits.available_permits());
    state.metrics.in_flight().set(taken as i64);
    let held = i64::try_from(state.budget.held()).unwrap_or(i64::MAX);
    state.metrics.buffered_bytes().set(held);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Every request that is not a reserved path: reads and verifies it ([`HookRequest::read`]), hands
/// it to [`handler::receive`], then counts, logs and (for the admin page's [`Observer`]) records
/// how it ended, in this one place, before turning the result into a response. Observing here rather than in a middleware layer keeps
/// the hot path to one router dispatch and no boxed layer future.
async fn hook(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let start = Instant::now();
    let target = HookTarget::resolve(&state, &req);
    let method = req.method().clone();
    let unknown_path = target.hook.is_none().then(|| req.uri().path().to_owned());
    // Only for an observer: the headers are copied, masked, into one buffer (the body is shared,
    // not copied).
    let mut seen = state.observer.as_ref().map(|_| {
        let scheme = target.hook.as_deref().map(|h| h.verifier.scheme());
        let seen = Seen {
            headers: observe::KeptHeaders::capture(req.headers(), scheme),
            ..Seen::default()
        };
        (seen, chrono::Utc::now())
    });
    let mut slot = seen.as_mut().map(|(s, _)| s);
    let result = match HookRequest::read(req, &state, &target, slot.as_deref_mut()).await {
        Ok(r) => handler::receive(&state, r, slot).await,
        Err(e) => Err(e),
    };
    let ended = Ended {
        target: &target,
        method: &method,
        unknown_path: unknown_path.as_deref(),
        elapsed: start.elapsed(),
    };
    match &result {
        Ok(accepted) => ended.accepted(&state, accepted),
        Err(e) => ended.refused(&state, e),
    }
    if let (Some(observer), Some((seen, received_at))) = (&state.observer, seen) {
        // A hook's path is the request's; an unknown one was kept for the diagnostic.
        let path = match (&target.hook, &unknown_path) {
            (Some(h), _) => &*h.path,
            (None, Some(p)) => p.as_str(),
            (None, None) => "",
        };
        let (outcome, status, reason) = match &result {
            Ok(a) => (a.outcome(), a.status(), a.reason().map(str::to_owned)),
            Err(e) => (e.outcome(), e.status().as_u16(), Some(e.reason())),
        };
        observer.observe(Observed {
            hook: target.hook.as_deref(),
            path,
            method: &method,
            client: target.client,
            received_at,
            latency: ended.elapsed,
            outcome,
            status,
            reason,
            seen,
        });
    }
    match result {
        Ok(accepted) => accepted.into_response(),
        Err(e) => e.into_response(),
    }
}

/// What the metrics and the diagnostics say about a finished hook request.
struct Ended<'a> {
    target: &'a HookTarget,
    method: &'a Method,
    /// The request path when no hook has it (a hook's path is its label).
    unknown_path: Option<&'a str>,
    elapsed: Duration,
}

impl Ended<'_> {
    fn label(&self) -> &str {
        self.target.hook.as_deref().map_or("none", |h| &*h.path)
    }

    fn accepted(&self, state: &AppState, accepted: &Accepted) {
        let hook = self.target.hook.as_deref();
        let outcome = accepted.outcome();
        match (hook, outcome) {
            (Some(h), Outcome::accepted) => h.metrics.accepted(self.elapsed),
            _ => state
                .metrics
                .request(hook.map(|h| &h.path), outcome, self.elapsed),
        }
        tracing::debug!(
            hook = self.label(), client = %self.target.client, outcome = outcome.as_str(),
            elapsed = ?self.elapsed, "accepted"
        );
    }

    fn refused(&self, state: &AppState, e: &ApiError) {
        let outcome = e.outcome();
        let hook = self.target.hook.as_deref();
        state
            .metrics
            .request(hook.map(|h| &h.path), outcome, self.elapsed);
        let (method, client) = (self.method, self.target.client);
        let status = e.status().as_u16();
        let path = self.unknown_path.unwrap_or(self.label());
        let reason = e.detail();
        let hint = hint(state, hook, self.unknown_path, e);
        let hint = hint.as_deref();
        match outcome {
            Outcome::not_found | Outcome::method_not_allowed => tracing::info!(
                %method, path, client = %client, status, reason = %reason, hint, "request refused"
            ),
            Outcome::over_budget => {
                if let Some(not_logged) = state.over_budget_log.admit(Instant::now()) {
                    tracing::warn!(
                        %method, path, client = %client, status, outcome = outcome.as_str(),
                        reason = %reason, refused_unlogged_since_last = not_logged,
                        "request refused (one line per {:?} at most)",
                        budget::REFUSAL_LOG_INTERVAL
                    );
                }
            }
            _ => tracing::warn!(
                %method, path, client = %client, status, outcome = outcome.as_str(),
                reason = %reason, hint, "request refused"
            ),
        }
    }
}

/// What the operator likely got wrong, for the diagnostic only: the response never names a hook
/// (hook paths are not for strangers) or the config.
fn hint(
    state: &AppState,
    hook: Option<&Hook>,
    unknown_path: Option<&str>,
    e: &ApiError,
) -> Option<String> {
    match (e, hook, unknown_path) {
        (ApiError::NotFound, _, Some(path)) => {
            // The sender's URL and the hook's path differ only by the trailing slash.
            let other = match path.strip_suffix('/') {
                Some(bare) => bare.to_owned(),
                None => format!("{path}/"),
            };
            state.live.load().hooks.contains_key(&other).then(|| {
                format!("a hook is configured at {other}; the path must match exactly, trailing slash included")
            })
        }
        (ApiError::Payload(PayloadError::Shape(why)), Some(h), _)
            if h.payload == PayloadKind::Netbox
                && (why.contains("missing field `event`")
                    || why.contains("missing field `timestamp`")) =>
        {
            Some(format!(
                "a NetBox webhook with a custom body template sends its own JSON: set payload = \"json\" on the hook at {}",
                h.path
            ))
        }
        _ => None,
    }
}
