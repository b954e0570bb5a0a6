//! Per-sink checkpoints: `<spool dir>/checkpoints/<sink>` holds the last sequence number the sink
//! is done with (delivered, dead-lettered or filtered out), so a restart resumes after it.
//!
//! Written atomically (temp file, fsync, rename, fsync dir): a crash leaves the old value or the
//! new, never a torn one. The in-memory value, which the spool reads to decide what it may delete,
//! moves only after the file did, so a segment is never deleted ahead of a durable checkpoint.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use super::{Shared, SpoolError};

/// Longest sink name accepted: it is a file name and a metric label.
pub const MAX_SINK_NAME: usize = 64;

/// Checks that a configured sink name can be a file name on every platform we run on and a metric
/// label: 1 to [`MAX_SINK_NAME`] of `[A-Za-z0-9_-]`. The config calls this at load.
pub fn validate_sink_name(name: &str) -> Result<(), SpoolError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SINK_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SpoolError::InvalidSinkName(name.chars().take(80).collect()))
    }
}

pub(super) fn dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join("checkpoints")
}

/// Reads one checkpoint file; `None` when there is none yet.
pub(super) fn load(path: &Path) -> Result<Option<u64>, SpoolError> {
    match fs::read_to_string(path) {
        Ok(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| SpoolError::BadCheckpoint {
                path: path.to_path_buf(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SpoolError::io("read checkpoint", path, e)),
    }
}

/// The highest checkpoint on disk, registered or not: the sequence must never restart below it,
/// or a sink would skip the new events as already done.
pub(super) fn highest(spool_dir: &Path) -> Result<u64, SpoolError> {
    let dir = dir(spool_dir);
    let mut max = 0;
    let entries = fs::read_dir(&dir).map_err(|e| SpoolError::io("list checkpoints", &dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SpoolError::io("list checkpoints", &dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if validate_sink_name(&name).is_ok() {
            max = max.max(load(&entry.path())?.unwrap_or(0));
        }
    }
    Ok(max)
}

/// Writes `seq` to `path` atomically and durably.
fn write(path: &Path, seq: u64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    writeln!(f, "{seq}")?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    super::segment::sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// A sink's entry in the spool's registry: the durable value the spool reads to decide what it
/// may delete, and the handle in use, if any (so two runners never drive one sink).
pub(super) struct Registered {
    pub(super) value: Arc<AtomicU64>,
    live: Weak<Inner>,
}

/// One registered sink's checkpoint. Cheap to clone. Dropping it does not end the registration:
/// a runner that stops at shutdown must go on holding back the segments it still needs while the
/// writer commits its last groups. A reload that removes a sink calls
/// [`SpoolHandle::unregister`](super::SpoolHandle::unregister).
#[derive(Clone)]
pub struct Checkpoint(Arc<Inner>);

struct Inner {
    name: String,
    path: PathBuf,
    /// The durable value; shared with the spool's registry.
    value: Arc<AtomicU64>,
}

impl Checkpoint {
    /// Registers `name` with the spool, or takes up its registration again once the previous
    /// handle is gone (a runner restarted by a reload). Loads its checkpoint or, for a sink seen
    /// for the first time, starts it at `start` (the events accepted from now on; older ones are
    /// for `replay`).
    pub(super) fn register(shared: &Shared, name: &str, start: u64) -> Result<Self, SpoolError> {
        validate_sink_name(name)?;
        let path = dir(&shared.dir).join(name);
        let mut registry = shared.lock_checkpoints();
        let value = match registry.get(name) {
            Some(r) if r.live.strong_count() > 0 => {
                return Err(SpoolError::AlreadyRegistered(name.to_owned()))
            }
            Some(r) => r.value.clone(),
            None => {
                let seq = match load(&path)? {
                    Some(seq) => seq,
                    None => {
                        write(&path, start)
                            .map_err(|e| SpoolError::io("write checkpoint", &path, e))?;
                        start
                    }
                };
                Arc::new(AtomicU64::new(seq))
            }
        };
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            path,
            value: value.clone(),
        });
        let live = Arc::downgrade(&inner);
        registry.insert(name.to_owned(), Registered { value, live });
        Ok(Checkpoint(inner))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The last durably checkpointed sequence number.
    pub fn get(&self) -> u64 {
        self.0.value.load(Ordering::Acquire)
    }

    /// Durably advances the checkpoint to `seq` (blocking: two fsyncs; call it from a blocking
    /// context). A value at or below the current one is a no-op: checkpoints never go back.
    pub fn store(&self, seq: u64) -> Result<(), SpoolError> {
        if seq <= self.get() {
            return Ok(());
        }
        write(&self.0.path, seq)
            .map_err(|e| SpoolError::io("write checkpoint", &self.0.path, e))?;
        self.0.value.fetch_max(seq, Ordering::AcqRel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_names_are_file_name_safe() {
        for ok in ["bus", "cache-2", "A_b-9", &"x".repeat(MAX_SINK_NAME)] {
            assert!(validate_sink_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "ümlaut",
            "x.tmp",
            &"x".repeat(MAX_SINK_NAME + 1),
        ] {
            assert!(validate_sink_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_written_checkpoint_reads_back_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bus");
        write(&path, 41).expect("write");
        write(&path, 42).expect("write");
        assert_eq!(load(&path).expect("load"), Some(42));
        assert!(!path.with_extension("tmp").exists());
        assert_eq!(load(&dir.path().join("none")).expect("load"), None);
        fs::write(&path, "garbage").expect("write");
        assert!(matches!(load(&path), Err(SpoolError::BadCheckpoint { .. })));
    }
}
