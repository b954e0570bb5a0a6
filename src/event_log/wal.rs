//! The spool as the event log's write-ahead log. With sinks and `fsync = true`, every accepted
//! event is in the spool, so a group commit syncs only the spool: one `fdatasync` per group
//! instead of two. The log's lines are still written before the 2xx (a killed process loses
//! nothing: they are in the page cache), and a thread syncs the log about every
//! [`LOG_SYNC_EVERY`], then advances the log's checkpoint in the spool (the `event-log` entry in
//! `<spool>/checkpoints/`), which holds back the spool's segments like a sink's. After a power
//! loss, [`repair`] writes back the lines past the checkpoint that the log lost, rebuilt from the
//! spool.
//!
//! Measured (`scripts/bench.sh`, brokers away so only the spool costs): two syncs per group cost
//! intake 10-14 % of its requests/s on this 2-core VM, one sync about 4 %: each sync is a
//! virtio-blk submission (`iowrite16`, a VM exit) on the writer's thread and the spool's.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::record::{line_event_id, line_for, LogFormat};
use crate::forward::spool::Checkpoint;
use crate::forward::{SpoolError, SpoolHandle};
use crate::payload::PayloadKind;

/// The log's entry among the spool's checkpoints. Not a valid sink name (config refuses it), so
/// no sink can share it.
pub const EVENT_LOG_CHECKPOINT: &str = "event-log";

/// How long a written line may stay unsynced in the log: what a power loss can take from the log
/// (never from the spool, which [`repair`] restores it from), and how long the log's checkpoint
/// holds spool segments back. Sooner when the spool is half full. Measured (`away` runs in the
/// commit): 1 s kept intake at 0.90 of no-sink intake, 5 s at 0.99, 30 s at 0.99: fewer, larger
/// writebacks of the log cost less, and a burst's writeback moves to after it.
pub const LOG_SYNC_EVERY: Duration = Duration::from_secs(5);

/// Urgent syncs (a half-full spool) are at least this far apart.
const URGENT_GAP: Duration = Duration::from_millis(100);

/// What the writer has left for the log syncer. The writer only takes the lock to fill it in; it
/// wakes the thread only when there is something to start: the first lines since a sync, a
/// [`WRITEBACK_CHUNK`] more, or an urgent sync. Measured: waking it after every group (a channel
/// send per commit) cost intake 6 % of our CPU in the `log-sync` thread's context switches.
#[derive(Default)]
struct Pending {
    /// The open log file and the sequence number through which it holds every line.
    latest: Option<(Arc<File>, u64)>,
    /// The log's length as the writer wrote it.
    len: u64,
    /// Lines written since the last sync.
    dirty: bool,
    /// A [`WRITEBACK_CHUNK`] more was written since writeback was last started.
    writeback: bool,
    /// Sync soon (the spool is half full).
    urgent: bool,
    /// The writer is gone: sync what there is and stop.
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The thread that syncs the log behind the writer. The writer tells it, after each commit, which
/// file holds lines through which sequence number; it syncs at most every [`LOG_SYNC_EVERY`] and
/// then stores the checkpoint. Dropping it syncs what was written last and joins the thread.
pub(super) struct LogSyncer {
    shared: Arc<Shared>,
    /// The log length at which writeback was last asked for (the writer's own counter).
    asked: Cell<u64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LogSyncer {
    pub(super) fn start(checkpoint: Checkpoint) -> io::Result<LogSyncer> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-sync".into())
            .spawn(move || sync_loop(&theirs, &checkpoint))?;
        Ok(LogSyncer {
            shared,
            asked: Cell::new(0),
            thread: Some(thread),
        })
    }

