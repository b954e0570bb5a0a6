//! The spool: a directory of framed, checksummed records that the service owns, so every accepted
//! event reaches every sink even if a broker is away, the box reboots, or the event log is rotated
//! and deleted (we never read the event log back).
//!
//! Writer side (the event-log writer thread, synchronous, std only): [`Spool::open`] once, then per
//! group commit [`Spool::append`] for each event and one [`Spool::sync`], which makes the group
//! durable and publishes its last sequence number. Reader side (the sink runners): a
//! [`SpoolHandle`] to register checkpoints, watch the durable sequence, and open [`SpoolReader`]s.
//!
//! Layout: `<dir>/<first seq, 20 digits>.seg` segment files, `<dir>/checkpoints/<sink>`,
//! `<dir>/dead-letter/<sink>.jsonl`, and `<dir>/lock` (held with `flock` so two processes never
//! share one spool).

pub mod checkpoint;
pub mod dead_letter;
pub mod frame;
mod reader;
mod remover;
mod segment;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::forward::Event;
pub use checkpoint::{validate_sink_name, Checkpoint};
pub use frame::FrameError;
pub use reader::{Record, Skipped, SpoolReader};
use remover::Remover;
pub use segment::Damage;

/// Pending bytes above which `append` writes them out (still without a sync), so one large group
/// does not hold megabytes in memory twice.
const WRITE_AT: usize = 1 << 20;
/// A group commit of at least this many events means intake is flooded: requests were queueing
/// behind the previous sync. One sender at a time (NetBox, a CI system) makes groups of one or two.
const FLOODED_GROUP: u64 = 8;
/// How long one flooded group keeps [`SpoolHandle::intake_flooded`] true: a few syncs' worth, so
/// the signal holds across the short gaps of a flood and clears soon after it ends.
const FLOODED_HOLD_MS: u64 = 100;

/// The `[spool]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// Bound on all segment files together; over it, `append` answers [`SpoolError::Full`].
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size; must be at most half of
    /// `max_bytes`, so that once every sink caught up the closed segments free enough room.
    pub segment_bytes: u64,
}

/// Everything that can go wrong with the spool. Paths are ours (config), never secrets.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Answer 503 with Retry-After: the sinks are behind; it clears once they catch up.
    #[error("spool full: {used} of {max} bytes in use until the sinks catch up")]
    Full { used: u64, max: u64 },
    #[error("event too large for the spool: {0}")]
    TooLarge(FrameError),
    #[error("spool record damaged in {segment} at byte {offset}: {damage}")]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        damage: Damage,
    },
    #[error("spool directory {0} is in use by another process")]
    Locked(PathBuf),
    /// A failed group could not be cut back off the file; appends are refused until it can.
    #[error("spool could not undo a failed write; refusing appends until it can")]
    Broken,
    #[error("invalid spool settings: {0}")]
    Config(String),
    #[error("invalid sink name {0:?}: use 1 to 64 of A-Z a-z 0-9 _ -")]
    InvalidSinkName(String),
    #[error("sink {0:?} is registered twice")]
    AlreadyRegistered(String),
    #[error("checkpoint file {path} is not a sequence number")]
    BadCheckpoint { path: PathBuf },
}

impl SpoolError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        SpoolError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What [`Spool::open`] found, for the start-up diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub segments: usize,
    /// The sequence number the next append gets.
    pub next_seq: u64,
    pub used_bytes: u64,
    /// Set when the newest segment did not end on a clean record boundary and was cut.
    pub torn_tail: Option<TornTail>,
}

/// A cut tail: where, how much, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    pub offset: u64,
    pub bytes_cut: u64,
    /// Records lost: the damaged one plus any intact ones found after it. More than one means more
    /// than an interrupted write (unsynced pages written out of order, or media damage): log it loudly.
    pub records_cut: u64,
    pub damage: Damage,
}

