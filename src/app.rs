//! The application: builds the listener, the event log and the shared state from a [`Config`],
//! serves until asked to stop, reloads the config on SIGHUP, and stops gracefully.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::admin::Admin;
use crate::config::{Config, ConfigError};
use crate::event_log::{stall_bound, EventLog, WriterThread};
use crate::http::linger::Lingering;
use crate::http::{router, AppState};
use crate::live_config::LiveConfig;
use crate::metrics::Metrics;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot open event log {path}: {source}")]
    Log { path: PathBuf, source: io::Error },
}

/// A bound, ready-to-run server. Tests build one on `127.0.0.1:0` and read [`App::local_addr`].
pub struct App {
    /// Bound in `build`, so a port in use fails start-up instead of the first request.
    listener: TcpListener,
    /// What every request shares; the router holds one clone, the reload another.
    state: Arc<AppState>,
    /// The event log's writer thread, joined after the last request so every line is on disk.
    writer: WriterThread,
    /// The config the process started with: a reload compares against it to warn about keys that
    /// take effect only after a restart.
    config: Config,
    /// The file SIGHUP re-reads; `None` when running on the embedded default.
    config_path: Option<PathBuf>,
    /// The operator's listener, bound; `None` when `[admin] listen` is off.
    admin: Option<Admin>,
}

impl App {
    /// Binds the listener and opens the event log; fails with a message naming what is wrong.
    pub async fn build(config: Config, config_path: Option<PathBuf>) -> Result<App, StartError> {
        let metrics = Arc::new(Metrics::new());
        let (log, writer) = EventLog::start(
            &config.log.file,
            config.log.fsync,
            stall_bound(config.request_timeout),
            metrics.clone(),
        )
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
        let admin = Admin::bind(&config.admin)
            .await
            .map_err(|(addr, source)| StartError::Bind { addr, source })?;
        let mut state = AppState::new(&config, log, metrics);
        state.observer = admin.as_ref().map(Admin::observer);
        Ok(App {
            listener,
            state: Arc::new(state),
            writer,
            config,
            config_path,
            admin,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin listener's address, when it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|a| a.local_addr().ok())
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
            admin,
        } = self;
        let admin_addr = admin.as_ref().and_then(|a| a.local_addr().ok());
        // Serves until this guard drops at the end of `run`.
        let public = listener.local_addr()?;
        let _admin = admin.map(|a| a.spawn(state.clone(), public));
        let router = router(state.clone());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.request_timeout)
            .keep_alive(true);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let reloading = Arc::new(tokio::sync::Mutex::new(()));
        tokio::pin!(shutdown);
        tracing::info!(
            listen = %listener.local_addr()?,
            admin = %admin_addr.map_or_else(|| "off".to_string(), |a| a.to_string()),
            hooks = ?state.live.load().hooks.keys().collect::<Vec<_>>(),
            log = %config.log.file.display(),
            "webhook-listener serving"
        );

        loop {
            tokio::select! {
                // Shutdown first: once asked to stop, accept nothing more.
                biased;
                () = &mut shutdown => break,
                // SIGHUP: new config for new requests; the log reopens by path for logrotate.
                // Run as a task: reading a config or a secret file can block (a FIFO, a hung
                // mount), and the accept loop and SIGTERM must never wait for it.
                _ = hup.recv() => {
                    let (state, running, path) = (state.clone(), config.clone(), config_path.clone());
                    let serial = reloading.clone();
                    tokio::spawn(async move {
                        let _one_at_a_time = serial.lock().await;
                        reload(&state, &running, path).await;
                        state.log.reopen().await;
                    });
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
                        http.serve_connection(TokioIo::new(Lingering::from(tcp)), svc),
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
        // One deadline for the requests and the log, so SIGTERM is bounded even with the writer
        // stuck in the kernel; the log's flush gets at least a second of it.
        let deadline = tokio::time::Instant::now() + config.shutdown_timeout;
        if tokio::time::timeout_at(deadline, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?config.shutdown_timeout,
                "requests still in flight at the shutdown timeout were cut off (not acknowledged)"
            );
        }
        let log_deadline = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
        if !state.log.stop(writer, log_deadline).await {
            // Every 2xx was sent only after its line was written (and synced with fsync), so none
            // is lost here; lines still queued were never acknowledged and their senders retry.
            let refused = state.log.health().refused();
            let why = state.log.health().error().unwrap_or_default();
            tracing::error!(acknowledged_unsynced = 0, refused_during_stall = refused, %why,
                "event log writer did not stop by the shutdown timeout; exiting without it");
            eprintln!(
                "webhook-listener: event log writer stuck ({why}); exiting: 0 events acknowledged but unsynced, {refused} refused (503) during the stall"
            );
            std::process::exit(2);
        }
        drop(state);
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long a reload may spend reading the config and its secret files before it is refused.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Re-reads the config file; an invalid one, or one that cannot be read within [`RELOAD_TIMEOUT`],
/// is refused and the running config stays.
async fn reload(state: &AppState, running: &Config, path: Option<PathBuf>) {
    let Some(path) = path else {
        tracing::info!("SIGHUP: no --config file to reload (running on the embedded default)");
        return;
    };
    // A plain thread, not `spawn_blocking`: a read stuck in the kernel must not hold up the
    // runtime's shutdown, and a detached thread does not keep the process alive.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let p = path.clone();
    let spawned = std::thread::Builder::new()
        .name("config-reload".into())
        .spawn(move || {
            let _ = tx.send(Config::load(Some(&p)));
        });
    if let Err(e) = spawned {
        state.metrics.reload(false);
        tracing::error!(error = %e, "config reload refused: cannot start the reader thread");
        return;
    }
    let loaded = match tokio::time::timeout(RELOAD_TIMEOUT, rx).await {
        Ok(Ok(loaded)) => loaded,
        Ok(Err(_)) => {
            state.metrics.reload(false);
            tracing::error!(config = %path.display(), "config reload refused: the reader thread failed");
            return;
        }
        Err(_) => {
            state.metrics.reload(false);
            tracing::error!(config = %path.display(), timeout = ?RELOAD_TIMEOUT,
                "config reload refused: reading the config or a secret file did not finish in time; the previous config stays in force");
            return;
        }
    };
    match loaded {
        Ok(new) => {
            for w in new.warnings() {
                tracing::warn!("{w}");
            }
            let live = LiveConfig::new(&new, &state.metrics);
            for (key, changed) in [
                ("listen", new.listen != running.listen),
                ("log", new.log != running.log),
                ("admin", new.admin != running.admin),
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
            let hooks: Vec<String> = live.hooks.keys().cloned().collect();
            state.dedupe.retain_hooks(|p| live.hooks.contains_key(p));
            state.live.store(Arc::new(live));
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
