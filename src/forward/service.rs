//! The running set of sinks: built from the validated `[[sinks]]` entries, one [`Runner`] each over
//! the shared spool, changed in place by a reload and drained on shutdown. Intake, `/healthz` and
//! the metrics read [`Forwarding::sinks`]; only the app starts, reloads and stops it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::exec::{ExecConfig, ExecSink};
use super::http::{HttpConfig, HttpSink};
use super::nats::{NatsConfig, NatsSink};
use super::redis::{RedisConfig, RedisSink};
use super::spool::{SpoolError, SpoolHandle};
use super::status::SinkStatus;
use super::{DeliveryError, Event, EventFilter, Runner, RunnerConfig, Sink};

/// What a sink talks to, with resolved settings (credentials included, never logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    Nats(NatsConfig),
    Redis(RedisConfig),
    Exec(ExecConfig),
    Http(HttpConfig),
}

impl SinkKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Nats(_) => "nats",
            SinkKind::Redis(_) => "redis",
            SinkKind::Exec(_) => "exec",
            SinkKind::Http(_) => "http",
        }
    }
}

/// One `[[sinks]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    /// Checked with [`super::spool::validate_sink_name`]: it names the checkpoint file.
    pub name: String,
    pub kind: SinkKind,
    pub runner: RunnerConfig,
    /// `required = true`: how long a 2xx waits for this sink's confirmation; `None` otherwise.
    pub required_timeout: Option<Duration>,
}

/// Why forwarding could not start a sink.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("sink {name}: {source}")]
    Spool { name: String, source: SpoolError },
    #[error("sink {name}: {message}")]
    Build { name: String, message: String },
    #[error("cannot start the forwarding threads: {0}")]
    Runtime(String),
}

/// Any configured sink, so one runner type drives them all; the `Arc` keeps a handle for
/// `connected`. Built only by [`build`], which `replay` uses too.
#[derive(Clone)]
pub(crate) enum AnySink {
    Nats(Arc<NatsSink>),
    Redis(Arc<RedisSink>),
    Exec(Arc<ExecSink>),
    Http(Arc<HttpSink>),
}

impl Sink for AnySink {
    fn name(&self) -> &str {
        match self {
            AnySink::Nats(s) => s.name(),
            AnySink::Redis(s) => s.name(),
            AnySink::Exec(s) => s.name(),
            AnySink::Http(s) => s.name(),
        }
    }

    async fn deliver(&self, event: &Event) -> Result<(), DeliveryError> {
        match self {
            AnySink::Nats(s) => s.deliver(event).await,
            AnySink::Redis(s) => s.deliver(event).await,
            AnySink::Exec(s) => s.deliver(event).await,
            AnySink::Http(s) => s.deliver(event).await,
        }
    }

    async fn deliver_batch(&self, events: &[Event]) -> Vec<Result<(), DeliveryError>> {
        match self {
            AnySink::Nats(s) => s.deliver_batch(events).await,
            AnySink::Redis(s) => s.deliver_batch(events).await,
            // The trait's default: one event per call, exactly as `deliver`.
            AnySink::Exec(s) => s.deliver_batch(events).await,
            AnySink::Http(s) => s.deliver_batch(events).await,
        }
    }

    fn pipeline_depth(&self) -> usize {
        match self {
            AnySink::Nats(s) => s.pipeline_depth(),
            AnySink::Redis(s) => s.pipeline_depth(),
            AnySink::Exec(s) => s.pipeline_depth(),
            AnySink::Http(s) => s.pipeline_depth(),
        }
    }
}

/// A sink as intake, `/healthz` and the operator page see it.
pub struct ActiveSink {
    pub name: String,
    pub kind: &'static str,
    /// Where it delivers, credentials removed ([`target`]).
    pub target: String,
    /// Which events it takes, so the page can say "not for this sink".
    pub filter: EventFilter,
    pub status: Arc<SinkStatus>,
    pub required_timeout: Option<Duration>,
    sink: AnySink,
}

impl ActiveSink {
    /// Whether the client holds a connection now (NATS), the last call reached the server (Redis),
    /// the last run could be started (exec), or the last request got an HTTP answer (http).
    pub fn connected(&self) -> bool {
        match &self.sink {
            AnySink::Nats(s) => s.is_connected(),
            AnySink::Redis(s) => s.is_connected(),
            AnySink::Exec(s) => s.is_startable(),
            AnySink::Http(s) => s.is_connected(),
        }
    }
}

/// A started sink: what it was built from, its runner, and its public face.
struct Running {
    spec: SinkSpec,
    runner: Runner,
    active: Arc<ActiveSink>,
}

/// Every configured sink, running.
pub struct Forwarding {
    /// Every runner and sink client runs here, at forwarding's lower priority ([`super::threads`]).
    /// An `Option` only so that `Drop` can shut it down without blocking.
    rt: Option<tokio::runtime::Runtime>,
    spool: SpoolHandle,
    shutdown: CancellationToken,
    /// What requests read: swapped whole by a reload.
    sinks: ArcSwap<Vec<Arc<ActiveSink>>>,
    running: tokio::sync::Mutex<BTreeMap<String, Running>>,
}

