//! The public listener's router: `/healthz`, `/metrics`, and every configured hook path.

pub mod client_ip;
pub mod error;
pub mod extract;
pub mod handler;
pub mod linger;

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::Semaphore;

use crate::dedupe::Dedupe;
use crate::event_log::{EventLog, LogFormat};
use crate::live_config::LiveConfig;
use crate::metrics::{Metrics, Outcome};
use error::{result, Rejection};
use extract::{HookRequest, HookTarget};
use handler::Accepted;

/// Shared by all requests. Everything but `live` is fixed for the life of the process.
pub struct AppState {
    pub live: ArcSwap<LiveConfig>,
    pub log: EventLog,
    pub log_format: LogFormat,
    pub dedupe: Dedupe,
    pub metrics: Arc<Metrics>,
    /// Hook requests in flight; a request that finds none free is answered 503 at once.
    pub permits: Arc<Semaphore>,
    /// The number of permits `permits` started with.
    pub max_in_flight: usize,
}

/// The router: `/healthz`, `/metrics`, and every configured hook path (looked up per request, so a
/// reload changes hooks without rebuilding anything).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz).fallback(method_not_allowed))
        .route("/metrics", get(metrics).fallback(method_not_allowed))
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

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let body = match state.log.health().error() {
        None => serde_json::json!({ "result": "ok", "event_log": "ok" }),
        Some(e) => {
            serde_json::json!({ "result": "degraded", "event_log": format!("failing: {e}") })
        }
    };
    (StatusCode::OK, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    // Requests in flight are the permits taken: read here rather than counted up and down by every
    // request on a shared atomic.
    let taken = state
        .max_in_flight
        .saturating_sub(state.permits.available_permits());
    state.metrics.in_flight().set(taken as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Every request that is not `/healthz` or `/metrics`: resolves the client address, runs the hook
/// extractor and handler, then logs and counts how the request ended. Observing here rather than in
/// a middleware layer keeps the hot path to one router dispatch and no boxed layer future
/// (measured with callgrind), while still seeing the extractor's rejections.
async fn hook(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let start = Instant::now();
    let target = HookTarget::resolve(&state, &req);
    let method = req.method().clone();
    let path_for_log = target.hook.is_none().then(|| req.uri().path().to_owned());
    let resp = match HookRequest::read(req, &state, &target).await {
        Ok(r) => handler::receive(State(state.clone()), r)
            .await
            .into_response(),
        Err(e) => e.into_response(),
    };
    let elapsed = start.elapsed();
    let hook = target.hook.as_deref();
    let label = hook.map_or("none", |h| &*h.path);
    let client = target.client;
    if let Some(Accepted(outcome)) = resp.extensions().get::<Accepted>() {
        match (hook, outcome) {
            (Some(h), Outcome::accepted) => h.metrics.accepted(elapsed),
            _ => state
                .metrics
                .request(hook.map(|h| &h.path), *outcome, elapsed),
        }
        tracing::debug!(hook = label, client = ?client, outcome = outcome.as_str(), ?elapsed, "accepted");
    } else if let Some(rej) = resp.extensions().get::<Rejection>() {
        state
            .metrics
            .request(hook.map(|h| &h.path), rej.outcome, elapsed);
        let status = resp.status().as_u16();
        let path = path_for_log.as_deref().unwrap_or(label);
        match rej.outcome {
            Outcome::not_found | Outcome::method_not_allowed => tracing::info!(
                %method, path, client = ?client, status, reason = %rej.detail, "request refused"
            ),
            _ => tracing::warn!(
                %method, path, client = ?client, status, outcome = rej.outcome.as_str(),
                reason = %rej.detail, "request refused"
            ),
        }
    }
    resp
}