/// State shared between the writer and everyone else.
pub(crate) struct Shared {
    dir: PathBuf,
    /// The last sequence number that is durable; runners wait on it.
    durable: watch::Sender<u64>,
    /// Registered sinks' durable checkpoints, by name.
    checkpoints: Mutex<BTreeMap<String, checkpoint::Registered>>,
    used_bytes: AtomicU64,
    full: AtomicBool,
    /// Until when (ms after `epoch`) intake counts as flooded; see [`FLOODED_GROUP`].
    flooded_until_ms: AtomicU64,
    epoch: std::time::Instant,
    /// The last [`ACKED_GROUPS`] group commits: (last sequence number, Unix µs it became durable,
    /// which is when its requests got their 2xx), for the sinks' ack-to-confirmation times.
    acked: Mutex<VecDeque<(u64, i64)>>,
}

/// Group commits remembered for [`SpoolHandle::acked_at`]: 1.5 MiB, a minute of a flood's groups
/// here (a thousand or so a second), hours of ordinary traffic. Older events are not timed.
const ACKED_GROUPS: usize = 65_536;

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock_checkpoints(&self) -> MutexGuard<'_, BTreeMap<String, checkpoint::Registered>> {
        self.checkpoints.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lowest registered checkpoint, or `None` when no sink is registered.
    fn min_checkpoint(&self) -> Option<u64> {
        let map = self.lock_checkpoints();
        map.values().map(|r| r.value.load(Ordering::Acquire)).min()
    }
}

/// The reader side's view of the spool; cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct SpoolHandle(Arc<Shared>);

impl SpoolHandle {
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// Registers a sink and returns its checkpoint. A sink seen for the first time starts at the
    /// current durable sequence (it gets the events accepted from now on). Register every
    /// configured sink before the first append, or segments it needs may already be gone.
    pub fn register(&self, sink: &str) -> Result<Checkpoint, SpoolError> {
        Checkpoint::register(&self.0, sink, *self.0.durable.borrow())
    }

    /// When the event `seq` became durable (Unix µs), which is when a request that does not wait
    /// for a `required` sink got its 2xx; `None` for events from before this start or older than
    /// the last [`ACKED_GROUPS`] group commits.
    pub fn acked_at(&self, seq: u64) -> Option<i64> {
        let acked = self.0.acked.lock().unwrap_or_else(|p| p.into_inner());
        // The first group whose last sequence number is at or past `seq`; the front group's own
        // first is unknown (its predecessor is gone), so it is not used.
        let i = acked.partition_point(|&(last, _)| last < seq);
        (i > 0).then(|| acked.get(i).map(|&(_, at)| at)).flatten()
    }

    /// Whether a recent group commit was a flood's (many requests queued behind one sync): the
    /// runners then hold back, so forwarding's CPU and disk go to intake while it lasts.
    pub fn intake_flooded(&self) -> bool {
        self.0.now_ms() < self.0.flooded_until_ms.load(Ordering::Relaxed)
    }

    /// Ends a sink's registration (a reload removed it from the config), so it stops holding
    /// segments back. Its checkpoint file stays: if the sink comes back it resumes there, or at
    /// the oldest event still spooled. Stop its runner first.
    pub fn unregister(&self, sink: &str) {
        self.0.lock_checkpoints().remove(sink);
    }

    /// The durable sequence number, updated after every successful [`Spool::sync`].
    pub fn durable(&self) -> watch::Receiver<u64> {
        self.0.durable.subscribe()
    }

    /// Opens a reader at `from_seq` (a checkpoint + 1).
    pub fn reader(&self, from_seq: u64) -> Result<SpoolReader, SpoolError> {
        SpoolReader::open(self.0.dir.clone(), self.durable(), from_seq)
    }

    /// Whether the last append was refused as full (for `/healthz`: degraded).
    pub fn is_full(&self) -> bool {
        self.0.full.load(Ordering::Relaxed)
    }

    pub fn used_bytes(&self) -> u64 {
        self.0.used_bytes.load(Ordering::Relaxed)
    }
}

