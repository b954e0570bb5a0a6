//! The spool's part of a group commit: each event is appended to the spool as its line joins the
//! group, and the group's two syncs (event log and spool) run side by side, so forwarding costs
//! about one sync's latency per group rather than two.

use std::fs::File;
use std::io;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;

use super::{Done, Group, SinkError, Writer};
use crate::forward::{Event, Spool, SpoolError};
use crate::metrics::Metrics;

impl Writer {
    /// Adds one request to the group: its event to the spool first, then its line. An event the
    /// spool refuses (full, too large) is answered at once and its line is not written; any other
    /// spool error has discarded the whole group's records, so the whole group is answered with it.
    pub(super) fn stage(
        &mut self,
        line: Vec<u8>,
        event: Option<Box<Event>>,
        done: Done,
        g: &mut Group,
    ) {
        let seq = match (self.spool.as_mut(), event) {
            (Some(spool), Some(event)) => match spool.append(&event) {
                Ok(seq) => Some(seq),
                Err(SpoolError::Full { used, max }) => {
                    tracing::warn!(
                        used,
                        max,
                        "spool full; answering 503 until the sinks catch up"
                    );
                    let _ = done.send(Err(SinkError::SpoolFull));
                    return;
                }
                Err(e @ SpoolError::TooLarge(_)) => {
                    let _ = done.send(Err(SinkError::Spool(e.to_string().into())));
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = g.waiters.len() + 1,
                        "spool append failed; answering 503");
                    let e = SinkError::Spool(e.to_string().into());
                    for (w, _) in g.waiters.drain(..) {
                        let _ = w.send(Err(e.clone()));
                    }
                    g.buf.clear();
                    let _ = done.send(Err(e));
                    return;
                }
            },
            _ => None,
        };
        g.buf.extend_from_slice(&line);
        g.waiters.push((done, seq));
    }
}

/// A thread that lives as long as the writer and runs the spool's `fdatasync` while the writer
/// runs the log's. It replaces a thread spawned per group (`std::thread::scope`): a spawn and exit
/// per commit, thousands a second under load, cost more than handing a file over.
pub(super) struct Syncer {
    files: std_mpsc::Sender<Arc<File>>,
    results: std_mpsc::Receiver<io::Result<()>>,
}

impl Syncer {
    pub(super) fn start() -> io::Result<Syncer> {
        let (files, inbox) = std_mpsc::channel::<Arc<File>>();
        let (outbox, results) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("spool-sync".into())
            .spawn(move || {
                // Ends when the writer drops its sender.
                while let Ok(file) = inbox.recv() {
                    if outbox.send(file.sync_data()).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Syncer { files, results })
    }

    /// Hands `file` to the thread; gives it back if the thread is gone (then sync it here).
    fn send(&self, file: Arc<File>) -> Result<(), Arc<File>> {
        self.files.send(file).map_err(|e| e.0)
    }

    fn wait(&self) -> io::Result<()> {
        self.results
            .recv()
            .map_err(|_| io::Error::other("the spool's sync thread is gone"))?
    }
}

/// `fdatasync`s the log (when `fsync`) and syncs the spool, the spool's on `syncer`'s thread when
/// both have to happen; both must succeed before the group is acknowledged.
pub(super) fn sync_both(
    log: &File,
    fsync: bool,
    spool: Option<&mut Spool>,
    syncer: Option<&Syncer>,
    metrics: &Metrics,
) -> (io::Result<()>, Result<(), SinkError>) {
    let sync_log = || {
        if !fsync {
            return Ok(());
        }
        let t = Instant::now();
        let r = log.sync_data();
        metrics.observe_log_sync(t.elapsed());
        r
    };
    let failed = |e: SpoolError| {
        tracing::error!(error = %e, "spool sync failed; answering 503");
        SinkError::Spool(Arc::from(e.to_string()))
    };
    match (spool, syncer) {
        (None, _) => (sync_log(), Ok(())),
        (Some(spool), Some(syncer)) if fsync => {
            let file = match spool.begin_sync() {
                Ok(f) => f,
                Err(e) => return (sync_log(), Err(failed(e))),
            };
            let spooled = match syncer.send(file) {
                Ok(()) => {
                    let logged = sync_log();
                    (logged, syncer.wait())
                }
                Err(file) => (sync_log(), file.sync_data()),
            };
            let (logged, synced) = spooled;
            (logged, spool.end_sync(synced).map_err(failed))
        }
        (Some(spool), _) => (sync_log(), spool.sync().map_err(failed)),
    }
}
