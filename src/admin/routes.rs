//! The admin router: the page, one delivery, the JSON API, the live stream, `/metrics`; the `Host`
//! check in front of everything, the token check in front of all but the login form and the
//! assets; security headers on every answer.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast::error::RecvError;

use super::host::HostPolicy;
use super::pages::{self, Filters, HookView};
use super::record::Record;
use super::recorder::Recorder;
use super::sinks;
use super::{assets, OUTCOMES};
use crate::config::AdminConfig;
use crate::http::{metrics_text, AppState};

/// The session cookie's name.
const COOKIE: &str = "wl_admin";

/// No script or style but this listener's own files, nothing from any other host, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Clone)]
pub struct AdminState {
    app: Arc<AppState>,
    recorder: Arc<Recorder>,
    auth: Option<Arc<Auth>>,
    hosts: Arc<HostPolicy>,
    recent: usize,
    /// `http://host:port` of the public listener, for the paste-into-the-sender lines.
    public_base: Arc<str>,
}

/// Wrong tokens (login form or `Bearer`) tried in a row before guessing is slowed down.
const GUESS_BURST: u32 = 10;
/// Then one more wrong token per this long: 1,800 an hour, not the thousands a second a loop
/// could try against an operator's token.
const GUESS_EVERY: Duration = Duration::from_secs(2);

/// The token, and the cookie value derived from it (so the cookie is not the token itself).
struct Auth {
    token: Vec<u8>,
    cookie: String,
    /// Wrong tokens consume it; once it is empty no token is checked at all (429) until it has
    /// room again, so a guesser learns nothing faster than [`GUESS_EVERY`]. The session cookie
    /// (256 bits, not guessable) is never held back: a browser signed in before a guessing run
    /// keeps working.
    guesses: DefaultDirectRateLimiter,
    /// Until when token checks are refused (ms after `epoch`); set when `guesses` ran out.
    locked_until_ms: AtomicU64,
    epoch: Instant,
}

impl Auth {
    /// Whether `token` is the token, or, while token checks are paused, how long until they are
    /// not (then it is not looked at). A wrong one is counted, and pauses the checks when the
    /// budget is spent.
    fn check(&self, token: &[u8]) -> Result<bool, Duration> {
        let now = self.epoch.elapsed().as_millis() as u64;
        let until = self.locked_until_ms.load(Ordering::Relaxed);
        if now < until {
            return Err(Duration::from_millis(until - now));
        }
        if bool::from(token.ct_eq(&self.token)) {
            return Ok(true);
        }
        if let Err(not_until) = self.guesses.check() {
            let wait = not_until
                .wait_time_from(DefaultClock::default().now())
                .max(GUESS_EVERY);
            let until = self.epoch.elapsed() + wait;
            self.locked_until_ms
                .fetch_max(until.as_millis() as u64, Ordering::Relaxed);
            tracing::warn!(
                wait_secs = wait.as_secs(),
                "admin: too many wrong tokens; token checks paused"
            );
        }
        Ok(false)
    }
}

/// 429 with `Retry-After` (whole seconds, rounded up): token checks are paused.
fn too_many_guesses(wait: Duration, api: bool) -> Response {
    let secs = wait.as_millis().div_ceil(1000).max(1) as u64;
    let mut resp = if api {
        let result = "too many wrong admin tokens; try again later";
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(serde_json::json!({ "result": result })),
        )
            .into_response()
    } else {
        (StatusCode::TOO_MANY_REQUESTS, pages::login_paused(secs)).into_response()
    };
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

impl AdminState {
    pub fn new(
        app: Arc<AppState>,
        recorder: Arc<Recorder>,
        config: &AdminConfig,
        public: SocketAddr,
    ) -> AdminState {
        let auth = config.token.as_ref().map(|t| {
            // Keyed with the token, so only someone who had it can have made the cookie.
            let mut mac = Hmac::<Sha256>::new_from_slice(t.expose()).expect("any key length");
            mac.update(b"webhook-listener admin session v1");
            let quota = Quota::with_period(GUESS_EVERY)
                .expect("a non-zero period")
                .allow_burst(NonZeroU32::new(GUESS_BURST).expect("non-zero"));
            Arc::new(Auth {
                token: t.expose().to_vec(),
                cookie: hex::encode(mac.finalize().into_bytes()),
                guesses: RateLimiter::direct(quota),
                locked_until_ms: AtomicU64::new(0),
                epoch: Instant::now(),
            })
        });
        let public_base = if public.ip().is_unspecified() {
            format!("http://<this-host>:{}", public.port())
        } else {
            format!("http://{public}")
        };
        let listen = config
            .listen
            .map_or(IpAddr::from(Ipv4Addr::LOCALHOST), |a| a.ip());
        AdminState {
            app,
            recorder,
            auth,
            hosts: Arc::new(HostPolicy::new(&config.allowed_hosts, listen)),
            recent: config.recent,
            public_base: public_base.into(),
        }
    }
}