/// The writer. Owned by one thread; nothing here blocks on anything but the disk.
pub struct Spool {
    shared: Arc<Shared>,
    max_bytes: u64,
    segment_bytes: u64,
    /// Closed segments, oldest first: (first seq, bytes).
    sealed: VecDeque<(u64, u64)>,
    /// Shared so that its sync can run beside the event log's on another thread ([`Spool::begin_sync`]).
    active: Arc<File>,
    active_first: u64,
    /// Bytes written to the active file (synced or not).
    active_len: u64,
    /// The durable prefix of the active file, and the last durable sequence number: what a failed
    /// group is rolled back to.
    synced_len: u64,
    synced_seq: u64,
    /// Encoded records not yet written to the file.
    pending: Vec<u8>,
    next_seq: u64,
    /// All segment bytes plus pending ones: what `max_bytes` bounds.
    used: u64,
    /// Set when a rollback could not truncate; the next append retries it before anything else.
    needs_repair: bool,
    /// Deletes passed segments off the writer's thread.
    remover: Remover,
    /// Held open for the `flock`; released when the spool is dropped (after `remover` finished).
    _lock: File,
}

impl Spool {
    /// Opens (creating) the spool directory, cuts a torn tail off the newest segment and reports it.
    pub fn open(config: SpoolConfig) -> Result<(Spool, OpenReport), SpoolError> {
        if config.segment_bytes == 0 || config.segment_bytes.saturating_mul(2) > config.max_bytes {
            return Err(SpoolError::Config(format!(
                "segment_bytes ({}) must be positive and at most half of max_bytes ({})",
                config.segment_bytes, config.max_bytes
            )));
        }
        let dir = config.dir.clone();
        let created = !dir.exists();
        for d in [dir.clone(), checkpoint::dir(&dir), dead_letter::dir(&dir)] {
            fs::create_dir_all(&d).map_err(|e| SpoolError::io("create", &d, e))?;
        }
        segment::sync_dir(&dir).map_err(|e| SpoolError::io("sync", &dir, e))?;
        if created {
            // The spool directory's own entry, or a crash can lose the whole directory.
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(Path::new("."));
            segment::sync_dir(parent).map_err(|e| SpoolError::io("sync", parent, e))?;
        }
        let lock = segment::lock(&dir)?;
        let floor = checkpoint::highest(&dir)? + 1;
        let firsts = segment::list(&dir).map_err(|e| SpoolError::io("list", &dir, e))?;

        let mut sealed = VecDeque::new();
        for &first in firsts.iter().rev().skip(1).rev() {
            let p = segment::path(&dir, first);
            let len = fs::metadata(&p)
                .map_err(|e| SpoolError::io("stat", &p, e))?
                .len();
            sealed.push_back((first, len));
        }
        let mut torn_tail = None;
        let (mut active_first, mut next_seq, mut active_len) = (floor, floor, 0);
        if let Some(&first) = firsts.last() {
            let p = segment::path(&dir, first);
            let (len, last, cut) = segment::recover(&p, first)?;
            torn_tail = cut;
            (active_first, next_seq, active_len) = (first, last.map_or(first, |s| s + 1), len);
        }
        let mut create = firsts.is_empty();
        if next_seq < floor {
            // Records a sink already passed are gone (segments removed by hand): start above them.
            if active_len == 0 {
                let p = segment::path(&dir, active_first);
                fs::remove_file(&p).map_err(|e| SpoolError::io("remove", &p, e))?;
            } else {
                sealed.push_back((active_first, active_len));
            }
            (active_first, next_seq, active_len, create) = (floor, floor, 0, true);
        }
        let active_path = segment::path(&dir, active_first);
        let active = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(&active_path)
            .map(Arc::new)
            .map_err(|e| SpoolError::io("open", &active_path, e))?;
        if create {
            segment::sync_dir(&dir).map_err(|e| SpoolError::io("sync", &dir, e))?;
        }
        let used = sealed.iter().map(|s| s.1).sum::<u64>() + active_len;
        let (durable, _) = watch::channel(next_seq - 1);
        let shared = Arc::new(Shared {
            dir,
            durable,
            checkpoints: Mutex::new(BTreeMap::new()),
            used_bytes: AtomicU64::new(used),
            full: AtomicBool::new(false),
            flooded_until_ms: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
            // A bound, never a time: what was spooled before this start is not timed.
            acked: Mutex::new(VecDeque::from([(next_seq - 1, 0)])),
        });
        let report = OpenReport {
            segments: sealed.len() + 1,
            next_seq,
            used_bytes: used,
            torn_tail,
        };
        let remover = Remover::start().map_err(|e| {
            SpoolError::io("start the segment remover for", shared.dir.as_path(), e)
        })?;
        let spool = Spool {
            remover,
            shared,
            max_bytes: config.max_bytes,
            segment_bytes: config.segment_bytes,
            sealed,
            active,
            active_first,
            active_len,
            synced_len: active_len,
            synced_seq: next_seq - 1,
            pending: Vec::new(),
            next_seq,
            used,
            needs_repair: false,
            _lock: lock,
        };
        Ok((spool, report))
    }

