//! Reading the spool from a sequence number forward, one record at a time (bounded memory), across
//! segments, up to the durable sequence: a runner never forwards an event whose request may still
//! be refused.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use super::frame::{self, FrameError, Header, HEADER_LEN};
use super::segment::{self, At, Damage};
use super::SpoolError;
use crate::forward::Event;

/// One spooled event and its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub event: Event,
}

/// Sequence numbers stepped over because their records were damaged or gone: `from..to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub from: u64,
    pub to: u64,
}

/// Bytes read from a segment per positioned read. Reading each record alone cost the drain two
/// syscalls and a fresh allocation per event; a chunk serves about forty NetBox-sized records,
/// and their bodies are slices of it, not copies. Under the allocator's 128 KiB large-object
/// size: 256 KiB chunks went to the OS and back (mimalloc purge) in 5 % of the drain's profile.
const CHUNK: usize = 64 << 10;
/// Chunk buffers a reader keeps for reuse: a drain holds two batches out plus the next one
/// collecting (~600 NetBox-sized events, ~15 chunks). Each freed chunk went back to the OS at once
/// (see `cli.rs`) and the next was faulted in fresh: 6.5 % of our CPU in a drain's profile, page
/// clearing under `next_record`. At most 2 MiB per reader; all but one given back when it
/// catches up.
const SPARE_CHUNKS: usize = 32;

/// A cursor over the spool. Holds one segment file open; a segment deleted under it stays readable
/// (only a reader the checkpoints do not know of can be behind the oldest segment).
pub struct SpoolReader {
    dir: PathBuf,
    durable: watch::Receiver<u64>,
    segment: Option<Open>,
    /// Where the next record starts in the open segment.
    offset: u64,
    next_seq: u64,
    /// Records below this are read past, not returned (the start was inside a segment, possibly
    /// ahead of what is durable yet).
    skip_until: u64,
    spare: Spare,
}

impl SpoolReader {
    pub(super) fn open(
        dir: PathBuf,
        durable: watch::Receiver<u64>,
        from_seq: u64,
    ) -> Result<SpoolReader, SpoolError> {
        let from_seq = from_seq.max(1);
        let firsts = segment::list(&dir).map_err(|e| SpoolError::io("list", &dir, e))?;
        // The segment holding `from_seq`; if it is older than every segment, the oldest (and
        // `next_seq()` then tells the caller what is gone).
        let start = firsts
            .iter()
            .rev()
            .find(|&&f| f <= from_seq)
            .or(firsts.first())
            .copied()
            .unwrap_or(from_seq);
        Ok(SpoolReader {
            dir,
            durable,
            segment: None,
            offset: 0,
            next_seq: start,
            skip_until: from_seq,
            spare: Spare::default(),
        })
    }

    /// The sequence number of the next record this reader returns (or steps over).
    pub fn next_seq(&self) -> u64 {
        self.next_seq.max(self.skip_until)
    }

    /// The next durable record, or `None` when there is none yet (wait on the durable watch).
    /// Damage is an error ([`SpoolError::Corrupt`]); [`skip_damaged`](Self::skip_damaged) steps
    /// over it.
    pub fn next_record(&mut self) -> Result<Option<Record>, SpoolError> {
        loop {
            if self.next_seq > *self.durable.borrow() {
                return Ok(None);
            }
            let skipping = self.next_seq < self.skip_until;
            if self.segment.is_none() {
                self.open_segment()?;
            }
            let Some(open) = &mut self.segment else {
                continue;
            };
            let found = if skipping {
                header_only(&open.file, self.offset)
            } else {
                open.read_at(self.offset, &self.durable, &mut self.spare)
            }
            .map_err(|e| SpoolError::io("read", &open.path, e))?;
            let (h, event) = match found {
                At::End if self.offset == 0 => {
                    return Err(self.corrupt(Damage::MissingSegment(self.next_seq)))
                }
                At::End => {
                    // A durable record past the end: it is in the segment named after it.
                    self.segment = None;
                    self.offset = 0;
                    continue;
                }
                At::Damaged(e) => return Err(self.corrupt(Damage::Frame(e))),
                At::Header(h) => (h, None),
                At::Record(h, event) => (h, Some(event)),
            };
            if h.seq != self.next_seq {
                let (expected, found) = (self.next_seq, h.seq);
                return Err(self.corrupt(Damage::SequenceGap { expected, found }));
            }
            self.offset += h.record_len();
            self.next_seq += 1;
            if let Some(event) = event {
                return Ok(Some(Record { seq: h.seq, event }));
            }
        }
    }