pub fn router(state: AdminState) -> Router {
    let guarded = Router::new()
        .route("/", get(index))
        .route("/deliveries/{id}", get(detail))
        .route("/api/deliveries", get(api_list))
        .route("/api/deliveries/{id}", get(api_one))
        .route("/api/sinks", get(api_sinks))
        .route("/api/stream", get(stream))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/login", get(login_form).post(login))
        .route(assets::SCRIPT_PATH, get(script))
        .route(assets::STYLE_PATH, get(style))
        .merge(guarded)
        .fallback(|| async { (StatusCode::NOT_FOUND, pages::not_found("No such page.")) })
        // Layers wrap from the inside out: the Host check runs first, and its 421 still gets the
        // security headers.
        .layer(middleware::from_fn_with_state(state.clone(), require_host))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// The address a connection arrived at, put on each of its requests by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Refuses a request whose `Host` this listener does not answer to (see [`super::host`]) with
/// 421 Misdirected Request, not 403: nothing is wrong with who asks, only with the name the
/// request is addressed to, which is what 421 says (RFC 9110 §15.5.20). The same with a token: a
/// rebinding page cannot send the token, but the check costs nothing and holds if a cookie or a
/// token ever leaks into the browser.
async fn require_host(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    let local = req.extensions().get::<LocalAddr>().map(|l| l.0);
    if s.hosts.allows(host, local) {
        return next.run(req).await;
    }
    tracing::warn!(
        host = host.unwrap_or("(none)"),
        path = req.uri().path(),
        "admin request refused: Host is not localhost, a loopback address, the listen address \
         or in admin.allowed_hosts (a web page reaching this listener through DNS rebinding sends its own name)"
    );
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(serde_json::json!({ "result": "this listener does not serve that host name" })),
    )
        .into_response()
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// `Authorization: Bearer <token>` (scripts) or the login cookie (browsers); without a configured
/// token (loopback only) everything passes.
async fn require_token(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let Some(auth) = &s.auth else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    let api = path.starts_with("/api/") || path == "/metrics";
    let verdict = {
        let headers = req.headers();
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .any(|c| bool::from(c.as_bytes().ct_eq(auth.cookie.as_bytes())));
        // One check per request, the first `Bearer`: more headers are not more guesses.
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .find_map(|v| v.as_bytes().strip_prefix(b"Bearer "));
        match (cookie, bearer) {
            (true, _) => Ok(true),
            (false, Some(t)) => auth.check(t),
            (false, None) => Ok(false),
        }
    };
    match verdict {
        Ok(true) => return next.run(req).await,
        Err(wait) => return too_many_guesses(wait, api),
        Ok(false) => {}
    }
    let mut resp = if api {
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "result": "admin token required" })),
        )
            .into_response()
    } else {
        (StatusCode::UNAUTHORIZED, pages::login(false)).into_response()
    };
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"webhook-listener admin\""),
    );
    resp
}

async fn login_form() -> Response {
    pages::login(false).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(s): State<AdminState>, Form(f): Form<LoginForm>) -> Response {
    let Some(auth) = &s.auth else {
        return Redirect::to("/").into_response();
    };
    match auth.check(f.token.as_bytes()) {
        Ok(true) => {}
        Ok(false) => return (StatusCode::UNAUTHORIZED, pages::login(true)).into_response(),
        Err(wait) => return too_many_guesses(wait, false),
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        auth.cookie
    );
    let mut resp = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", assets::SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", assets::STYLE)
}

fn asset(kind: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        text,
    )
        .into_response()
}

/// `?hook=&outcome=&limit=&after=`; empty values (the page's "all") are no filter.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    hook: Option<String>,
    outcome: Option<String>,
    limit: Option<usize>,
    after: Option<u64>,
}

impl ListQuery {
    fn hook(&self) -> Option<&str> {
        self.hook.as_deref().filter(|h| !h.is_empty())
    }
    fn outcome(&self) -> Option<&str> {
        self.outcome.as_deref().filter(|o| !o.is_empty())
    }
    fn bad_outcome(&self) -> Option<Response> {
        let o = self.outcome()?;
        if OUTCOMES.iter().any(|k| k.as_str() == o) {
            return None;
        }
        let names: Vec<_> = OUTCOMES.iter().map(|k| k.as_str()).collect();
        Some(
            (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({
                    "result": format!("unknown outcome; one of {}", names.join(", "))
                })),
            )
                .into_response(),
        )
    }
    fn keeps(&self, r: &Record) -> bool {
        self.hook().is_none_or(|h| *r.summary.hook == *h)
            && self.outcome().is_none_or(|o| r.summary.outcome == o)
    }
}

