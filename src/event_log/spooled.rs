//! The spool's part of a group commit: each event is appended to the spool as its line joins the
//! group, and the group's two syncs (event log and spool) run side by side, so forwarding costs
//! about one sync's latency per group rather than two.

use std::fs::File;
use std::io;
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

/// `fdatasync`s the log (when `fsync`) and syncs the spool, on two threads when both have to
/// happen; both must succeed before the group is acknowledged.
pub(super) fn sync_both(
    log: &File,
    fsync: bool,
    spool: Option<&mut Spool>,
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
    let sync_spool = |spool: &mut Spool| {
        spool.sync().map_err(|e| {
            tracing::error!(error = %e, "spool sync failed; answering 503");
            SinkError::Spool(Arc::from(e.to_string()))
        })
    };
    match spool {
        None => (sync_log(), Ok(())),
        Some(spool) if !fsync => (Ok(()), sync_spool(spool)),
        Some(spool) => std::thread::scope(|s| {
            let other = s.spawn(|| sync_spool(spool));
            let logged = sync_log();
            let spooled = other
                .join()
                .unwrap_or_else(|_| Err(SinkError::Spool(Arc::from("spool sync panicked"))));
            (logged, spooled)
        }),
    }
}
