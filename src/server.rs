//! The HTTP server: router, the observing layer, the accept loop with header timeouts and lingering
//! close, live reload on SIGHUP, and graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::config::{Config, ConfigError};
use crate::dedupe::Dedupe;
use crate::error::{result, Rejection};
use crate::extract::{HookRequest, HookTarget};
use crate::handler::{self, Accepted};
use crate::metrics::{Metrics, Outcome};
use crate::sink::{EventLog, WriterThread};
use crate::state::{AppState, Runtime};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot open event log {path}: {source}")]
    Log { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Hooks(String),
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

/// A TCP stream that, when hyper lets go of it, keeps reading (and discarding) for a moment before
/// closing. Closing a socket with unread request bytes makes the kernel send RST, which can destroy
/// a 413 the client has not read yet; web servers call this a lingering close.
struct Lingering(Option<TcpStream>);

/// How long and how much a closing connection is drained.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 << 20;

impl Drop for Lingering {
    fn drop(&mut self) {
        let (Some(mut stream), Ok(rt)) = (self.0.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        rt.spawn(async move {
            let deadline = tokio::time::Instant::now() + LINGER;
            let mut buf = vec![0u8; 16 * 1024];
            let mut total = 0;
            while total < LINGER_BYTES {
                match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => total += n,
                    _ => break,
                }
            }
        });
    }
}

impl Lingering {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        // Only `Drop` takes the stream out, so it is always present while hyper polls.
        Pin::new(self.0.as_mut().expect("stream present until drop"))
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

/// A bound, ready-to-run server. Tests build one on `127.0.0.1:0` and read [`App::local_addr`].
pub struct App {
    listener: TcpListener,
    state: Arc<AppState>,
    writer: WriterThread,
    config: Config,
    config_path: Option<PathBuf>,
}

impl App {
    /// Binds the listener and opens the event log; fails with a message naming what is wrong.
    pub async fn build(config: Config, config_path: Option<PathBuf>) -> Result<App, StartError> {
        let metrics = Arc::new(Metrics::new());
        let runtime = Runtime::from_config(&config, &metrics).map_err(StartError::Hooks)?;
        let (log, writer) = EventLog::start(&config.log.file, config.log.fsync, metrics.clone())
            .map_err(|source| StartError::Log {
                path: config.log.file.clone(),
                source,
            })?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let state = Arc::new(AppState {
            runtime: ArcSwap::from_pointee(runtime),
            log,
            log_format: config.log.format,
            dedupe: Dedupe::new(config.dedupe_window, config.dedupe_max_entries),
            metrics,
            permits: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            max_in_flight: config.max_concurrent_requests,
        });
        Ok(App {
            listener,
            state,
            writer,
            config,
            config_path,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until SIGTERM or ctrl-c; SIGHUP reloads the config and reopens the event log.
    pub async fn run_until_stopped(self) -> io::Result<()> {
        self.run(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets requests in flight finish (up to
    /// `shutdown_timeout`), and flushes the event log.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let App {
            listener,
            state,
            writer,
            config,
            config_path,
        } = self;
        let router = router(state.clone());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.request_timeout)
            .keep_alive(true);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::pin!(shutdown);
        tracing::info!(
            listen = %listener.local_addr()?,
            hooks = ?state.runtime.load().hooks.keys().collect::<Vec<_>>(),
            log = %config.log.file.display(),
            "webhook-listener serving"
        );

        loop {
            tokio::select! {
                // Shutdown first: once asked to stop, accept nothing more.
                biased;
                () = &mut shutdown => break,
                // SIGHUP: new config for new requests; the log reopens by path for logrotate.
                _ = hup.recv() => {
                    reload(&state, &config, config_path.as_deref());
                    state.log.reopen().await;
                }
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    let router = router.clone();
                    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        router.clone().oneshot(req)
                    });
                    let conn = graceful.watch(
                        http.serve_connection(TokioIo::new(Lingering(Some(tcp))), svc),
                    );
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, %peer, "connection ended with an error");
                        }
                    });
                }
            }
        }

        drop(listener);
        tracing::info!("shutting down: finishing requests in flight");
        if tokio::time::timeout(config.shutdown_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?config.shutdown_timeout,
                "requests still in flight at the shutdown timeout were cut off (not acknowledged)"
            );
        }
        state.log.shutdown().await;
        drop(state);
        writer.join().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Re-reads the config file; an invalid one is refused and the running config stays.
fn reload(state: &AppState, running: &Config, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        tracing::info!("SIGHUP: no --config file to reload (running on the embedded default)");
        return;
    };
    let loaded = Config::load(Some(path))
        .map_err(|e| e.to_string())
        .and_then(|c| Runtime::from_config(&c, &state.metrics).map(|rt| (c, rt)));
    match loaded {
        Ok((new, rt)) => {
            for (key, changed) in [
                ("listen", new.listen != running.listen),
                ("log", new.log != running.log),
                (
                    "max_concurrent_requests",
                    new.max_concurrent_requests != running.max_concurrent_requests,
                ),
            ] {
                if changed {
                    tracing::warn!(
                        key,
                        "changed in the config file; takes effect after a restart"
                    );
                }
            }
            let hooks: Vec<String> = rt.hooks.keys().cloned().collect();
            state.runtime.store(Arc::new(rt));
            state.metrics.reload(true);
            tracing::info!(config = %path.display(), ?hooks, "config reloaded");
        }
        Err(e) => {
            state.metrics.reload(false);
            tracing::error!(config = %path.display(), error = %e, "config reload refused; the previous config stays in force");
        }
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