async fn index(State(s): State<AdminState>, Query(q): Query<ListQuery>) -> Response {
    if let Some(bad) = q.bad_outcome() {
        return bad;
    }
    // Read before the rows: a record pushed in between is then sent by the stream, not lost.
    let last_id = s.recorder.last_id();
    let rows = s.recorder.list(q.limit.unwrap_or(s.recent), |r| q.keeps(r));
    let live = s.app.live.load();
    let mut hooks: Vec<_> = live.hooks.values().collect();
    hooks.sort_by(|a, b| a.path.cmp(&b.path));
    let stats = s.recorder.stats();
    let latencies = s.recorder.latencies();
    let views: Vec<HookView<'_>> = hooks
        .iter()
        .map(|h| {
            let mut l = latencies.get(&*h.path).cloned().unwrap_or_default();
            l.sort_by(f64::total_cmp);
            HookView {
                hook: h,
                stats: stats.get(&*h.path).cloned().unwrap_or_default(),
                p50_ms: percentile(&l, 0.50),
                p99_ms: percentile(&l, 0.99),
                public_base: &s.public_base,
            }
        })
        .collect();
    let filters = Filters {
        hook: q.hook(),
        outcome: q.outcome(),
    };
    let sinks = s.app.forward.as_deref().map(|f| sinks::views(Some(f)));
    pages::index(&rows, &views, sinks.as_deref(), &filters, last_id, s.recent).into_response()
}

/// Nearest rank over sorted `v`.
fn percentile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = (p * v.len() as f64).ceil() as usize;
    v.get(rank.clamp(1, v.len()) - 1).copied()
}

async fn detail(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    let Some(r) = id.parse().ok().and_then(|id| s.recorder.get(id)) else {
        return (
            StatusCode::NOT_FOUND,
            pages::not_found("No such delivery is kept (it may have left the ring)."),
        )
            .into_response();
    };
    let pretty = r.body.as_ref().and_then(|b| {
        let v: serde_json::Value = serde_json::from_str(&b.text()).ok()?;
        serde_json::to_string_pretty(&v).ok()
    });
    let delivered = sinks::delivered_to(s.app.forward.as_deref(), &r.summary);
    pages::detail(&r, pretty.as_deref(), delivered.as_deref()).into_response()
}

async fn api_list(State(s): State<AdminState>, Query(q): Query<ListQuery>) -> Response {
    if let Some(bad) = q.bad_outcome() {
        return bad;
    }
    let limit = q.limit.unwrap_or(100).min(s.recent);
    let rows = s.recorder.list(limit, |r| q.keeps(r));
    let summaries: Vec<_> = rows.iter().map(|r| &r.summary).collect();
    Json(summaries).into_response()
}

/// One record, and for an accepted delivery that was spooled what each sink did with it (absent
/// otherwise: `[]` would say there are no sinks).
#[derive(serde::Serialize)]
struct One<'a> {
    #[serde(flatten)]
    record: &'a Record,
    #[serde(skip_serializing_if = "Option::is_none")]
    sinks: Option<Vec<sinks::DeliveredTo>>,
}

async fn api_one(State(s): State<AdminState>, Path(id): Path<String>) -> Response {
    match id.parse().ok().and_then(|id| s.recorder.get(id)) {
        Some(r) => Json(One {
            sinks: sinks::delivered_to(s.app.forward.as_deref(), &r.summary),
            record: &r,
        })
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "result": "no such delivery is kept" })),
        )
            .into_response(),
    }
}

/// Every running sink's state, lag, counters and last error; `[]` without sinks.
async fn api_sinks(State(s): State<AdminState>) -> Response {
    Json(sinks::views(s.app.forward.as_deref())).into_response()
}

async fn metrics(State(s): State<AdminState>) -> Response {
    metrics_text(&s.app)
}

/// The live stream: `delivery` events (id = the record id) after `Last-Event-ID` (a reconnect) or
/// `?after=` (the page's newest row); none before, without either. `lagged` says how many the
/// client missed, when it fell behind or the ring no longer holds them.
async fn stream(
    State(s): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(bad) = q.bad_outcome() {
        return bad;
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(q.after);
    let sub = s.recorder.subscribe(after);
    let q = Arc::new(q);
    let last = sub
        .backlog
        .last()
        .map(|r| r.summary.id)
        .or(after)
        .unwrap_or(0);
    let missed = (sub.missed > 0).then(|| lagged(sub.missed));
    let keep = q.clone();
    let backlog = sub
        .backlog
        .into_iter()
        .filter(move |r| keep.keeps(r))
        .map(delivery);
    let live = stream::unfold((sub.live, last), move |(mut rx, mut last)| {
        let q = q.clone();
        async move {
            loop {
                match rx.recv().await {
                    // Already sent from the backlog.
                    Ok(r) if r.summary.id <= last => continue,
                    Ok(r) => {
                        last = r.summary.id;
                        if q.keeps(&r) {
                            return Some((delivery(r), (rx, last)));
                        }
                    }
                    Err(RecvError::Lagged(n)) => return Some((lagged(n), (rx, last))),
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    let events = stream::iter(missed.into_iter().chain(backlog)).chain(live);
    sse(events)
}

fn sse(events: impl Stream<Item = Event> + Send + 'static) -> Response {
    Sse::new(events.map(Ok::<_, Infallible>))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn delivery(r: Arc<Record>) -> Event {
    let ev = Event::default()
        .id(r.summary.id.to_string())
        .event("delivery");
    ev.json_data(&r.summary)
        .unwrap_or_else(|_| Event::default().comment("unserializable record"))
}

fn lagged(n: u64) -> Event {
    Event::default()
        .event("lagged")
        .data(format!("{{\"skipped\":{n}}}"))
}
