//! The event log writer: one thread that owns the file, appends lines and confirms them back.
//!
//! A 2xx promises the event is on disk, so each request waits for its line to be written and, with
//! `fsync = true`, for `fdatasync`. Syncs are grouped: every line that arrives while one sync runs is
//! written and synced together by the next (group commit), so throughput grows with load while each
//! request still waits for at most about two syncs.
//!
//! The writer reopens the file by path on request (SIGHUP, for logrotate) and on its own when the path
//! no longer names the open file (renamed or deleted under us), and after a failed write. A failed
//! batch is answered with an error (503 to the sender, who retries) and the file is cut back to
//! where the batch began, so a half-written line never glues onto the next.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use crate::forward::spool::Checkpoint;
use crate::forward::{Event, Spool};
use crate::metrics::Metrics;

mod file;
pub mod read;
pub mod record;
mod spooled;
pub mod wal;

use file::LogFile;

pub use record::{EventRecord, LogFormat, Payload};

/// Lines waiting for the writer. A full queue makes requests wait (backpressure), never drops.
const QUEUE_CAPACITY: usize = 8192;
/// How long the writer polls for the next line before it sleeps, while lines arrive densely.
const SPIN: Duration = Duration::from_micros(20);
/// At most this many bytes go into one write+sync, so one batch's latency stays bounded.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Why an event could not be stored. Answered with 503: the sender should retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("event log write failed: {0}")]
    Io(Arc<io::Error>),
    #[error("event log is shut down")]
    Closed,
    /// The write did not finish within the stall bound: answered 503 rather than left hanging. The
    /// line may still be written when the writer comes back; the sender's retry then duplicates it,
    /// which is the safe side (a duplicate, never a loss).
    #[error("event log write has not finished for {0:?}")]
    Stalled(Duration),
    /// The spool is at `max_bytes` until the sinks catch up: this event is refused (503), never
    /// dropped after a 2xx.
    #[error("spool full: the sinks are behind")]
    SpoolFull,
    #[error("spool: {0}")]
    Spool(Arc<str>),
}

/// The longest a request waits for its line before it is answered 503 (capped further at half the
/// request timeout, see [`stall_bound`]). A healthy disk syncs in milliseconds; seconds mean a
/// stalled filesystem.
pub const MAX_WRITE_STALL: Duration = Duration::from_secs(5);

/// How long a write or sync may take before the log counts as stalled: answered before the
/// sender's own request timeout would cut it.
pub fn stall_bound(request_timeout: Duration) -> Duration {
    MAX_WRITE_STALL.min(request_timeout / 2)
}

/// What a request gets back: the event's spool sequence number, when it was spooled.
type Done = oneshot::Sender<Result<Option<u64>, SinkError>>;

enum Command {
    /// The event boxed: it is large, and most commands in the queue are appends anyway.
    Append(Vec<u8>, Option<Box<Event>>, Done),
    Reopen,
    Shutdown,
}

/// Shared view of the writer's health, for `/healthz`.
#[derive(Debug)]
pub struct Health {
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// The watchdog: when the write in progress began, in milliseconds since `epoch` plus one (0:
    /// no write in progress). The writer cannot be interrupted in the kernel; this makes it seen.
    busy_since: AtomicU64,
    epoch: Instant,
    bound: Duration,
    path: PathBuf,
    /// Requests answered 503 because the writer stalled.
    refused: AtomicU64,
}

impl Health {
    fn new(path: &Path, bound: Duration) -> Health {
        Health {
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            busy_since: AtomicU64::new(0),
            epoch: Instant::now(),
            bound,
            path: path.to_path_buf(),
            refused: AtomicU64::new(0),
        }
    }

    fn write_started(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.busy_since.store(ms, Ordering::Relaxed);
    }

    fn write_ended(&self) {
        self.busy_since.store(0, Ordering::Relaxed);
    }

    /// How long the write in progress has taken, when that is longer than the bound.
    pub fn stalled(&self) -> Option<Duration> {
        let since = self.busy_since.load(Ordering::Relaxed);
        if since == 0 {
            return None;
        }
        let took = self
            .epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(since - 1));
        (took > self.bound).then_some(took)
    }

    /// Requests answered 503 because the writer stalled.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// `None` while the last write succeeded and none is stuck, else what is wrong.
    pub fn error(&self) -> Option<String> {
        if let Some(took) = self.stalled() {
            return Some(format!(
                "stalled: a write to {} has not returned for {} s",
                self.path.display(),
                took.as_secs()
            ));
        }
        if self.failing.load(Ordering::Relaxed) {
            self.last_error
                .lock()
                .map(|e| e.clone())
                .unwrap_or_else(|p| p.into_inner().clone())
        } else {
            None
        }
    }
    fn set(&self, error: Option<&io::Error>) {
        let failing = error.is_some();
        if self.failing.load(Ordering::Relaxed) != failing || failing {
            if let Ok(mut e) = self.last_error.lock() {
                *e = error.map(|e| e.to_string());
            }
            self.failing.store(failing, Ordering::Relaxed);
        }
    }
}