impl Forwarding {
    /// Registers every sink with the spool and starts its runner. Call before the first append,
    /// so no segment a sink needs is collected before it registered.
    pub async fn start(
        spool: SpoolHandle,
        specs: &[SinkSpec],
        shutdown: CancellationToken,
        nice: i32,
    ) -> Result<Forwarding, ForwardError> {
        let rt = super::threads::runtime(nice).map_err(|e| ForwardError::Runtime(e.to_string()))?;
        let mut running = BTreeMap::new();
        for spec in specs {
            let r = start_one(rt.handle(), &spool, spec, &shutdown).await?;
            running.insert(spec.name.clone(), r);
        }
        let f = Forwarding {
            rt: Some(rt),
            spool,
            shutdown,
            sinks: ArcSwap::from_pointee(Vec::new()),
            running: tokio::sync::Mutex::new(running),
        };
        f.publish(&*f.running.lock().await);
        Ok(f)
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        match &self.rt {
            Some(rt) => rt.handle(),
            None => unreachable!("the runtime is taken only by drop"),
        }
    }

    pub fn spool(&self) -> &SpoolHandle {
        &self.spool
    }

    /// The sinks now running, in name order.
    pub fn sinks(&self) -> arc_swap::Guard<Arc<Vec<Arc<ActiveSink>>>> {
        self.sinks.load()
    }

    fn publish(&self, running: &BTreeMap<String, Running>) {
        let list = running.values().map(|r| r.active.clone()).collect();
        self.sinks.store(Arc::new(list));
    }

    /// A reload: sinks no longer configured are stopped and unregistered, changed ones restarted
    /// from their checkpoint, new ones started, and every paused one resumed. A sink that cannot be
    /// built is reported and left out; the others go on.
    pub async fn reload(&self, specs: &[SinkSpec]) -> Vec<ForwardError> {
        let mut running = self.running.lock().await;
        let mut errors = Vec::new();
        let gone: Vec<String> = running
            .iter()
            .filter(|(name, r)| !specs.iter().any(|s| &s.name == *name && s.eq(&r.spec)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            if let Some(r) = running.remove(&name) {
                r.runner.stop();
                r.runner.join().await;
                self.spool.unregister(&name);
                if !specs.iter().any(|s| s.name == name) {
                    tracing::info!(sink = %name, "sink removed by reload; its checkpoint stays");
                }
            }
        }
        for r in running.values() {
            r.runner.resume();
        }
        for spec in specs {
            if running.contains_key(&spec.name) {
                continue;
            }
            match start_one(self.handle(), &self.spool, spec, &self.shutdown).await {
                Ok(r) => {
                    tracing::info!(sink = %spec.name, kind = spec.kind.as_str(), "sink started by reload");
                    running.insert(spec.name.clone(), r);
                }
                Err(e) => errors.push(e),
            }
        }
        self.publish(&running);
        errors
    }

    /// Stops every runner (in-flight deliveries get their `shutdown_timeout`) and waits for their
    /// last checkpoints; what is left stays in the spool for the next start.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let mut running = self.running.lock().await;
        let all = std::mem::take(&mut *running);
        let joins = all.into_values().map(|r| r.runner.join());
        futures_util::future::join_all(joins).await;
    }
}

