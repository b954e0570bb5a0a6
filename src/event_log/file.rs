//! The event log's file: opened only if it is a regular file (never blocking on a FIFO), and
//! watched for being renamed or deleted under the writer (logrotate).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Refuses what the writer cannot use as the event log: anything but a regular file, or with
/// `fsync` a character device too. The message names the path and what it is.
fn check_kind(path: &Path, meta: &std::fs::Metadata, fsync: bool) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        if !fsync {
            return Ok(());
        }
        "a character device, which cannot be synced (fsync = true; set fsync = false to write to it)"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(io::Error::other(format!(
        "{} is not a regular file: it is {what}",
        path.display()
    )))
}

/// The open file and the identity of what it was opened as.
pub(super) struct LogFile {
    /// Shared with the log syncer ([`super::wal`]), which syncs it behind the writer.
    pub(super) file: Arc<File>,
    dev: u64,
    ino: u64,
    /// Our idea of the file's length: where the next batch starts, and where a failed one is cut.
    pub(super) len: u64,
    /// When the path was last looked up (see [`LogFile::is_stale`]).
    path_checked: Instant,
}

/// How often the writer looks the log's path up to notice a rename (logrotate without SIGHUP).
const RENAME_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl LogFile {
    /// Opens without blocking and refuses anything but a regular file: opening a FIFO blocks until
    /// a reader comes (forever), and a device or pipe cannot be synced, so `fsync = true` there would
    /// write each line and then answer 503, a duplicate on every retry. A character device stays
    /// allowed with `fsync = false` (`/dev/null` for benchmarks, a terminal): its writes either
    /// succeed or fail, and nothing is promised beyond the kernel.
    pub(super) fn open(path: &Path, fsync: bool) -> io::Result<LogFile> {
        use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
        use std::os::unix::fs::OpenOptionsExt;
        // Looked at before opening too: `open` of a FIFO without a reader fails with ENXIO, which
        // says nothing about why.
        let existed = match std::fs::metadata(path) {
            Ok(m) => {
                check_kind(path, &m, fsync)?;
                true
            }
            Err(_) => false,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(OFlags::NONBLOCK.bits() as i32)
            .open(path)?;
        let meta = file.metadata()?;
        // Again on the descriptor: the path may have been swapped between the two looks.
        check_kind(path, &meta, fsync)?;
        let flags = fcntl_getfl(&file)?;
        fcntl_setfl(&file, flags - OFlags::NONBLOCK)?;
        if !existed {
            // A new file's directory entry must be durable too, or a crash can lose the whole file.
            if let Some(dir) = path.parent() {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        Ok(LogFile {
            file: Arc::new(file),
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            path_checked: Instant::now(),
        })
    }

    /// Whether the next group must go to a freshly opened file. Deletion is checked before every
    /// group, on the open descriptor (no path lookup): acknowledging lines written into an unlinked
    /// file would lose them. A rename is looked for at most once a second, because that needs a
    /// path lookup per group (a cost every request would share) and lines written meanwhile are not
    /// lost, only in the renamed file.
    pub(super) fn is_stale(&mut self, path: &Path) -> bool {
        if !self.is_linked() {
            return true;
        }
        if self.path_checked.elapsed() < RENAME_CHECK_INTERVAL {
            return false;
        }
        self.path_checked = Instant::now();
        !self.is_at(path)
    }

    /// Whether the open file still has a name. Asks `statx` for the link count alone: a stat that
    /// asks for the times (as `fstat` and `File::metadata` do) makes the kernel's multigrain
    /// timestamps give the next write a fine-grained mtime, which dirties the inode on every write.
    pub(super) fn is_linked(&self) -> bool {
        use rustix::fs::{statx, AtFlags, StatxFlags};
        statx(&self.file, "", AtFlags::EMPTY_PATH, StatxFlags::NLINK)
            .is_ok_and(|st| st.stx_nlink > 0)
    }

    /// Whether `path` still names this file (not renamed away or deleted).
    fn is_at(&self, path: &Path) -> bool {
        std::fs::metadata(path)
            .map(|m| m.dev() == self.dev && m.ino() == self.ino)
            .unwrap_or(false)
    }
}
