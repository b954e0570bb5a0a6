//! The application: builds the listener, the event log and the shared state from a [`Config`],
//! serves until asked to stop, reloads the config on SIGHUP, and stops gracefully.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::admin::Admin;
use crate::config::{Config, ConfigError};
use crate::event_log::{stall_bound, wal, EventLog, WriterThread};
use crate::forward::spool::Checkpoint;
use crate::forward::{ForwardError, Forwarding, Spool, SpoolError};
use crate::http::linger::Lingering;
use crate::http::{router, AppState};
use crate::live_config::LiveConfig;
use crate::metrics::{Metrics, COMMIT, VERSION};
use crate::payload::PayloadKind;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot use the listening socket passed in LISTEN_FDS: {source}")]
    Inherited { source: io::Error },
    #[error("cannot write pid file {path}: {source}")]
    PidFile { path: PathBuf, source: io::Error },
    #[error("cannot open event log {path}: {source}")]
    Log { path: PathBuf, source: io::Error },
    #[error("cannot open the spool: {0}")]
    Spool(#[from] SpoolError),
    #[error("cannot start forwarding: {0}")]
    Forward(#[from] ForwardError),
}

/// hyper's per-connection read buffer grows up to this while a body streams in (its default is
/// ~400 KiB, which 64 connections reading 1 MB bodies at once turned into ~25 MB outside the
/// memory budget). It also bounds a request head; 64 KiB is 2x nginx's largest header buffers.
const READ_BUF_MAX: usize = 64 * 1024;

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
    /// Written once the server can serve, removed when it stops.
    pid_file: Option<PidFile>,
}

/// `pid_file` while the server runs, so logrotate's `kill -HUP "$(cat …)"` finds this process.
struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's id, replacing the file whole (a reader never sees a partial pid).
    fn create(path: &Path) -> io::Result<PidFile> {
        let pid = std::process::id();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{pid}.tmp"));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, format!("{pid}\n"))?;
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    /// Removes the file, unless another process has written its own pid there since.
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.path)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the pid file");
            }
        }
    }
}

