//! Deletes the spool's passed segments on a thread of their own. Unlinking a 64 MiB segment on
//! ext4 frees its extents and drops its cached pages: 20-42 ms (`perf trace --duration 20` on the
//! writer during a burst that followed a drain), and the writer used to do it inside a group
//! commit, so every request of that group, and of the groups queued behind it, waited. A second
//! burst's p99 was 118-175 ms against 3-4 ms for the first.

use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

enum Job {
    Remove(PathBuf),
    /// Answered once every removal sent before it is done (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Flush(mpsc::Sender<()>),
}

/// Dropping it finishes the removals already handed over and joins the thread.
pub(super) struct Remover {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Remover {
    pub(super) fn start() -> io::Result<Remover> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("spool-remove".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Remove(p) => match fs::remove_file(&p) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            // It stays on disk; the next start lists it and deletes it again.
                            Err(e) => tracing::warn!(segment = %p.display(), error = %e,
                                "spool: cannot delete segment"),
                        },
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(Remover {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Deletes `segment` soon, without waiting; on the caller's thread if the remover is gone.
    pub(super) fn remove(&self, segment: PathBuf) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::SendError(Job::Remove(p))) = tx.send(Job::Remove(segment)) {
            let _ = fs::remove_file(p);
        }
    }

    /// Waits until every removal handed over so far is done.
    #[cfg(test)]
    pub(super) fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if let Some(tx) = &self.tx {
            if tx.send(Job::Flush(done)).is_ok() {
                let _ = wait.recv();
            }
        }
    }
}

impl Drop for Remover {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