/// A handle to the writer; cheap to clone, one per request.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::Sender<Command>,
    health: Arc<Health>,
}

/// Joins the writer thread after [`EventLog::shutdown`].
pub struct WriterThread(std::thread::JoinHandle<()>);

impl WriterThread {
    /// Waits until every queued line is written and synced.
    pub async fn join(self) {
        let _ = tokio::task::spawn_blocking(move || self.0.join()).await;
    }
}

impl EventLog {
    /// Opens (creating) `path` for appending and starts the writer thread. With `fsync`, a spool
    /// and the log's checkpoint in it, the spool is the log's write-ahead log ([`wal`]): a group
    /// syncs only the spool.
    pub fn start(
        path: &Path,
        fsync: bool,
        stall_bound: Duration,
        metrics: Arc<Metrics>,
        spool: Option<Spool>,
        log_checkpoint: Option<Checkpoint>,
    ) -> io::Result<(EventLog, WriterThread)> {
        let file = LogFile::open(path, fsync)?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let health = Arc::new(Health::new(path, stall_bound));
        let wal = match (fsync, &spool, log_checkpoint) {
            (true, Some(_), Some(cp)) => Some(wal::LogSyncer::start(cp)?),
            _ => None,
        };
        // Only when both syncs happen per group; a failure to start it syncs the two in turn.
        let syncer = (fsync && spool.is_some() && wal.is_none())
            .then(spooled::Syncer::start)
            .and_then(Result::ok);
        let writer = Writer {
            busy: false,
            syncer,
            path: path.to_path_buf(),
            file: Some(file),
            fsync,
            rx,
            health: health.clone(),
            metrics,
            spool,
            wal,
        };
        let handle = std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || writer.run())?;
        Ok((EventLog { tx, health }, WriterThread(handle)))
    }

    /// Appends one complete line (ending in `\n`), and `event` to the spool when there is one, and
    /// waits until both are durable, or at most the stall bound: then it answers
    /// [`SinkError::Stalled`] (see there for what becomes of the line). `Ok` carries the event's
    /// spool sequence number.
    pub async fn append(
        &self,
        line: Vec<u8>,
        event: Option<Event>,
    ) -> Result<Option<u64>, SinkError> {
        let (done, wait) = oneshot::channel();
        let queued_and_written = async {
            self.tx
                .send(Command::Append(line, event.map(Box::new), done))
                .await
                .map_err(|_| SinkError::Closed)?;
            wait.await.unwrap_or(Err(SinkError::Closed))
        };
        match tokio::time::timeout(self.health.bound, queued_and_written).await {
            Ok(r) => r,
            Err(_) => {
                self.health.refused.fetch_add(1, Ordering::Relaxed);
                Err(SinkError::Stalled(self.health.bound))
            }
        }
    }

    /// Asks the writer to stop and waits for it up to `deadline`; false when it did not stop (it
    /// is stuck in the kernel), and the caller must exit without it.
    pub async fn stop(&self, writer: WriterThread, deadline: tokio::time::Instant) -> bool {
        let stopped = async {
            self.shutdown().await;
            writer.join().await;
        };
        tokio::time::timeout_at(deadline, stopped).await.is_ok()
    }

    /// Asks the writer to reopen the file by path after the lines queued so far.
    pub async fn reopen(&self) {
        let _ = self.tx.send(Command::Reopen).await;
    }

    /// Asks the writer to finish the queued lines and stop.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown).await;
    }

    pub fn health(&self) -> &Health {
        &self.health
    }
}

/// The lines of one group and the requests waiting for them.
#[derive(Default)]
struct Group {
    buf: Vec<u8>,
    /// Each request, with its event's spool sequence number.
    waiters: Vec<(Done, Option<u64>)>,
}

struct Writer {
    /// Whether the last command came within [`SPIN`] of asking (see [`Writer::next`]).
    busy: bool,
    path: PathBuf,
    /// `None` after a failure until the next reopen succeeds.
    file: Option<LogFile>,
    fsync: bool,
    rx: mpsc::Receiver<Command>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    /// With sinks configured: every event also goes here, in the same group and sync.
    spool: Option<Spool>,
    /// Runs the spool's sync beside the log's (with `fsync` and a spool, without `wal`).
    syncer: Option<spooled::Syncer>,
    /// The spool is the write-ahead log: groups sync only the spool, this syncs the log behind.
    wal: Option<wal::LogSyncer>,
}