    /// Over half of `max_bytes` in use: the event log's syncer then syncs at once, so its
    /// checkpoint never holds back segments a full spool needs ([`crate::event_log::wal`]).
    pub fn half_full(&self) -> bool {
        self.used.saturating_mul(2) > self.max_bytes
    }

    pub fn handle(&self) -> SpoolHandle {
        SpoolHandle(self.shared.clone())
    }

    /// Frames `event` under the next sequence number and buffers it (no sync). `Full` and
    /// `TooLarge` refuse this one event and leave the group intact; any other error has discarded
    /// every record appended since the last successful [`sync`](Self::sync): answer the whole
    /// group with an error.
    pub fn append(&mut self, event: &Event) -> Result<u64, SpoolError> {
        if self.needs_repair {
            self.rollback();
            if self.needs_repair {
                return Err(SpoolError::Broken);
            }
        }
        let start = self.pending.len();
        frame::encode(self.next_seq, event, &mut self.pending).map_err(SpoolError::TooLarge)?;
        let rec = (self.pending.len() - start) as u64;
        if self.used + rec > self.max_bytes {
            self.collect();
            if self.used + rec > self.max_bytes {
                self.pending.truncate(start);
                self.shared.full.store(true, Ordering::Relaxed);
                let (used, max) = (self.used, self.max_bytes);
                return Err(SpoolError::Full { used, max });
            }
        }
        self.shared.full.store(false, Ordering::Relaxed);
        let segment_used = self.active_len + start as u64;
        if segment_used > 0 && segment_used + rec > self.segment_bytes {
            let record = self.pending.split_off(start);
            if let Err(e) = self.roll() {
                self.rollback();
                return Err(e);
            }
            self.pending = record;
        }
        self.used += rec;
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.pending.len() >= WRITE_AT {
            if let Err(e) = self.write_pending() {
                self.rollback();
                return Err(e);
            }
        }
        Ok(seq)
    }

    /// Writes and `fdatasync`s what was appended, then publishes the new durable sequence number.
    /// On error every record since the last successful sync is discarded (answer the group 503).
    pub fn sync(&mut self) -> Result<(), SpoolError> {
        let file = self.begin_sync()?;
        let synced = file.sync_data();
        self.end_sync(synced)
    }

    /// The first half of [`sync`](Self::sync): writes what was appended and returns the file to
    /// `fdatasync`, so the writer can hand that to another thread while it syncs the event log.
    /// Finish with [`end_sync`](Self::end_sync).
    pub fn begin_sync(&mut self) -> Result<Arc<File>, SpoolError> {
        if let Err(e) = self.write_pending() {
            self.rollback();
            return Err(e);
        }
        Ok(self.active.clone())
    }

