//! One runner per sink: reads the spool from the sink's checkpoint, delivers each event with a
//! bounded number in flight, retries with backoff, dead-letters what can never succeed, and moves
//! the checkpoint only over the contiguous prefix of finished events. Everything a sink does not
//! have to know lives here, once, so each sink stays one `deliver` function.
//!
//! Shape: a reader thread (spool reads are blocking file I/O) feeds a small bounded channel; the
//! runner task dispatches, collects outcomes and writes checkpoints, one write at a time and
//! coalesced (a checkpoint is two fsyncs; one per event would cap a fast broker at a few hundred
//! events a second). A crash between a confirmation and its checkpoint re-sends a few events, which
//! the brokers' de-duplication (`Event::dedupe_key`) collapses: at least once, never lost.
//!
//! Batches (`max_in_flight = 1`): while one batch is with the sink, the next events collect in
//! `ready`; when it comes back, up to `max_batch` of them (and about [`MAX_BATCH_BYTES`]) go out
//! together through [`Sink::deliver_batch`], in order. Under load a batch costs one broker round
//! trip (and one Redis fsync) for many events; when idle a batch is the one event that arrived, so
//! latency stays one round trip. A batch's delivery ends at its first progress: what the sink
//! confirmed is finished at once, the rest goes back to the front of `ready`. A sink that keeps
//! the order of what it is handed ([`Sink::pipeline_depth`], Redis) gets a second whole batch
//! while the first is out, as long as nothing fails; the first one out is the only one that
//! retries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use chrono::Utc;
use futures_util::future::{Either, FutureExt, OptionFuture};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::filter::EventFilter;
use super::spool::dead_letter::{self, DeadLetter};
use super::spool::{Checkpoint, Record, Skipped, SpoolError, SpoolHandle, SpoolReader};
use super::status::SinkStatus;
use super::window::Window;
use super::{DeliveryError, Event, Sink};

/// A peer's `Retry-After` is honoured up to this long, so a buggy or hostile answer cannot park a
/// sink for days; longer hints are cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// While holding back for a flooded intake, how often the runner looks again.
const YIELD_RECHECK: Duration = Duration::from_millis(20);
/// How long the reader thread waits before trying again after a read error that is not damage
/// (e.g. out of file descriptors).
const READ_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// A checkpoint write (two fsyncs) starts at most this often. Written back to back, two busy
/// sinks kept the disk syncing hundreds of times a second beside the event log's group commit
/// (perf: `checkpoint::write` fsyncs under load); a crash re-sends at most this much of deliveries,
/// which the brokers' de-duplication collapses.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Events per batch when the sink's `max_batch` is not set. Measured with `scripts/bench.sh`
/// (README, "Forwarding"): past this the brokers' round trips are no longer what limits a sink.
pub const DEFAULT_MAX_BATCH: usize = 128;
/// A batch stops growing past this many body bytes (it always takes one event): it bounds what
/// waits in `ready` and one pipeline's size whatever `max_body_bytes` allows.
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// A sink's first retry delay (`retry_initial_secs`); doubles, with jitter, up to the next.
pub const DEFAULT_RETRY_INITIAL_SECS: u64 = 1;
/// `retry_max_secs`: a minute between tries bounds how long a recovered destination waits for us.
pub const DEFAULT_RETRY_MAX_SECS: u64 = 60;

/// How one sink is driven. Built by the config from the sink's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Deliveries at once. 1 keeps the spool's order; more pipelines them (order then not kept).
    pub max_in_flight: usize,
    /// With `max_in_flight = 1`: events handed to the sink at once, in order. 1 sends each alone.
    pub max_batch: usize,
    /// First retry delay; doubles (with jitter) up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Attempts in all, the first included, before an event is dead-lettered. `None` never gives
    /// up (the brokers: while one is away, events wait in the spool).
    pub max_attempts: Option<u32>,
    /// An event older than this (from `received_at`) is not retried again but dead-lettered, so a
    /// long outage does not replay day-old events into a service that has moved on. `None`: no bound.
    pub max_age: Option<Duration>,
    pub filter: EventFilter,
    /// On shutdown, how long the sink gets to drain the spool; what is left stays spooled.
    pub shutdown_timeout: Duration,
    /// While intake is flooded ([`SpoolHandle::intake_flooded`]), the sink sends nothing until its
    /// oldest undelivered event is this old, so the CPU and disk go to the requests (which stay
    /// acknowledged and spooled); it catches up when the flood ends. `None`: never holds back (a
    /// `required` sink, whose 2xx waits for it).
    pub yield_to_intake: Option<Duration>,
}