impl Writer {
    /// The loop, on its own thread: `fdatasync` blocks for a disk round trip, which must not hold a
    /// runtime worker. With `fsync = false` a runtime task, and a direct append under a lock by
    /// each request, were tried and were slower than this thread: a `write` per request costs more
    /// than the hand-off (figures in the README's performance section).
    fn run(mut self) {
        let mut group = Group::default();
        while let Some(first) = self.next() {
            if self.group(first, &mut group) {
                break;
            }
        }
        self.finish(&mut group);
    }

    /// The next command. While lines arrive densely (the last wait was shorter than [`SPIN`]) the
    /// queue is polled, yielding the CPU in between, before the thread sleeps: under load that
    /// saves the futex wake a request pays to rouse a sleeping writer and the writer's own sleep
    /// and wake-up. After a longer wait it sleeps at once, so a lightly loaded server burns no CPU
    /// polling.
    fn next(&mut self) -> Option<Command> {
        let start = Instant::now();
        let cmd = 'got: {
            if self.busy {
                while start.elapsed() < SPIN {
                    match self.rx.try_recv() {
                        Ok(cmd) => break 'got Some(cmd),
                        Err(TryRecvError::Disconnected) => break 'got None,
                        Err(TryRecvError::Empty) => std::thread::yield_now(),
                    }
                }
            }
            self.rx.blocking_recv()
        };
        self.busy = start.elapsed() < SPIN;
        cmd
    }

    /// Takes `first` and everything else already queued (the group), writes it once and answers
    /// every request in it. True when asked to stop.
    fn group(&mut self, first: Command, g: &mut Group) -> bool {
        let mut stop = false;
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append(line, event, done) => self.stage(line, event, done, g),
                Command::Reopen => {
                    // Lines queued before the reopen belong in the old file.
                    self.commit(g);
                    self.reopen();
                }
                Command::Shutdown => stop = true,
            }
            if g.buf.len() < MAX_BATCH_BYTES {
                next = self.rx.try_recv().ok();
            }
        }
        self.commit(g);
        stop
    }

    fn finish(&mut self, g: &mut Group) {
        // Whatever raced with the shutdown is still answered, never silently dropped.
        while let Ok(cmd) = self.rx.try_recv() {
            if let Command::Append(line, event, done) = cmd {
                self.stage(line, event, done, g);
            }
        }
        self.commit(g);
        if let Some(f) = &self.file {
            // A clean stop leaves everything on disk whatever the fsync setting.
            let _ = f.file.sync_data();
        }
        // Its last sync finds the file synced and stores the log's checkpoint.
        drop(self.wal.take());
        tracing::info!(path = %self.path.display(), "event log closed");
    }

    fn reopen(&mut self) {
        self.health.write_started();
        let opened = LogFile::open(&self.path, self.fsync);
        self.health.write_ended();
        match opened {
            Ok(f) => {
                self.replace_file(f);
                tracing::info!(path = %self.path.display(), why = "asked to (SIGHUP)", "event log reopened");
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot reopen event log");
                self.health.set(Some(&e));
                self.file = None;
            }
        }
    }

    /// Writes and syncs the group (log and spool), then answers every waiter with the outcome.
    fn commit(&mut self, g: &mut Group) {
        if g.waiters.is_empty() {
            g.buf.clear();
            return;
        }
        self.health.write_started();
        let result = self.write_batch(&g.buf);
        self.health.write_ended();
        let result = match result {
            Ok(Ok(())) => {
                self.health.set(None);
                Ok(())
            }
            Ok(Err(spool)) => Err(spool),
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, events = g.waiters.len(),
                    "event log write failed; answering 503");
                self.health.set(Some(&e));
                self.file = None;
                Err(SinkError::Io(Arc::new(e)))
            }
        };
        if result.is_ok() {
            let last = g.waiters.iter().filter_map(|(_, seq)| *seq).max();
            self.written_through(last);
        }
        for (w, seq) in g.waiters.drain(..) {
            let _ = w.send(result.clone().map(|()| seq));
        }
        g.buf.clear();
    }

    /// The open file now holds every line through `seq`: tells the log syncer ([`wal`]).
    fn written_through(&self, seq: Option<u64>) {
        if let (Some(wal), Some(seq), Some(log)) = (&self.wal, seq, &self.file) {
            let urgent = self.spool.as_ref().is_some_and(Spool::half_full);
            wal.written(&log.file, log.len, seq, urgent);
        }
    }

    /// Switches to a newly opened file. With [`wal`], the old file is synced first: the log
    /// syncer only ever syncs the newest, and the checkpoint it stores covers the old file's lines.
    fn replace_file(&mut self, new: LogFile) {
        if let (Some(_), Some(old)) = (&self.wal, &self.file) {
            if let Err(e) = old.file.sync_data() {
                tracing::error!(path = %self.path.display(), error = %e,
                    "cannot sync the event log before reopening it; the spool still has its events");
            }
        }
        self.file = Some(new);
    }

    /// The log's result outside, the spool's inside (a spool failure leaves the log healthy).
    fn write_batch(&mut self, buf: &[u8]) -> io::Result<Result<(), SinkError>> {
        let reopen = match &mut self.file {
            Some(f) => f
                .is_stale(&self.path)
                .then_some("the path no longer named the open file"),
            None => Some("after a failure"),
        };
        if let Some(why) = reopen {
            let new = LogFile::open(&self.path, self.fsync)?;
            self.replace_file(new);
            tracing::info!(path = %self.path.display(), why, "event log reopened");
        }
        let Some(log) = self.file.as_mut() else {
            return Err(io::Error::other("event log is not open"));
        };
        let t0 = Instant::now();
        let written = (&*log.file).write_all(buf);
        self.metrics.observe_log_write(t0.elapsed(), buf.len());
        let (synced, spooled) = match written {
            Ok(()) => spooled::sync_both(
                &log.file,
                // With the spool as its write-ahead log, the log is synced behind ([`wal`]).
                self.fsync && self.wal.is_none(),
                self.spool.as_mut(),
                self.syncer.as_ref(),
                &self.metrics,
            ),
            Err(e) => {
                // The group is answered 503: none of its events may reach a sink.
                if let Some(spool) = self.spool.as_mut() {
                    spool.discard();
                }
                (Err(e), Ok(()))
            }
        };
        match synced {
            Ok(()) => log.len += buf.len() as u64,
            Err(_) => {
                // Best effort: drop a partial batch so the next line starts on a clean line; unless
                // the file shrank under us (copytruncate), where cutting would extend it instead.
                if log.file.metadata().is_ok_and(|m| m.len() >= log.len) {
                    let _ = log.file.set_len(log.len);
                }
            }
        }
        synced.map(|()| spooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that never answers (as one stuck in the kernel on a stalled filesystem, which a
    /// test cannot produce portably): the request is answered within the bound, counted as
    /// refused, and `/healthz` names the stall once the write in progress outlasts the bound.
    #[tokio::test]
    async fn a_stuck_writer_is_answered_within_the_bound_and_seen_by_the_watchdog() {
        let bound = Duration::from_millis(50);
        let (tx, _never_read) = mpsc::channel(1);
        let health = Arc::new(Health::new(Path::new("/var/log/events.log"), bound));
        let log = EventLog {
            tx,
            health: health.clone(),
        };
        let r = tokio::time::timeout(Duration::from_secs(5), log.append(b"x\n".to_vec(), None))
            .await
            .expect("answered, not left hanging");
        assert!(matches!(r, Err(SinkError::Stalled(_))), "{r:?}");
        assert_eq!(health.refused(), 1);

        assert_eq!(health.error(), None);
        health.write_started();
        assert_eq!(
            health.stalled(),
            None,
            "a write within the bound is not a stall"
        );
        std::thread::sleep(bound * 2);
        let e = health.error().expect("a write past the bound is reported");
        assert!(
            e.contains("stalled") && e.contains("/var/log/events.log"),
            "{e}"
        );
        health.write_ended();
        assert_eq!(health.error(), None);
    }

    /// SIGTERM's bound: a writer that does not stop is given up at the deadline, so the process
    /// can exit without it.
    #[tokio::test]
    async fn stop_gives_up_on_a_stuck_writer_at_the_deadline() {
        let (tx, _rx) = mpsc::channel(1);
        let health = Arc::new(Health::new(Path::new("events.log"), MAX_WRITE_STALL));
        let log = EventLog { tx, health };
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let writer = WriterThread(std::thread::spawn(move || {
            let _ = stuck.recv();
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        let stopped = tokio::time::timeout(Duration::from_secs(5), log.stop(writer, deadline))
            .await
            .expect("stop returns at its deadline");
        assert!(!stopped);
        let _ = release.send(());
    }

    #[test]
    fn stall_bound_is_half_the_request_timeout_at_most_five_seconds() {
        assert_eq!(stall_bound(Duration::from_secs(4)), Duration::from_secs(2));
        assert_eq!(stall_bound(Duration::from_secs(60)), MAX_WRITE_STALL);
    }

    #[test]
    fn non_regular_files_are_refused_by_name_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let err = LogFile::open(dir.path(), false).err().unwrap().to_string();
        assert!(
            err.contains("not a regular file") && err.contains("directory"),
            "{err}"
        );
        let err = LogFile::open(Path::new("/dev/null"), true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("/dev/null") && err.contains("cannot be synced"),
            "{err}"
        );
        assert!(LogFile::open(Path::new("/dev/null"), false).is_ok());
        let f = dir.path().join("events.log");
        assert!(LogFile::open(&f, true).is_ok());
    }
}