    /// The second half of [`sync`](Self::sync), with the result of `fdatasync` on the file
    /// [`begin_sync`](Self::begin_sync) returned: publishes the durable sequence, or discards.
    pub fn end_sync(&mut self, synced: io::Result<()>) -> Result<(), SpoolError> {
        if let Err(e) = synced {
            let e = SpoolError::io("sync", &segment::path(self.dir(), self.active_first), e);
            self.rollback();
            return Err(e);
        }
        if self.next_seq - 1 - self.synced_seq >= FLOODED_GROUP {
            let until = self.shared.now_ms() + FLOODED_HOLD_MS;
            self.shared.flooded_until_ms.store(until, Ordering::Relaxed);
        }
        self.synced_len = self.active_len;
        self.synced_seq = self.next_seq - 1;
        let seq = self.synced_seq;
        // The writer is the only sender, so the published point cannot move under this check.
        if *self.shared.durable.borrow() != seq {
            // Before the new point is published: a runner woken by it asks for this group's time
            // as soon as the broker confirms its events.
            let mut acked = self.shared.acked.lock().unwrap_or_else(|p| p.into_inner());
            if acked.len() == ACKED_GROUPS {
                acked.pop_front();
            }
            acked.push_back((seq, chrono::Utc::now().timestamp_micros()));
            drop(acked);
            self.shared.durable.send_replace(seq);
        }
        self.collect();
        Ok(())
    }

    /// Drops every record appended since the last sync (the event log refused the group, so its
    /// requests are answered 503 and must not be forwarded).
    pub fn discard(&mut self) {
        self.rollback();
    }

    /// The last durable sequence number.
    pub fn durable_seq(&self) -> u64 {
        self.synced_seq
    }

    fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn write_pending(&mut self) -> Result<(), SpoolError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.active
            .write_all_at(&self.pending, self.active_len)
            .map_err(|e| {
                SpoolError::io("write", &segment::path(self.dir(), self.active_first), e)
            })?;
        self.active_len += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Closes the active segment (written and synced) and starts the next at `next_seq`.
    fn roll(&mut self) -> Result<(), SpoolError> {
        self.write_pending()?;
        let old = segment::path(self.dir(), self.active_first);
        self.active
            .sync_data()
            .map_err(|e| SpoolError::io("sync", &old, e))?;
        let path = segment::path(self.dir(), self.next_seq);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| SpoolError::io("create", &path, e))?;
        if let Err(e) = segment::sync_dir(self.dir()) {
            let _ = fs::remove_file(&path);
            return Err(SpoolError::io("sync", self.dir(), e));
        }
        self.sealed.push_back((self.active_first, self.active_len));
        self.active = Arc::new(file);
        self.active_first = self.next_seq;
        (self.active_len, self.synced_len) = (0, 0);
        // Everything before the new segment is synced now, though not yet published.
        self.synced_seq = self.next_seq - 1;
        Ok(())
    }

    /// Undoes every record since the last sync: the file is cut back to its durable prefix and the
    /// sequence numbers are reused, so no reader ever sees a record whose request was refused.
    fn rollback(&mut self) {
        self.pending.clear();
        self.next_seq = self.synced_seq + 1;
        self.needs_repair = self.active.set_len(self.synced_len).is_err();
        if !self.needs_repair {
            self.active_len = self.synced_len;
        }
        self.used = self.sealed.iter().map(|s| s.1).sum::<u64>() + self.active_len;
        self.shared.used_bytes.store(self.used, Ordering::Relaxed);
    }

    /// Deletes the closed segments every registered sink has passed.
    fn collect(&mut self) {
        let done = self.shared.min_checkpoint().unwrap_or(self.synced_seq);
        while let Some(&(first, len)) = self.sealed.front() {
            let last = self.sealed.get(1).map_or(self.active_first, |s| s.0) - 1;
            if last > done {
                break;
            }
            self.remover.remove(segment::path(self.dir(), first));
            self.sealed.pop_front();
            self.used -= len;
        }
        self.shared.used_bytes.store(self.used, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