    /// Steps over damage reported by [`next_record`](Self::next_record): to the next intact record in the same
    /// segment, else to the next segment. `None` when nothing intact follows yet; the caller must
    /// treat the sink as stuck and say so.
    pub fn skip_damaged(&mut self) -> Result<Option<Skipped>, SpoolError> {
        let from = self.next_seq;
        if let Some(Open { path, file, .. }) = &self.segment {
            let mut at = self.offset + 1;
            while let Some((found, h)) =
                segment::resync(file, at).map_err(|e| SpoolError::io("read", path, e))?
            {
                if h.seq >= from {
                    self.offset = found;
                    self.next_seq = h.seq;
                    return Ok(Some(Skipped { from, to: h.seq }));
                }
                at = found + h.record_len();
            }
        }
        let firsts = segment::list(&self.dir).map_err(|e| SpoolError::io("list", &self.dir, e))?;
        match firsts.into_iter().find(|&f| f > from) {
            Some(first) => {
                self.segment = None;
                self.offset = 0;
                self.next_seq = first;
                Ok(Some(Skipped { from, to: first }))
            }
            None => Ok(None),
        }
    }

    fn open_segment(&mut self) -> Result<(), SpoolError> {
        let path = segment::path(&self.dir, self.next_seq);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.corrupt(Damage::MissingSegment(self.next_seq)))
            }
            Err(e) => return Err(SpoolError::io("open", &path, e)),
        };
        self.segment = Some(Open {
            path,
            file,
            chunk: None,
        });
        Ok(())
    }

    fn corrupt(&self, damage: Damage) -> SpoolError {
        SpoolError::Corrupt {
            segment: self.segment.as_ref().map_or_else(
                || segment::path(&self.dir, self.next_seq),
                |open| open.path.clone(),
            ),
            offset: self.offset,
            damage,
        }
    }
}

/// The open segment: its path (for reports), the file, and the last chunk read from it.
struct Open {
    path: PathBuf,
    file: File,
    chunk: Option<Chunk>,
}

/// Buffers chunks were read into; each is used again once every event sliced from its last
/// chunk is gone.
#[derive(Default)]
struct Spare(Vec<BytesMut>);

impl Spare {
    /// An empty buffer with room for `want` bytes: a spare one whose chunk is free, else a new one.
    fn take(&mut self, want: usize) -> BytesMut {
        let free = self.0.iter_mut().position(|b| b.try_reclaim(want));
        match free {
            Some(i) => self.0.swap_remove(i),
            None => BytesMut::with_capacity(want),
        }
    }

    /// Keeps `buf` (chunk-sized ones only: a record larger than a chunk is rare) for a later read.
    fn keep(&mut self, mut buf: BytesMut, want: usize) {
        if want == CHUNK && self.0.len() < SPARE_CHUNKS {
            buf.clear();
            self.0.push(buf);
        }
    }

    /// The reader caught up with the writer (`buf` was copied out, so it is free at once): keeps
    /// only `buf`, so a reader taking each event alone at the tail reads into it again instead of
    /// faulting in 64 KiB, and nothing more stays held while nothing drains.
    fn caught_up(&mut self, buf: BytesMut, want: usize) {
        self.0.clear();
        self.keep(buf, want);
    }
}

/// Bytes of a segment from `at`, read when every record up to `durable` was on disk: records past
/// it may be rewritten by a group that failed, so they are read again, never served from here.
struct Chunk {
    at: u64,
    bytes: Bytes,
    durable: u64,
}

impl Open {
    /// The record at `offset`, from the last chunk when it holds all of it and it was durable
    /// then, else from a new chunk read at `offset`.
    fn read_at(
        &mut self,
        offset: u64,
        durable: &watch::Receiver<u64>,
        spare: &mut Spare,
    ) -> io::Result<At> {
        if let Some(found) = self.chunk.as_ref().and_then(|c| c.record(offset)) {
            return Ok(found);
        }
        // Taken before the read: every record it covers is on disk by then.
        let durable = *durable.borrow();
        self.chunk = None;
        let mut want = CHUNK;
        loop {
            let mut buf = spare.take(want);
            buf.resize(want, 0);
            let n = segment::read_full_at(&self.file, &mut buf, offset)?;
            buf.truncate(n);
            // Events pin the chunk they are sliced from. A short read (a reader caught up with
            // the writer) is copied out instead, so up to `max_in_flight` events read one by one
            // at the tail do not each hold a whole chunk's allocation.
            let bytes = if n >= want / 2 {
                let bytes = buf.split().freeze();
                spare.keep(buf, want);
                bytes
            } else {
                let bytes = Bytes::copy_from_slice(&buf);
                spare.caught_up(buf, want);
                bytes
            };
            let chunk = Chunk {
                at: offset,
                bytes,
                durable,
            };
            if n == 0 {
                return Ok(At::End);
            }
            let header = match frame::decode_header(&chunk.bytes) {
                Ok(h) => h,
                Err(e) => return Ok(At::Damaged(e)),
            };
            // The length is capped by decode_header, so this read is bounded.
            let len = header.record_len() as usize;
            if len > n && n == want {
                want = len;
                continue;
            }
            let found = chunk
                .decode(0, header)
                .unwrap_or(At::Damaged(FrameError::LengthPastEnd {
                    len: header.len,
                    have: n - HEADER_LEN,
                }));
            self.chunk = Some(chunk);
            return Ok(found);
        }
    }
}