impl RunnerConfig {
    /// Events per delivery: `max_batch` when in order (`max_in_flight = 1`), else 1.
    fn batch(&self) -> usize {
        if self.max_in_flight <= 1 {
            self.max_batch.max(1)
        } else {
            1
        }
    }
}

impl Default for RunnerConfig {
    /// A broker's defaults: in order, never give up, 1 s doubling to 60 s.
    fn default() -> Self {
        RunnerConfig {
            max_in_flight: 1,
            max_batch: DEFAULT_MAX_BATCH,
            retry_initial: Duration::from_secs(DEFAULT_RETRY_INITIAL_SECS),
            retry_max: Duration::from_secs(DEFAULT_RETRY_MAX_SECS),
            max_attempts: None,
            max_age: None,
            filter: EventFilter::default(),
            shutdown_timeout: Duration::from_secs(10),
            yield_to_intake: None,
        }
    }
}

/// A running sink. Dropping it does not stop it; call [`stop`](Self::stop) (or cancel the
/// shutdown token given to `spawn`) and then [`join`](Self::join).
pub struct Runner {
    status: Arc<SinkStatus>,
    resume: watch::Sender<u64>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Runner {
    /// Starts delivering from `checkpoint` on. Must be called inside a tokio runtime. `shutdown`
    /// is the service's shutdown trigger; cancelling it stops this runner like [`stop`](Self::stop).
    pub fn spawn<S: Sink>(
        sink: S,
        spool: &SpoolHandle,
        checkpoint: Checkpoint,
        config: RunnerConfig,
        shutdown: &CancellationToken,
    ) -> Result<Runner, SpoolError> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| SpoolError::io("start runner", spool.dir(), std::io::Error::other(e)))?;
        let from = checkpoint.get() + 1;
        let reader = spool.reader(from)?;
        let status = Arc::new(SinkStatus::new(sink.name(), spool.durable(), from - 1));
        let stop = shutdown.child_token();
        let batch = config.batch();
        // Batching: two lists read ahead, bounded by bytes; else one event per message.
        let depth = if batch > 1 {
            2
        } else {
            (2 * config.max_in_flight).clamp(8, 256)
        };
        let (tx, rx) = mpsc::channel(depth);
        let feed = Feed {
            reader,
            from,
            spool: spool.clone(),
            filter: config.filter.clone(),
            tx,
            batch,
            pending: Vec::new(),
            pending_bytes: 0,
            stop: stop.clone(),
            rt,
        };
        let dead_letters = dead_letter::path(spool.dir(), checkpoint.name());
        std::thread::Builder::new()
            .name(format!("sink-{}", checkpoint.name()))
            .spawn(move || feed.run())
            .map_err(|e| SpoolError::io("start reader thread", spool.dir(), e))?;
        let (resume, resume_rx) = watch::channel(0);
        let core = Arc::new(Core {
            sink,
            status: status.clone(),
            config,
            dead_letters,
            setbacks: AtomicU64::new(0),
            spool: spool.clone(),
        });
        let task = tokio::spawn(run(
            core,
            checkpoint,
            spool.clone(),
            rx,
            resume_rx,
            stop.clone(),
        ));
        Ok(Runner {
            status,
            resume,
            stop,
            task,
        })
    }

    pub fn status(&self) -> &Arc<SinkStatus> {
        &self.status
    }

    /// Ends a pause (SIGHUP): the held events are tried again. A no-op when not paused.
    pub fn resume(&self) {
        self.resume.send_modify(|g| *g += 1);
    }

    /// Stops this runner: it delivers what is spooled for up to `shutdown_timeout`, then stops.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the runner has stopped and written its last checkpoint.
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(sink = %self.status.name(), error = %e, "sink runner failed");
        }
    }
}

/// What the reader thread hands the runner, in sequence order.
enum Item {
    Event(Record),
    /// The sink's filter passes over this one.
    Filtered(u64),
    /// Records that cannot be read back (damaged, or gone before this sink registered).
    Lost(Skipped, String),
    /// The spool cannot be read right now; the thread keeps trying.
    Trouble(String),
}