    /// `file`, now `len` bytes long, holds every line through `seq` (written, not yet synced);
    /// `urgent`: sync now (the spool is filling, and the log's checkpoint must not hold its
    /// segments back).
    pub(super) fn written(&self, file: &Arc<File>, len: u64, seq: u64, urgent: bool) {
        let mut p = self.shared.lock();
        let same = p.latest.as_ref().is_some_and(|(f, _)| Arc::ptr_eq(f, file));
        if !same || len < self.asked.get() {
            self.asked.set(0); // another file: its writeback starts from its beginning
        }
        let writeback = len - self.asked.get().min(len) >= WRITEBACK_CHUNK;
        if writeback {
            self.asked.set(len);
        }
        let wake = !p.dirty || (writeback && !p.writeback) || (urgent && !p.urgent);
        match &mut p.latest {
            Some((_, s)) if same => *s = seq,
            latest => *latest = Some((file.clone(), seq)),
        }
        p.len = len;
        p.dirty = true;
        p.writeback |= writeback;
        p.urgent |= urgent;
        drop(p);
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for LogSyncer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sync_loop(shared: &Shared, checkpoint: &Checkpoint) {
    let mut last_sync: Option<Instant> = None;
    // How far the log's writeback has been started (see [`start_writeback`]), in which file.
    let mut started = 0u64;
    let mut seen: Option<Arc<File>> = None;
    loop {
        let mut p = shared.lock();
        // Asleep until there are lines to sync; then until the sync is due, starting writeback
        // whenever the writer says a chunk is ready.
        let sync = loop {
            if p.closed {
                break p.dirty;
            }
            if p.dirty {
                let gap = if p.urgent { URGENT_GAP } else { LOG_SYNC_EVERY };
                let due = last_sync.map_or(Instant::now(), |t| t + gap);
                let now = Instant::now();
                if now >= due {
                    break true;
                }
                if p.writeback {
                    break false;
                }
                p = shared
                    .wake
                    .wait_timeout(p, due - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            } else {
                p = shared.wake.wait(p).unwrap_or_else(|e| e.into_inner());
            }
        };
        let closed = p.closed;
        let len = p.len;
        let latest = p.latest.clone();
        p.writeback = false;
        if sync {
            p.dirty = false;
            p.urgent = false;
        }
        drop(p);
        if let Some((file, seq)) = latest {
            if !seen.as_ref().is_some_and(|f| Arc::ptr_eq(f, &file)) {
                started = 0; // reopened: a new file
                seen = Some(file.clone());
            }
            if sync {
                last_sync = Some(Instant::now());
                let stored = file
                    .sync_data()
                    .map_err(|e| e.to_string())
                    .and_then(|()| checkpoint.store(seq).map_err(|e| e.to_string()));
                if let Err(e) = stored {
                    // The lines stay in the spool; the next start writes back any the log lost.
                    tracing::error!(error = %e, "event log sync behind the spool failed; will try again");
                }
            } else {
                started = start_writeback(&file, started, len);
            }
        }
        if closed {
            break;
        }
    }
}

/// Starts the kernel writing back what was appended to `file` (`len` bytes long) since `from`,
/// once that is at least [`WRITEBACK_CHUNK`], without waiting for it
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: no journal commit, no cache flush). The periodic
/// `fdatasync` then finds little left to write, so it no longer stalls the spool's syncs behind one
/// large writeback (measured: without it, intake's p99 rose from 3-4 ms to 45-88 ms). Returns how
/// far writeback now runs. Linux only; elsewhere (and on error) nothing is started and `fdatasync`
/// does it all.
fn start_writeback(file: &File, from: u64, len: u64) -> u64 {
    let from = from.min(len);
    if len - from < WRITEBACK_CHUNK {
        return from;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(n)) = (i64::try_from(from), i64::try_from(len - from)) else {
            return from;
        };
        // SAFETY: a valid descriptor for the call's duration; no memory is passed.
        let r = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, n, libc::SYNC_FILE_RANGE_WRITE)
        };
        if r == 0 {
            return len;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
    from
}

/// Writeback of the log is started in pieces of this size (see [`start_writeback`]).
const WRITEBACK_CHUNK: u64 = 4 << 20;

/// What [`repair`] did, for the start-up report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repaired {
    /// Spooled events past the log's checkpoint (whose lines may have been lost).
    pub checked: u64,
    /// Lines written back.
    pub restored: u64,
    /// Bytes of a torn last line cut off before writing back.
    pub torn_bytes: u64,
}

/// Writes back into the log at `path` the lines of the spooled events past the log's checkpoint
/// that the log does not have (lost with the page cache in a power loss), in spool order, syncs the
/// log and advances the checkpoint. A torn last line (no newline) is cut first: its event is among
/// those written back whole. Lines already there (a killed process, no power loss) are found by
/// their event id in the log's tail and not written twice. `kind_of`: the payload check of the
/// event's hook today. Blocking file I/O: call it before the writer starts.
pub fn repair(
    path: &Path,
    format: LogFormat,
    spool: &SpoolHandle,
    checkpoint: &Checkpoint,
    kind_of: &dyn Fn(&str) -> PayloadKind,
) -> Result<Repaired, SpoolError> {
    let mut report = Repaired::default();
    let from = checkpoint.get() + 1;
    let mut reader = spool.reader(from)?;
    let mut wanted = HashSet::new();
    let mut bytes = 0u64;
    let mut last = checkpoint.get();
    while let Some(rec) = reader.next_record()? {
        bytes += line_for(&rec.event, kind_of(&rec.event.hook), format).len() as u64;
        wanted.insert(rec.event.id);
        last = rec.seq;
    }
    report.checked = wanted.len() as u64;
    if wanted.is_empty() {
        return Ok(report);
    }
    let io_err = |op: &'static str| move |e: io::Error| SpoolError::io(op, path, e);
    let mut log = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_err("open the event log to repair"))?;
    report.torn_bytes =
        end_on_newline(&mut log, bytes).map_err(io_err("cut a torn event log line"))?;
    // The lines past the checkpoint are the log's last ones, so only that much of its end (and some
    // slack for lines written under another config) is read.
    let len = log.metadata().map_err(io_err("stat the event log"))?.len();
    let start = len.saturating_sub(bytes.saturating_mul(2) + (1 << 20));
    log.seek(SeekFrom::Start(start))
        .map_err(io_err("read the event log"))?;
    let mut tail = BufReader::new((&log).take(len - start));
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = tail
            .read_until(b'\n', &mut line)
            .map_err(io_err("read the event log"))?;
        if n == 0 {
            break;
        }
        if let Some(id) = line_event_id(&line) {
            wanted.remove(&id);
        }
    }
    if !wanted.is_empty() {
        let mut reader = spool.reader(from)?;
        let mut out = Vec::new();
        while let Some(rec) = reader.next_record()? {
            if rec.seq > last {
                break;
            }
            if wanted.remove(&rec.event.id) {
                out.extend_from_slice(&line_for(&rec.event, kind_of(&rec.event.hook), format));
                report.restored += 1;
                if out.len() >= 1 << 20 {
                    log.write_all(&out).map_err(io_err("write the event log"))?;
                    out.clear();
                }
            }
        }
        log.write_all(&out).map_err(io_err("write the event log"))?;
    }
    log.sync_data().map_err(io_err("sync the event log"))?;
    checkpoint.store(last)?;
    Ok(report)
}