impl Chunk {
    /// The record at `offset` when this chunk holds all of it and it was durable when read.
    fn record(&self, offset: u64) -> Option<At> {
        let start = usize::try_from(offset.checked_sub(self.at)?).ok()?;
        let header = frame::decode_header(self.bytes.get(start..)?).ok()?;
        if header.seq > self.durable {
            return None;
        }
        self.decode(start, header)
    }

    /// The record whose header is at `start` (bytes into the chunk); `None` when the chunk ends
    /// inside it.
    fn decode(&self, start: usize, header: Header) -> Option<At> {
        let end = start + header.record_len() as usize;
        if end > self.bytes.len() {
            return None;
        }
        let payload = self.bytes.slice(start + HEADER_LEN..end);
        Some(match header.decode_shared(&payload) {
            Ok(event) => At::Record(header, event),
            Err(e) => At::Damaged(e),
        })
    }
}

/// Reads just a record's header, to step over records before the start without reading bodies.
fn header_only(file: &File, offset: u64) -> io::Result<At> {
    let mut head = [0u8; HEADER_LEN];
    let n = segment::read_full_at(file, &mut head, offset)?;
    if n == 0 {
        return Ok(At::End);
    }
    Ok(match frame::decode_header(&head[..n]) {
        Ok(h) => At::Header(h),
        Err(e) => At::Damaged(e),
    })
}

#[cfg(test)]
mod spare_tests {
    use super::*;

    /// A chunk-sized buffer from `spare`, filled and frozen as `read_at` does; returns the chunk.
    fn read_chunk(spare: &mut Spare) -> Bytes {
        let mut buf = spare.take(CHUNK);
        buf.resize(CHUNK, 7);
        let chunk = buf.split().freeze();
        spare.keep(buf, CHUNK);
        chunk
    }

    #[test]
    fn a_buffer_is_used_again_only_once_its_chunk_is_gone() {
        let mut spare = Spare::default();
        let first = read_chunk(&mut spare);
        let at = first.as_ptr();
        // Still pinned by an event: the next read must not write over it.
        let second = read_chunk(&mut spare);
        assert_ne!(second.as_ptr(), at);
        assert!(first.iter().all(|&b| b == 7));
        drop(first);
        let third = read_chunk(&mut spare);
        assert_eq!(third.as_ptr(), at, "the freed chunk's memory is reused");
        assert_eq!(spare.0.len(), 2);
    }

    #[test]
    fn larger_buffers_and_more_than_the_cap_are_not_kept() {
        let mut spare = Spare::default();
        let big = spare.take(CHUNK * 4);
        spare.keep(big, CHUNK * 4);
        assert!(spare.0.is_empty());
        let pinned: Vec<Bytes> = (0..SPARE_CHUNKS + 3)
            .map(|_| read_chunk(&mut spare))
            .collect();
        assert_eq!(spare.0.len(), SPARE_CHUNKS);
        drop(pinned);
    }
}

#[cfg(test)]
mod tail_tests {
    use crate::forward::spool::{Spool, SpoolConfig};
    use crate::forward::testing::event;

    /// A reader at the tail reads each new event alone (a short read, copied out): it keeps one
    /// buffer and reads into it again, as it did before the spare buffers, instead of taking a
    /// fresh 64 KiB each time.
    #[test]
    fn a_reader_at_the_tail_reuses_one_buffer() {
        let tmp = tempfile::tempdir().unwrap();
        let config = SpoolConfig {
            dir: tmp.path().to_path_buf(),
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
        };
        let mut spool = Spool::open(config).unwrap().0;
        let handle = spool.handle();
        let _keep = handle.register("tail").unwrap();
        let mut reader = handle.reader(1).unwrap();
        let mut at = Vec::new();
        for n in 0..5 {
            spool.append(&event(n)).unwrap();
            spool.sync().unwrap();
            let rec = reader.next_record().unwrap().expect("the new event");
            assert_eq!(rec.event, event(n));
            assert_eq!(reader.spare.0.len(), 1);
            at.push(reader.spare.0[0].as_ptr());
        }
        assert!(at.windows(2).all(|w| w[0] == w[1]), "one buffer: {at:?}");
    }
}