/// The reader thread's state.
struct Feed {
    reader: SpoolReader,
    from: u64,
    /// Keeps the durable watch's sender alive for as long as the thread waits on it.
    spool: SpoolHandle,
    filter: EventFilter,
    /// Items go over in lists of up to `batch` (and about [`MAX_BATCH_BYTES`]): one channel hand-off
    /// per batch, not per event, and the runner sees at once what is readable.
    tx: mpsc::Sender<Vec<Item>>,
    batch: usize,
    pending: Vec<Item>,
    pending_bytes: usize,
    stop: CancellationToken,
    rt: tokio::runtime::Handle,
}

impl Feed {
    fn run(mut self) {
        let mut durable = self.spool.durable();
        if self.reader.next_seq() > self.from {
            let gap = Skipped {
                from: self.from,
                to: self.reader.next_seq(),
            };
            if !self.send(Item::Lost(gap, "events no longer in the spool".into())) {
                return;
            }
        }
        // On shutdown it keeps reading until it has passed everything durable: the runner drains
        // what it can before its deadline.
        loop {
            let sent = match self.reader.next_record() {
                Ok(Some(rec)) if self.filter.matches(&rec.event) => self.send(Item::Event(rec)),
                Ok(Some(rec)) => self.send(Item::Filtered(rec.seq)),
                Ok(None) => self.flush() && self.wait(&mut durable),
                Err(e @ SpoolError::Corrupt { .. }) => match self.reader.skip_damaged() {
                    Ok(Some(skipped)) => self.send(Item::Lost(skipped, e.to_string())),
                    Ok(None) => {
                        let why = format!("{e}; nothing readable after it yet");
                        self.send(Item::Trouble(why)) && self.flush() && self.wait(&mut durable)
                    }
                    Err(e) => {
                        self.send(Item::Trouble(e.to_string())) && self.flush() && self.pause()
                    }
                },
                Err(e) => self.send(Item::Trouble(e.to_string())) && self.flush() && self.pause(),
            };
            if !sent {
                return;
            }
        }
    }

    /// Adds `item` to the pending list, handed over once it holds a batch (or the reader is about
    /// to wait); false when the runner is gone.
    fn send(&mut self, item: Item) -> bool {
        if let Item::Event(rec) = &item {
            self.pending_bytes += rec.event.body.len();
        }
        self.pending.push(item);
        if self.pending.len() >= self.batch || self.pending_bytes >= MAX_BATCH_BYTES {
            self.flush()
        } else {
            true
        }
    }

    /// Hands the pending items to the runner in one message; false when the runner is gone.
    fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        self.pending_bytes = 0;
        let items = std::mem::take(&mut self.pending);
        self.tx.blocking_send(items).is_ok()
    }

    /// Waits for the next durable record (no polling); false when stopping with nothing newer
    /// durable, which ends the reading.
    fn wait(&self, durable: &mut watch::Receiver<u64>) -> bool {
        let stop = &self.stop;
        self.rt.block_on(async {
            tokio::select! {
                changed = durable.changed() => changed.is_ok(),
                _ = stop.cancelled() => {
                    let newer = durable.has_changed().unwrap_or(false);
                    durable.borrow_and_update();
                    newer
                }
            }
        })
    }

    fn pause(&self) -> bool {
        let stop = &self.stop;
        self.rt.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(READ_ERROR_PAUSE) => true,
                _ = stop.cancelled() => false,
            }
        })
    }
}

/// What one event's delivery came to.
enum Outcome {
    Delivered,
    DeadLettered,
    /// The destination asked us to stop; the event goes back to the front.
    Paused(String),
    /// Not finished by this batch (it ended at its first progress, or a pause before it): back to
    /// the front of `ready`, for the next batch.
    Untried,
}

/// What every delivery future shares.
struct Core<S> {
    sink: S,
    status: Arc<SinkStatus>,
    config: RunnerConfig,
    dead_letters: PathBuf,
    /// Failed batch calls so far: a second batch goes out (and, once out, is sent) only while
    /// this is what it was when the first one went out, so a batch never overtakes a failing one.
    setbacks: AtomicU64,
    /// For each delivered event's ack time.
    spool: SpoolHandle,
}