impl App {
    /// Binds the listener (or adopts `inherited`, a socket systemd passed) and opens the event log;
    /// fails with a message naming what is wrong.
    pub async fn build(
        config: Config,
        config_path: Option<PathBuf>,
        inherited: Option<std::net::TcpListener>,
    ) -> Result<App, StartError> {
        let mut metrics = Metrics::new();
        let (spool, forward) = start_forwarding(&config).await?;
        let log_checkpoint = match &spool {
            Some(spool) if config.log.fsync => Some(repair_log(&config, spool).await?),
            _ => None,
        };
        if let Some(f) = &forward {
            metrics.register_sinks(f.clone());
        }
        let metrics = Arc::new(metrics);
        let (log, writer) = EventLog::start(
            &config.log.file,
            config.log.fsync,
            stall_bound(config.request_timeout),
            metrics.clone(),
            spool,
            log_checkpoint,
        )
        .map_err(|source| StartError::Log {
            path: config.log.file.clone(),
            source,
        })?;
        let listener = match inherited {
            Some(l) => {
                let adopted = l
                    .set_nonblocking(true)
                    .and_then(|()| TcpListener::from_std(l));
                let listener = adopted.map_err(|source| StartError::Inherited { source })?;
                tracing::info!(
                    "serving on the socket passed by the service manager (LISTEN_FDS); `listen` is not used"
                );
                listener
            }
            None => TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?,
        };
        let admin = Admin::bind(&config.admin)
            .await
            .map_err(|(addr, source)| StartError::Bind { addr, source })?;
        // Last: a pid file promises a process that serves.
        let pid_file = match &config.pid_file {
            Some(path) => Some(PidFile::create(path).map_err(|source| StartError::PidFile {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let mut state = AppState::new(&config, log, metrics).with_forwarding(forward);
        state.observer = admin.as_ref().map(Admin::observer);
        Ok(App {
            listener,
            state: Arc::new(state),
            writer,
            config,
            config_path,
            admin,
            pid_file,
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
            pid_file,
        } = self;
        let admin_addr = admin.as_ref().and_then(|a| a.local_addr().ok());
        // Serves until this guard drops at the end of `run`.
        let public = listener.local_addr()?;
        let _admin = admin.map(|a| a.spawn(state.clone(), public));
        let router = router(state.clone());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.request_timeout)
            .max_buf_size(READ_BUF_MAX)
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
            version = %VERSION,
            commit = %COMMIT,
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
        if let Some(forward) = &state.forward {
            // In-flight deliveries finish (or are abandoned at the deadline: they stay spooled and
            // go again at the next start, where the broker de-duplicates them).
            let sinks_deadline = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
            if tokio::time::timeout_at(sinks_deadline, forward.stop())
                .await
                .is_err()
            {
                tracing::warn!("sinks still delivering at the shutdown timeout; what is left stays in the spool");
            }
        }
        let log_deadline = deadline.max(tokio::time::Instant::now() + Duration::from_secs(1));
        if !state.log.stop(writer, log_deadline).await {
            // Every 2xx was sent only after its line was written (and synced with fsync), so none
            // is lost here; lines still queued were never acknowledged and their senders retry.
            let refused = state.log.health().refused();
            let why = state.log.health().error().unwrap_or_default();
            tracing::error!(acknowledged_unsynced = 0, refused_during_stall = refused,
                "event log writer stuck ({why}); exiting: 0 events acknowledged but unsynced, {refused} refused (503) during the stall");
            drop(pid_file); // exit runs no destructors
            std::process::exit(2);
        }
        drop(state);
        drop(pid_file);
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
        Ok(new) if new.max_body_bytes > state.budget.total() => {
            state.metrics.reload(false);
            tracing::error!(config = %path.display(), max_body_bytes = new.max_body_bytes,
                running_max_buffered_bytes = state.budget.total(),
                "config reload refused: max_body_bytes is larger than the running max_buffered_bytes (which changes only at a restart); the previous config stays in force");
        }
        Ok(new) => {
            for w in new.warnings() {
                tracing::warn!("{w}");
            }
            let live = LiveConfig::new(&new, &state.metrics);
            for (key, changed) in [
                ("listen", new.listen != running.listen),
                ("log", new.log != running.log),
                ("admin", new.admin != running.admin),
                ("pid_file", new.pid_file != running.pid_file),
                ("spool", !new.sinks.is_empty() && new.spool != running.spool),
                ("sinks", state.forward.is_none() && !new.sinks.is_empty()),
                (
                    "max_concurrent_requests",
                    new.max_concurrent_requests != running.max_concurrent_requests,
                ),
                (
                    "max_buffered_bytes",
                    new.max_buffered_bytes != running.max_buffered_bytes,
                ),
            ] {
                if changed {
                    tracing::warn!(
                        key,
                        "changed in the config file; takes effect after a restart"
                    );
                }
            }
            if let Some(forward) = &state.forward {
                for e in forward.reload(&new.sinks).await {
                    tracing::error!(error = %e, "sink not started by the reload");
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
            // One line per problem, each naming file, line and key (never a value).
            for line in e.lines() {
                tracing::error!("config reload refused: {line}");
            }
            tracing::error!(config = %path.display(), "config reload refused; the previous config stays in force");
        }
    }
}

/// Opens the spool and starts every sink, when any is configured: before the writer takes its first
/// line, so every sink is registered before the first append.
async fn start_forwarding(
    config: &Config,
) -> Result<(Option<Spool>, Option<Arc<Forwarding>>), StartError> {
    if config.sinks.is_empty() {
        return Ok((None, None));
    }
    let (spool, report) = Spool::open(config.spool.clone())?;
    if let Some(t) = &report.torn_tail {
        let (segment, damage) = (t.segment.display(), &t.damage);
        if t.records_cut > 1 {
            tracing::error!(%segment, offset = t.offset, bytes_cut = t.bytes_cut,
                records_cut = t.records_cut, %damage,
                "spool: torn tail cut, with intact records after the damage (out-of-order writes or media damage)");
        } else {
            tracing::warn!(%segment, offset = t.offset, bytes_cut = t.bytes_cut,
                records_cut = t.records_cut, %damage,
                "spool: torn tail cut (an unacknowledged write interrupted by a crash)");
        }
    }
    tracing::info!(dir = %config.spool.dir.display(), segments = report.segments,
        used_bytes = report.used_bytes, next_seq = report.next_seq, "spool opened");
    let token = tokio_util::sync::CancellationToken::new();
    let forward = Forwarding::start(
        spool.handle(),
        &config.sinks,
        token,
        crate::forward::threads::FORWARD_NICE,
    )
    .await?;
    for s in config.sinks.iter() {
        tracing::info!(sink = %s.name, kind = s.kind.as_str(), required = s.required_timeout.is_some(),
            "sink started");
    }
    Ok((Some(spool), Some(Arc::new(forward))))
}

/// Registers the event log's checkpoint in the spool (its write-ahead log, see
/// [`crate::event_log::wal`]) and writes back the lines a power loss took from the log.
async fn repair_log(config: &Config, spool: &Spool) -> Result<Checkpoint, StartError> {
    let handle = spool.handle();
    let checkpoint = handle.register(wal::EVENT_LOG_CHECKPOINT)?;
    let kinds: HashMap<String, PayloadKind> = config
        .hooks
        .iter()
        .map(|h| (h.path.clone(), h.payload))
        .collect();
    let (path, format, cp) = (
        config.log.file.clone(),
        config.log.format,
        checkpoint.clone(),
    );
    let kind_of = move |hook: &str| kinds.get(hook).copied().unwrap_or(PayloadKind::Raw);
    let repaired =
        tokio::task::spawn_blocking(move || wal::repair(&path, format, &handle, &cp, &kind_of))
            .await
            .map_err(|e| {
                StartError::Spool(SpoolError::io(
                    "repair the event log",
                    &config.log.file,
                    std::io::Error::other(e),
                ))
            })??;
    if repaired.restored > 0 || repaired.torn_bytes > 0 {
        tracing::warn!(path = %config.log.file.display(), restored = repaired.restored,
            checked = repaired.checked, torn_bytes_cut = repaired.torn_bytes,
            "event log repaired from the spool: lines lost with unsynced writes (a power loss) written back");
    }
    Ok(checkpoint)
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