/// Makes the log end on a newline: a torn last line (a power loss) is cut when it is no longer
/// than the lines being checked (`max`; its event is among them, written back whole), else a newline
/// ends it so the next line does not glue onto it. Returns the bytes cut.
fn end_on_newline(log: &mut File, max: u64) -> io::Result<u64> {
    let len = log.metadata()?.len();
    let mut pos = len;
    let mut buf = [0u8; 8192];
    while pos > 0 && len - pos <= max {
        let n = (pos as usize).min(buf.len());
        pos -= n as u64;
        log.seek(SeekFrom::Start(pos))?;
        log.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            let keep = pos + i as u64 + 1;
            if len - keep > max {
                break;
            }
            if keep < len {
                log.set_len(keep)?;
            }
            return Ok(len - keep);
        }
    }
    if pos == 0 && len <= max {
        log.set_len(0)?;
        return Ok(len);
    }
    if len > 0 {
        log.write_all(b"\n")?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::{Spool, SpoolConfig};

    fn started(dir: &Path) -> (Spool, Checkpoint, LogSyncer, Arc<File>) {
        let cfg = SpoolConfig {
            dir: dir.join("spool"),
            max_bytes: 1 << 20,
            segment_bytes: 4096,
        };
        let (spool, _) = Spool::open(cfg).expect("open spool");
        let cp = spool
            .handle()
            .register(EVENT_LOG_CHECKPOINT)
            .expect("register");
        let syncer = LogSyncer::start(cp.clone()).expect("start");
        let log = Arc::new(File::create(dir.join("log")).expect("create log"));
        (spool, cp, syncer, log)
    }

    /// Polls the checkpoint (the syncer gives no other signal) until it is `want` or `within` ends.
    fn reaches(cp: &Checkpoint, want: u64, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if cp.get() == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        cp.get() == want
    }

    #[test]
    fn the_first_lines_are_synced_at_once_the_next_only_when_due_or_urgent() {
        let dir = tempfile::tempdir().unwrap();
        let (_spool, cp, syncer, log) = started(dir.path());
        syncer.written(&log, 100, 1, false);
        assert!(
            reaches(&cp, 1, Duration::from_secs(3)),
            "first sync: {}",
            cp.get()
        );
        // Not one sync per group: the next waits for LOG_SYNC_EVERY.
        syncer.written(&log, 200, 2, false);
        syncer.written(&log, 300, 3, false);
        assert!(
            !reaches(&cp, 3, Duration::from_millis(300)),
            "synced before due"
        );
        assert_eq!(cp.get(), 1);
        // A half-full spool cannot wait for it.
        syncer.written(&log, 400, 4, true);
        assert!(reaches(&cp, 4, LOG_SYNC_EVERY / 2), "urgent: {}", cp.get());
    }

    #[test]
    fn what_was_written_last_is_synced_when_the_writer_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (_spool, cp, syncer, log) = started(dir.path());
        for seq in 1..=9 {
            syncer.written(&log, seq * 100, seq, false);
        }
        drop(syncer);
        assert_eq!(cp.get(), 9);
    }

    #[test]
    fn a_reopened_file_is_the_one_synced() {
        let dir = tempfile::tempdir().unwrap();
        let (_spool, cp, syncer, log) = started(dir.path());
        syncer.written(&log, 100, 1, false);
        let newer = Arc::new(File::create(dir.path().join("log.new")).expect("create"));
        syncer.written(&newer, 10, 2, false);
        drop(syncer);
        assert_eq!(cp.get(), 2);
    }
}