/// The runner's backoff: `retry_initial` doubling (with jitter) to `retry_max`, for at most
/// `max_attempts` attempts in all (`None`: without end).
fn backoff(config: &RunnerConfig, max_attempts: Option<u32>) -> ExponentialBuilder {
    let b = ExponentialBuilder::default()
        .with_min_delay(config.retry_initial)
        .with_max_delay(config.retry_max)
        .with_factor(2.0)
        .with_jitter();
    match max_attempts {
        Some(n) => b.with_max_times(n.max(1) as usize - 1),
        None => b.without_max_times(),
    }
}

/// Delivers one event with a sink's retry policy (backoff, the peer's `Retry-After`, at most
/// `max_attempts`, only `Retry` errors retried, none once the event is older than `max_age`); the
/// last result and the attempts made. The one copy of that policy: the runner and `replay` both
/// call it. `notify` hears of each retry and its delay before the wait.
pub(crate) async fn deliver_with_retries<S: Sink>(
    sink: &S,
    event: &Event,
    config: &RunnerConfig,
    max_attempts: Option<u32>,
    max_age: Option<Duration>,
    notify: impl Fn(&DeliveryError, Duration),
) -> (Result<(), DeliveryError>, u32) {
    let attempts = AtomicU32::new(0);
    // Checked after each failed attempt, so even an event already too old is tried once.
    let expired = || too_old(event, max_age);
    let result = {
        let tries = &attempts;
        (move || async move {
            tries.fetch_add(1, Ordering::Relaxed);
            sink.deliver(event).await
        })
        .retry(backoff(config, max_attempts))
        .sleep(tokio::time::sleep)
        .when(|e| matches!(e, DeliveryError::Retry { .. }) && !expired())
        .adjust(retry_after)
        .notify(notify)
        .await
    };
    let result = match result {
        Err(e @ DeliveryError::Retry { .. }) if expired() => Err(given_up(e, max_age)),
        r => r,
    };
    (result, attempts.into_inner())
}

/// Whether `event` is older than `max_age` (never, without one).
fn too_old(event: &Event, max_age: Option<Duration>) -> bool {
    max_age.is_some_and(|age| {
        let ms = (Utc::now() - event.received_at).num_milliseconds();
        ms >= 0 && ms as u128 >= age.as_millis()
    })
}

/// The last error of an event given up on for its age, saying so.
fn given_up(e: DeliveryError, max_age: Option<Duration>) -> DeliveryError {
    match (e, max_age) {
        (DeliveryError::Retry { error, retry_after }, Some(age)) => DeliveryError::Retry {
            error: format!(
                "{error} (given up: the event is older than max_age_secs = {})",
                age.as_secs()
            ),
            retry_after,
        },
        (e, _) => e,
    }
}

impl<S: Sink> Core<S> {
    /// Delivers one event, retrying as configured; dead-letters it when that is the end of it.
    async fn deliver(self: Arc<Self>, seq: u64, event: Event) -> (u64, Event, Outcome) {
        let (result, attempts) = deliver_with_retries(
            &self.sink,
            &event,
            &self.config,
            self.config.max_attempts,
            self.config.max_age,
            |e, delay| self.status.on_retry(&e.to_string(), delay),
        )
        .await;
        let outcome = match result {
            Ok(()) => {
                self.status.on_delivered(&event, self.spool.acked_at(seq));
                Outcome::Delivered
            }
            Err(DeliveryError::Pause(reason)) => Outcome::Paused(reason),
            Err(e) => {
                self.dead_letter(seq, &event, attempts, e.to_string()).await;
                Outcome::DeadLettered
            }
        };
        (seq, event, outcome)
    }

