//! Segment files on disk: their names, listing them, reading one record at an offset, and the
//! recovery of the newest one at open, and the directory lock.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::frame::{self, FrameError, Header, HEADER_LEN};
use super::{SpoolError, TornTail};
use crate::forward::Event;

/// Segment names are their first sequence number, zero-padded so that a plain `ls` sorts them.
pub fn name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

pub fn path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(name(first_seq))
}

/// The first sequence number a segment file name stands for; `None` for any other file.
fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The first sequence numbers of every segment in `dir`, oldest first.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut firsts = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Some(first) = entry?.file_name().to_str().and_then(parse_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Makes a directory's entries (a created, renamed or truncated file's name) durable: without it a
/// crash can lose a file whose contents were synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What reading one record at an offset found. Returned and matched at once, so the size
/// difference between variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum At {
    Record(Header, Event),
    /// Only the header was read (stepping over records).
    Header(Header),
    /// Nothing at all at the offset: the segment ends there.
    End,
    Damaged(FrameError),
}

/// Reads the one record at `offset` with positioned reads, to check a candidate [`resync`] found.
/// Reading in order is the reader's, in chunks (`reader.rs`).
fn read_at(file: &File, offset: u64) -> io::Result<At> {
    let mut head = [0u8; HEADER_LEN];
    let n = read_full_at(file, &mut head, offset)?;
    if n == 0 {
        return Ok(At::End);
    }
    let header = match frame::decode_header(&head[..n]) {
        Ok(h) => h,
        Err(e) => return Ok(At::Damaged(e)),
    };
    // The length is capped by decode_header, so this allocation is bounded.
    let mut payload = vec![0u8; header.len as usize];
    let got = read_full_at(file, &mut payload, offset + HEADER_LEN as u64)?;
    if got < payload.len() {
        return Ok(At::Damaged(FrameError::LengthPastEnd {
            len: header.len,
            have: got,
        }));
    }
    Ok(match header.decode_payload(&payload) {
        Ok(event) => At::Record(header, event),
        Err(e) => At::Damaged(e),
    })
}

/// Like `read_exact_at`, but says how much there was instead of failing at the end of the file.
pub fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The outcome of scanning the newest segment at open.
pub struct Scan {
    /// Bytes of intact records from the start.
    pub valid_len: u64,
    /// The last intact record's sequence number, if any.
    pub last_seq: Option<u64>,
    /// Where the first bad record starts and why it is bad, if the segment does not end cleanly.
    pub damage: Option<(u64, Damage)>,
}

/// Why a record in a segment cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("sequence gap: expected {expected}, found {found}")]
    SequenceGap { expected: u64, found: u64 },
    #[error("segment for sequence {0} is missing")]
    MissingSegment(u64),
}

/// Reads the segment from its start, sequentially (buffered: nothing else writes it during
/// open), checking every record and that sequence numbers run on from the name.
pub fn scan(path: &Path, first_seq: u64) -> io::Result<Scan> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut offset = 0u64;
    let mut expected = first_seq;
    let mut head = [0u8; HEADER_LEN];
    let mut payload = Vec::new();
    let damage = loop {
        let n = read_full(&mut r, &mut head)?;
        if n == 0 {
            break None;
        }
        let header = match frame::decode_header(&head[..n]) {
            Ok(h) => h,
            Err(e) => break Some(Damage::Frame(e)),
        };
        payload.resize(header.len as usize, 0);
        let got = read_full(&mut r, &mut payload)?;
        if got < payload.len() {
            let len = header.len;
            break Some(Damage::Frame(FrameError::LengthPastEnd { len, have: got }));
        }
        if let Err(e) = header.decode_payload(&payload) {
            break Some(Damage::Frame(e));
        }
        if header.seq != expected {
            break Some(Damage::SequenceGap {
                expected,
                found: header.seq,
            });
        }
        offset += header.record_len();
        expected += 1;
    };
    Ok(Scan {
        valid_len: offset,
        last_seq: (expected > first_seq).then(|| expected - 1),
        damage: damage.map(|d| (offset, d)),
    })
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Looks for the next intact record in `file` after `from`, in bounded chunks: the magic first,
/// then a full check. Returns its offset and header. Used to count what a cut tail held and to
/// step over damage in an older segment.
pub fn resync(file: &File, from: u64) -> io::Result<Option<(u64, Header)>> {
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK];
    let mut base = from;
    loop {
        let n = read_full_at(file, &mut buf, base)?;
        if n < frame::MAGIC.len() {
            return Ok(None);
        }
        for i in memchr::memmem::find_iter(&buf[..n], &frame::MAGIC) {
            let at = base + i as u64;
            if let At::Record(h, _) = read_at(file, at)? {
                return Ok(Some((at, h)));
            }
        }
        if n < CHUNK {
            return Ok(None);
        }
        // Overlap by the magic's length less one, so a magic split across chunks is still found.
        base += (n - (frame::MAGIC.len() - 1)) as u64;
    }
}

/// Takes the spool's `flock`, so two processes (say, two replicas given one volume) never share
/// one spool.
pub(super) fn lock(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SpoolError::io("open", &path, e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(SpoolError::Locked(dir.to_path_buf())),
        Err(e) => Err(SpoolError::io("lock", &path, e.into())),
    }
}

/// Scans the newest segment and cuts a torn tail: returns its intact length, its last sequence
/// number and what was cut.
pub(super) fn recover(
    path: &Path,
    first: u64,
) -> Result<(u64, Option<u64>, Option<TornTail>), SpoolError> {
    let scan = scan(path, first).map_err(|e| SpoolError::io("read", path, e))?;
    let Some((offset, damage)) = scan.damage else {
        return Ok((scan.valid_len, scan.last_seq, None));
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| SpoolError::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| SpoolError::io("stat", path, e))?
        .len();
    let mut records_cut = 1;
    let mut at = offset + 1;
    while let Some((found, header)) =
        resync(&file, at).map_err(|e| SpoolError::io("read", path, e))?
    {
        records_cut += 1;
        at = found + header.record_len();
    }
    file.set_len(offset)
        .map_err(|e| SpoolError::io("truncate", path, e))?;
    file.sync_all()
        .map_err(|e| SpoolError::io("sync", path, e))?;
    let tail = TornTail {
        segment: path.to_path_buf(),
        offset,
        bytes_cut: len - offset,
        records_cut,
        damage,
    };
    Ok((offset, scan.last_seq, Some(tail)))
}