impl Drop for Forwarding {
    /// Ends what `stop` left (e.g. clients' connection tasks) without blocking the caller, which
    /// may be an async task.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// Starts one sink on forwarding's runtime `rt`, so its runner, its client's connection tasks and
/// its spool reader all run at forwarding's priority.
async fn start_one(
    rt: &tokio::runtime::Handle,
    spool: &SpoolHandle,
    spec: &SinkSpec,
    shutdown: &CancellationToken,
) -> Result<Running, ForwardError> {
    let (spool, spec, shutdown) = (spool.clone(), spec.clone(), shutdown.clone());
    let name = spec.name.clone();
    rt.spawn(async move { start_here(&spool, &spec, &shutdown).await })
        .await
        .map_err(|e| ForwardError::Build {
            name,
            message: e.to_string(),
        })?
}

async fn start_here(
    spool: &SpoolHandle,
    spec: &SinkSpec,
    shutdown: &CancellationToken,
) -> Result<Running, ForwardError> {
    let sink = build(spec, &super::exec::records_parent(spool.dir())).await?;
    let spool_err = |source| ForwardError::Spool {
        name: spec.name.clone(),
        source,
    };
    let checkpoint = spool.register(&spec.name).map_err(spool_err)?;
    let runner = Runner::spawn(
        sink.clone(),
        spool,
        checkpoint,
        spec.runner.clone(),
        shutdown,
    )
    .map_err(|e| {
        spool.unregister(&spec.name);
        spool_err(e)
    })?;
    let active = Arc::new(ActiveSink {
        name: spec.name.clone(),
        kind: spec.kind.as_str(),
        target: target(&spec.kind),
        filter: spec.runner.filter.clone(),
        status: runner.status().clone(),
        required_timeout: spec.required_timeout,
        sink,
    });
    Ok(Running {
        spec: spec.clone(),
        runner,
        active,
    })
}

/// The sink a spec describes: the one place a [`SinkKind`] becomes a sink, so the
/// service and `replay` deliver through the same code for every kind. `exec_records`: where an
/// exec sink records its running process groups (and kills what an earlier process left there):
/// the service's and `replay`'s are apart, so a replay never kills the running service's commands.
pub(crate) async fn build(spec: &SinkSpec, exec_records: &Path) -> Result<AnySink, ForwardError> {
    let build = |message: String| ForwardError::Build {
        name: spec.name.clone(),
        message,
    };
    Ok(match &spec.kind {
        SinkKind::Nats(c) => AnySink::Nats(Arc::new(
            NatsSink::new(c.clone())
                .await
                .map_err(|e| build(e.to_string()))?,
        )),
        SinkKind::Redis(c) => AnySink::Redis(Arc::new(
            RedisSink::new(c.clone()).map_err(|e| build(e.to_string()))?,
        )),
        // Kills what a previous process left running, before this sink delivers anything.
        SinkKind::Exec(c) => {
            let (c, dir) = (c.clone(), exec_records.to_path_buf());
            let sink = tokio::task::spawn_blocking(move || ExecSink::new(c, &dir))
                .await
                .map_err(|e| build(e.to_string()))?
                .map_err(|e| build(e.to_string()))?;
            AnySink::Exec(Arc::new(sink))
        }
        SinkKind::Http(c) => AnySink::Http(Arc::new(
            HttpSink::new(c).map_err(|e| build(e.to_string()))?,
        )),
    })
}

/// For `check-config --connect`: reaches the sink's broker once (bounded by its connect timeout)
/// and says what it found. Errors carry no credentials.
pub async fn check(spec: &SinkSpec) -> Result<String, String> {
    match &spec.kind {
        SinkKind::Nats(c) => super::nats::check(c).await,
        SinkKind::Redis(c) => super::redis::check(c).await,
        SinkKind::Exec(c) => Ok(format!(
            "{} resolved at load; nothing to connect to",
            c.program.display()
        )),
        SinkKind::Http(c) => super::http::check(c).await,
    }
}

/// Where a sink delivers, for `check-config` and the operator page: URL(s) without userinfo, and
/// the subject or stream.
pub fn target(kind: &SinkKind) -> String {
    match kind {
        SinkKind::Nats(c) => format!(
            "url={} subject={} stream={}",
            c.url
                .split(',')
                .map(|u| super::redact::redact_url(u.trim()))
                .collect::<Vec<_>>()
                .join(","),
            c.subject,
            c.stream.as_deref().unwrap_or("(none)")
        ),
        SinkKind::Redis(c) => format!(
            "url={} stream={} maxlen={}",
            super::redact::redact_url(&c.url),
            c.stream,
            c.maxlen
        ),
        SinkKind::Exec(c) => super::exec::describe(c),
        SinkKind::Http(c) => format!(
            "url={} timeout={}s{}",
            super::http::shown_url(&c.url),
            c.timeout.as_secs(),
            c.ca_file
                .as_ref()
                .map_or(String::new(), |f| format!(" ca_file={}", f.display()))
        ),
    }
}

/// One line about a sink for `check-config`: kind, where, and what it takes; no credentials.
pub fn describe(spec: &SinkSpec) -> String {
    let filter = &spec.runner.filter;
    let list = |l: &Option<Vec<String>>| l.as_ref().map_or("all".to_owned(), |v| v.join(","));
    let mut target = target(&spec.kind);
    let unbounded = |v: Option<String>| v.unwrap_or_else(|| "unbounded".to_owned());
    match &spec.kind {
        SinkKind::Exec(_) => target.push_str(&format!(
            " concurrency={} max_attempts={}",
            spec.runner.max_in_flight,
            unbounded(spec.runner.max_attempts.map(|n| n.to_string()))
        )),
        SinkKind::Http(_) => target.push_str(&format!(
            " concurrency={} max_attempts={} max_age={}",
            spec.runner.max_in_flight,
            unbounded(spec.runner.max_attempts.map(|n| n.to_string())),
            unbounded(spec.runner.max_age.map(|a| format!("{}s", a.as_secs())))
        )),
        SinkKind::Nats(_) | SinkKind::Redis(_) => {}
    }
    let required = match spec.required_timeout {
        Some(t) => format!(" required (waits {} s)", t.as_secs()),
        None => String::new(),
    };
    format!(
        "{:<16} kind={:<5} {target} hooks={} events={}{required}",
        spec.name,
        spec.kind.as_str(),
        list(&filter.hooks),
        list(&filter.events)
    )
}
