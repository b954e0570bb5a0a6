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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;
use futures_util::future::OptionFuture;
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
/// How long the reader thread waits before trying again after a read error that is not damage
/// (e.g. out of file descriptors).
const READ_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// How one sink is driven. Built by the config from the sink's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Deliveries at once. 1 keeps the spool's order; more pipelines them (order then not kept).
    pub max_in_flight: usize,
    /// First retry delay; doubles (with jitter) up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Attempts in all, the first included, before an event is dead-lettered. `None` never gives
    /// up (the brokers: while one is away, events wait in the spool).
    pub max_attempts: Option<u32>,
    pub filter: EventFilter,
    /// On shutdown, how long the sink gets to drain the spool; what is left stays spooled.
    pub shutdown_timeout: Duration,
}

impl Default for RunnerConfig {
    /// A broker's defaults: in order, never give up, 1 s doubling to 60 s.
    fn default() -> Self {
        RunnerConfig {
            max_in_flight: 1,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_attempts: None,
            filter: EventFilter::default(),
            shutdown_timeout: Duration::from_secs(10),
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
        let (tx, rx) = mpsc::channel((2 * config.max_in_flight).clamp(8, 256));
        let feed = Feed {
            reader,
            from,
            spool: spool.clone(),
            filter: config.filter.clone(),
            tx,
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
        });
        let task = tokio::spawn(run(core, checkpoint, rx, resume_rx, stop.clone()));
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
    tx: mpsc::Sender<Item>,
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
                Ok(None) => self.wait(&mut durable),
                Err(e @ SpoolError::Corrupt { .. }) => match self.reader.skip_damaged() {
                    Ok(Some(skipped)) => self.send(Item::Lost(skipped, e.to_string())),
                    Ok(None) => {
                        let why = format!("{e}; nothing readable after it yet");
                        self.send(Item::Trouble(why)) && self.wait(&mut durable)
                    }
                    Err(e) => self.send(Item::Trouble(e.to_string())) && self.pause(),
                },
                Err(e) => self.send(Item::Trouble(e.to_string())) && self.pause(),
            };
            if !sent {
                return;
            }
        }
    }

    /// False when the runner is gone.
    fn send(&self, item: Item) -> bool {
        self.tx.blocking_send(item).is_ok()
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
}

/// What every delivery future shares.
struct Core<S> {
    sink: S,
    status: Arc<SinkStatus>,
    config: RunnerConfig,
    dead_letters: PathBuf,
}

impl<S: Sink> Core<S> {
    fn backoff(&self, max_attempts: Option<u32>) -> ExponentialBuilder {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.config.retry_initial)
            .with_max_delay(self.config.retry_max)
            .with_factor(2.0)
            .with_jitter();
        match max_attempts {
            Some(n) => b.with_max_times(n.max(1) as usize - 1),
            None => b.without_max_times(),
        }
    }

    /// Delivers one event, retrying as configured; dead-letters it when that is the end of it.
    async fn deliver(self: Arc<Self>, seq: u64, event: Event) -> (u64, Event, Outcome) {
        let attempts = AtomicU32::new(0);
        let result = {
            let (sink, ev, tries) = (&self.sink, &event, &attempts);
            (move || async move {
                tries.fetch_add(1, Ordering::Relaxed);
                sink.deliver(ev).await
            })
            .retry(self.backoff(self.config.max_attempts))
            .sleep(tokio::time::sleep)
            .when(|e| matches!(e, DeliveryError::Retry { .. }))
            .adjust(retry_after)
            .notify(|e, delay| self.status.on_retry(&e.to_string(), delay))
            .await
        };
        let outcome = match result {
            Ok(()) => {
                self.status.on_delivered();
                Outcome::Delivered
            }
            Err(DeliveryError::Pause(reason)) => Outcome::Paused(reason),
            Err(e) => {
                self.dead_letter(seq, &event, attempts.into_inner(), e.to_string())
                    .await;
                Outcome::DeadLettered
            }
        };
        (seq, event, outcome)
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
            .retry(self.backoff(None))
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

/// The runner task: dispatch, collect, checkpoint, until stopped.
async fn run<S: Sink>(
    core: Arc<Core<S>>,
    checkpoint: Checkpoint,
    mut rx: mpsc::Receiver<Item>,
    mut resume: watch::Receiver<u64>,
    stop: CancellationToken,
) {
    let status = core.status.clone();
    let max = core.config.max_in_flight.max(1);
    let mut window = Window::new(checkpoint.get());
    // Read but not dispatched: the next event(s), and events a pause sent back.
    let mut ready: BTreeMap<u64, Event> = BTreeMap::new();
    let mut in_flight = FuturesUnordered::new();
    let mut paused = false;
    let mut deadline: Option<Instant> = None;
    // The reader has passed everything durable (only once stopping): nothing more will come.
    let mut reader_done = false;
    let mut writing: Option<JoinHandle<Result<(), SpoolError>>> = None;
    loop {
        while !paused && in_flight.len() < max {
            let Some((seq, event)) = ready.pop_first() else {
                break;
            };
            in_flight.push(core.clone().deliver(seq, event));
        }
        status
            .in_flight
            .store(in_flight.len() as u64, Ordering::Relaxed);
        status.set_oldest(window.oldest());
        let take = ready.is_empty() && !paused && !reader_done;
        tokio::select! {
            biased;
            // Shutdown: deliver what is spooled until the deadline; what is left stays spooled.
            _ = stop.cancelled(), if deadline.is_none() => {
                deadline = Some(Instant::now() + core.config.shutdown_timeout);
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => break,
            Some((seq, event, outcome)) = in_flight.next() => match outcome {
                Outcome::Delivered | Outcome::DeadLettered => window.finish(seq),
                Outcome::Paused(reason) => {
                    // Mark older resumes seen before anyone can see the pause, so a resume sent
                    // after seeing it is never taken as already handled.
                    resume.borrow_and_update();
                    status.on_paused(&reason);
                    paused = true;
                    ready.insert(seq, event);
                }
            },
            // The previous checkpoint write finished; a newer one starts below.
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
            item = rx.recv(), if take => match item {
                None => reader_done = true,
                Some(Item::Event(rec)) => {
                    window.push_pending(rec.seq, rec.event.received_at.timestamp_millis());
                    ready.insert(rec.seq, rec.event);
                }
                Some(Item::Filtered(seq)) => {
                    status.filtered.fetch_add(1, Ordering::Relaxed);
                    window.push_done(seq);
                }
                Some(Item::Lost(skipped, why)) => {
                    let n = skipped.to - skipped.from;
                    tracing::error!(sink = %status.name(), from = skipped.from, to = skipped.to,
                        error = %why, "spooled events unreadable; passed over (the event log has them)");
                    status.lost.fetch_add(n, Ordering::Relaxed);
                    status.on_error(why);
                    window.push_done(skipped.to - 1);
                }
                Some(Item::Trouble(why)) => {
                    tracing::error!(sink = %status.name(), error = %why, "cannot read the spool");
                    status.on_error(why);
                }
            },
        }
        status.publish_confirmed(window.confirmed);
        if writing.is_none() && window.confirmed > checkpoint.get() {
            let (cp, seq) = (checkpoint.clone(), window.confirmed);
            writing = Some(tokio::task::spawn_blocking(move || cp.store(seq)));
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