    /// Delivers a batch in order through [`Sink::deliver_batch`]. It returns at its first progress
    /// (the leading events the sink confirmed, or a dead letter) with the rest [`Outcome::Untried`],
    /// so confirmations reach the checkpoint at once; until then it retries the whole remainder, in
    /// order, with backoff. A head that fails right after a confirmed prefix is tried again at once
    /// by the next batch, its attempts counted afresh (only pipelining sinks answer past a failure).
    ///
    /// `follows`: this batch went out behind another ([`Sink::pipeline_depth`]) when `setbacks`
    /// was this. It is sent only if nothing failed since, and tried once: what it could not
    /// deliver goes back as `Untried` for a later batch, so only the first batch out retries,
    /// dead-letters and pauses, and the spool's order holds.
    async fn deliver_batch(
        self: Arc<Self>,
        batch: Vec<(u64, Event)>,
        follows: Option<u64>,
    ) -> Vec<(u64, Event, Outcome)> {
        let (seqs, events): (Vec<u64>, Vec<Event>) = batch.into_iter().unzip();
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(events.len());
        let mut delays = None;
        let mut attempts = 0u32;
        while outcomes.is_empty() && !events.is_empty() {
            if follows.is_some_and(|t| t != self.setbacks.load(Ordering::Acquire)) {
                break;
            }
            let results = self.sink.deliver_batch(&events).await;
            attempts += 1;
            // A sink that answers for nothing is treated as one that failed: back off, never spin.
            let mut failed = results
                .is_empty()
                .then(|| DeliveryError::retry("the sink answered for none of the batch"));
            for ((ev, seq), r) in events.iter().zip(&seqs).zip(results) {
                match r {
                    Ok(()) => {
                        self.status.on_delivered(ev, self.spool.acked_at(*seq));
                        outcomes.push(Outcome::Delivered);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let Some(e) = failed else { break };
            self.setbacks.fetch_add(1, Ordering::AcqRel);
            if follows.is_some() {
                break;
            }
            let head = &events[outcomes.len()];
            match e {
                DeliveryError::Pause(reason) => outcomes.push(Outcome::Paused(reason)),
                // After a confirmed prefix: the next batch starts with this one.
                _ if !outcomes.is_empty() => {}
                DeliveryError::Permanent(_) => {
                    self.dead_letter(seqs[outcomes.len()], head, attempts, e.to_string())
                        .await;
                    outcomes.push(Outcome::DeadLettered);
                }
                DeliveryError::Retry { .. } if too_old(head, self.config.max_age) => {
                    let e = given_up(e, self.config.max_age);
                    self.dead_letter(seqs[outcomes.len()], head, attempts, e.to_string())
                        .await;
                    outcomes.push(Outcome::DeadLettered);
                }
                DeliveryError::Retry { .. } => {
                    let b = delays.get_or_insert_with(|| {
                        backoff(&self.config, self.config.max_attempts).build()
                    });
                    match retry_after(&e, b.next()) {
                        Some(delay) => {
                            self.status.on_retry(&e.to_string(), delay);
                            tokio::time::sleep(delay).await;
                        }
                        None => {
                            self.dead_letter(seqs[outcomes.len()], head, attempts, e.to_string())
                                .await;
                            outcomes.push(Outcome::DeadLettered);
                        }
                    }
                }
            }
        }
        outcomes.resize_with(events.len(), || Outcome::Untried);
        seqs.into_iter()
            .zip(events)
            .zip(outcomes)
            .map(|((seq, ev), o)| (seq, ev, o))
            .collect()
    }

    /// Appends the dead letter, trying until it is on disk: only then may the checkpoint pass it.
    async fn dead_letter(&self, seq: u64, event: &Event, attempts: u32, error: String) {
        let letter = Arc::new(DeadLetter {
            event: event.clone(),
            attempts,
            error,
            dead_lettered_at: Utc::now(),
        });
        let write = || {
            let (path, letter) = (self.dead_letters.clone(), letter.clone());
            async move {
                tokio::task::spawn_blocking(move || dead_letter::append(&path, &letter))
                    .await
                    .map_err(std::io::Error::other)?
            }
        };
        let written = write
            .retry(backoff(&self.config, None))
            .notify(|e, _| {
                let msg = format!("cannot write dead letter: {e}");
                tracing::error!(sink = %self.status.name(), error = %msg);
                self.status.on_error(msg);
            })
            .await;
        if written.is_ok() {
            self.status.on_dead_lettered(seq);
            tracing::warn!(sink = %self.status.name(), event_id = %event.id, attempts,
                error = %letter.error, "event dead-lettered");
        }
    }
}

/// Honours the peer's `Retry-After` (bounded) where it is longer than our own backoff; keeps
/// backon's `None` (attempts exhausted) as it is.
fn retry_after(e: &DeliveryError, next: Option<Duration>) -> Option<Duration> {
    match (e, next) {
        (
            DeliveryError::Retry {
                retry_after: Some(hint),
                ..
            },
            Some(ours),
        ) => Some(ours.max((*hint).min(MAX_RETRY_AFTER))),
        _ => next,
    }
}

/// Whether the sink holds back now: intake is flooded and the oldest undelivered event (received
/// at `oldest_ms`, Unix ms) is younger than the sink's `yield_to_intake`.
fn holds_back(config: &RunnerConfig, spool: &SpoolHandle, oldest_ms: Option<i64>) -> bool {
    let (Some(max), Some(oldest)) = (config.yield_to_intake, oldest_ms) else {
        return false;
    };
    let age_ms = Utc::now().timestamp_millis().saturating_sub(oldest);
    u128::try_from(age_ms).is_ok_and(|age| age < max.as_millis()) && spool.intake_flooded()
}

/// The runner task: dispatch, collect, checkpoint, until stopped.
async fn run<S: Sink>(
    core: Arc<Core<S>>,
    checkpoint: Checkpoint,
    spool: SpoolHandle,
    mut rx: mpsc::Receiver<Vec<Item>>,
    mut resume: watch::Receiver<u64>,
    stop: CancellationToken,
) {
    let status = core.status.clone();
    let max = core.config.max_in_flight.max(1);
    // In order, in batches; 1 (or several in flight) dispatches events one by one.
    let batch = core.config.batch();
    // Batches out at once (in order, on one connection); see `Sink::pipeline_depth`.
    let depth = if batch > 1 {
        core.sink.pipeline_depth().max(1)
    } else {
        1
    };
    // `setbacks` when the first of the batches now out was sent.
    let mut lead_ticket = 0u64;
    let mut window = Window::new(checkpoint.get());
    // Read but not dispatched: the next event(s), and events a pause or a batch sent back.
    let mut ready: BTreeMap<u64, Event> = BTreeMap::new();
    // Body bytes in `ready`, so a batch that collects while another is out stays bounded.
    let mut ready_bytes = 0usize;
    let mut in_flight = FuturesUnordered::new();
    let mut paused = false;
    let mut deadline: Option<Instant> = None;
    // The reader has passed everything durable (only once stopping): nothing more will come.
    let mut reader_done = false;
    let mut writing: Option<JoinHandle<Result<(), SpoolError>>> = None;
    // When the last checkpoint write started, and when the next one may (see CHECKPOINT_EVERY).
    let mut last_write = Instant::now()
        .checked_sub(CHECKPOINT_EVERY)
        .unwrap_or_else(Instant::now);
    let mut write_due: Option<Instant> = None;
    loop {
        // Holding back for a flooded intake: look again shortly (never while shutting down).
        let holding = !ready.is_empty()
            && deadline.is_none()
            && holds_back(&core.config, &spool, window.oldest());
        let recheck = holding.then(|| Instant::now() + YIELD_RECHECK);
        if holding {
            // Nothing goes out until the flood ends or the oldest event is old enough.
        } else if batch > 1 {
            while !paused && !ready.is_empty() {
                // A second batch goes out only whole, and only while nothing failed since the
                // first one went out.
                let lead = in_flight.is_empty();
                if !lead
                    && (in_flight.len() >= depth
                        || core.setbacks.load(Ordering::Acquire) != lead_ticket
                        || (ready.len() < batch && ready_bytes < MAX_BATCH_BYTES))
                {
                    break;
                }
                let follows = if lead {
                    lead_ticket = core.setbacks.load(Ordering::Acquire);
                    None
                } else {
                    Some(lead_ticket)
                };
                let mut events = Vec::new();
                let mut bytes = 0;
                while let Some(entry) = ready.first_entry() {
                    let len = entry.get().body.len();
                    if events.len() == batch
                        || (!events.is_empty() && bytes + len > MAX_BATCH_BYTES)
                    {
                        break;
                    }
                    bytes += len;
                    events.push(entry.remove_entry());
                }
                ready_bytes -= bytes;
                in_flight.push(Either::Left(core.clone().deliver_batch(events, follows)));
            }
        } else {
            while !paused && in_flight.len() < max {
                let Some((seq, event)) = ready.pop_first() else {
                    break;
                };
                ready_bytes -= event.body.len();
                let one = core.clone().deliver(seq, event).map(|done| vec![done]);
                in_flight.push(Either::Right(one));
            }
        }
        status
            .in_flight
            .store(in_flight.len() as u64, Ordering::Relaxed);
        status.set_oldest(window.oldest());
        // One at a time: read ahead one event. Batching: collect the next batch meanwhile.
        let room = if batch > 1 {
            ready.len() < batch && ready_bytes < MAX_BATCH_BYTES
        } else {
            ready.is_empty()
        };
        let take = room && !paused && !reader_done;
        tokio::select! {
            biased;
            // Shutdown: deliver what is spooled until the deadline; what is left stays spooled.
            _ = stop.cancelled(), if deadline.is_none() => {
                deadline = Some(Instant::now() + core.config.shutdown_timeout);
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => break,
            _ = tokio::time::sleep_until(recheck.unwrap_or_else(Instant::now)), if recheck.is_some() => {}
            Some(done) = in_flight.next() => for (seq, event, outcome) in done {
                match outcome {
                    Outcome::Delivered | Outcome::DeadLettered => window.finish(seq),
                    Outcome::Paused(reason) => {
                        // Mark older resumes seen before anyone can see the pause, so a resume
                        // sent after seeing it is never taken as already handled.
                        resume.borrow_and_update();
                        status.on_paused(&reason);
                        paused = true;
                        ready_bytes += event.body.len();
                        ready.insert(seq, event);
                    }
                    Outcome::Untried => {
                        ready_bytes += event.body.len();
                        ready.insert(seq, event);
                    }
                }
            },
            // The previous checkpoint write finished; a newer one starts below.
            // A confirmation waits for its checkpoint write; nothing else to do here.
            _ = tokio::time::sleep_until(write_due.unwrap_or_else(Instant::now)), if write_due.is_some() => {
                write_due = None;
            }
            Some(done) = OptionFuture::from(writing.as_mut()) => {
                writing = None;
                if let Err(e) = done.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
                    tracing::error!(sink = %status.name(), error = %e, "cannot write checkpoint");
                    status.on_error(e);
                }
            }
            Ok(()) = resume.changed(), if paused => {
                paused = false;
                status.on_resumed();
            }
            items = rx.recv(), if take => match items {
                None => reader_done = true,
                Some(items) => for item in items {
                    match item {
                        Item::Event(rec) => {
                            window.push_pending(rec.seq, rec.event.received_at.timestamp_millis());
                            ready_bytes += rec.event.body.len();
                            ready.insert(rec.seq, rec.event);
                        }
                        Item::Filtered(seq) => {
                            status.filtered.fetch_add(1, Ordering::Relaxed);
                            window.push_done(seq);
                        }
                        Item::Lost(skipped, why) => {
                            let n = skipped.to - skipped.from;
                            tracing::error!(sink = %status.name(), from = skipped.from, to = skipped.to,
                                error = %why, "spooled events unreadable; passed over (the event log has them)");
                            status.lost.fetch_add(n, Ordering::Relaxed);
                            status.on_error(why);
                            window.push_done(skipped.to - 1);
                        }
                        Item::Trouble(why) => {
                            tracing::error!(sink = %status.name(), error = %why, "cannot read the spool");
                            status.on_error(why);
                        }
                    }
                },
            },
        }
        status.publish_confirmed(window.confirmed);
        if writing.is_none() && window.confirmed > checkpoint.get() {
            let now = Instant::now();
            if now >= last_write + CHECKPOINT_EVERY {
                last_write = now;
                write_due = None;
                let (cp, seq) = (checkpoint.clone(), window.confirmed);
                writing = Some(tokio::task::spawn_blocking(move || cp.store(seq)));
            } else if write_due.is_none() {
                write_due = Some(last_write + CHECKPOINT_EVERY);
            }
        }
        if deadline.is_some() && in_flight.is_empty() && ready.is_empty() && reader_done {
            break;
        }
    }
    // What is still in flight is abandoned here; it stays in the spool for the next start.
    drop(in_flight);
    status.in_flight.store(0, Ordering::Relaxed);
    if let Some(w) = writing {
        let _ = w.await;
    }
    let seq = window.confirmed;
    let cp = checkpoint.clone();
    match tokio::task::spawn_blocking(move || cp.store(seq)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(sink = %status.name(), error = %e, "cannot write checkpoint"),
        Err(e) => tracing::error!(sink = %status.name(), error = %e, "cannot write checkpoint"),
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
