//! Dead letters: `<spool dir>/dead-letter/<sink>.jsonl`, one JSON object per line, for events a
//! sink's destination refused for good (or that ran out of attempts), so nothing is dropped
//! silently and `replay --dead-letters` can send them again.
//!
//! One letter is one line for every reader: serde_json already escapes C0 controls, and the
//! formatter here also escapes C1 controls and U+2028/U+2029, which some JSON-lines readers and
//! JavaScript treat as line breaks, and the bidi controls, which reorder how a line is shown. Appends take an `flock` and check that the file they opened is
//! still the one at the path, so a replay rewriting the file (under the same lock, then rename: [`rewrite`])
//! never loses a letter the running service appends meanwhile.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::segment::sync_dir;
use crate::diagnostics::is_hostile;
use crate::forward::lines::{Lines, MAX_LINE};
use crate::forward::Event;

pub(super) fn dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join("dead-letter")
}

/// The dead-letter file of one sink (the name was validated as file-name-safe at config load).
pub fn path(spool_dir: &Path, sink: &str) -> PathBuf {
    dir(spool_dir).join(format!("{sink}.jsonl"))
}

/// One event given up on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub event: Event,
    /// Delivery attempts made, the last included.
    pub attempts: u32,
    /// The last error, as the sink reported it.
    pub error: String,
    pub dead_lettered_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct WireLetter {
    event: WireEvent,
    attempts: u32,
    error: String,
    dead_lettered_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct WireEvent {
    id: Uuid,
    hook: String,
    provider: String,
    event: Option<String>,
    delivery_id: Option<String>,
    received_at: DateTime<Utc>,
    content_type: Option<String>,
    client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
}

impl DeadLetter {
    /// The letter as one line, newline included.
    pub fn to_line(&self) -> Vec<u8> {
        let e = &self.event;
        let (body, body_base64) = match std::str::from_utf8(&e.body) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&e.body)),
            ),
        };
        let wire = WireLetter {
            event: WireEvent {
                id: e.id,
                hook: e.hook.clone(),
                provider: e.provider.clone(),
                event: e.event_type.clone(),
                delivery_id: e.delivery_id.clone(),
                received_at: e.received_at,
                content_type: e.content_type.clone(),
                client: e.client.clone(),
                body,
                body_base64,
            },
            attempts: self.attempts,
            error: self.error.clone(),
            dead_lettered_at: self.dead_lettered_at,
        };
        let mut out = Vec::with_capacity(e.body.len() + 512);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, LineSafe);
        // Serializing these plain types to a Vec cannot fail.
        let _ = wire.serialize(&mut ser);
        out.push(b'\n');
        out
    }

    /// Parses one line written by [`to_line`](Self::to_line).
    pub fn from_line(line: &[u8]) -> Result<DeadLetter, String> {
        let w: WireLetter = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        let body = match (w.event.body, w.event.body_base64) {
            (Some(text), None) => Bytes::from(text),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(Bytes::from)
                .map_err(|e| format!("body_base64: {e}"))?,
            _ => return Err("exactly one of body and body_base64 is required".into()),
        };
        Ok(DeadLetter {
            event: Event {
                id: w.event.id,
                hook: w.event.hook,
                provider: w.event.provider,
                event_type: w.event.event,
                delivery_id: w.event.delivery_id,
                received_at: w.event.received_at,
                content_type: w.event.content_type,
                client: w.event.client,
                body,
            },
            attempts: w.attempts,
            error: w.error,
            dead_lettered_at: w.dead_lettered_at,
        })
    }
}

/// serde_json's compact output plus `\u` escapes for the rest of [`is_hostile`]: C1 controls,
/// U+2028, U+2029 and the bidi controls (serde_json escapes C0 and `"`/`\\` itself).
struct LineSafe;

impl serde_json::ser::Formatter for LineSafe {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            if !c.is_ascii() && is_hostile(c) {
                w.write_all(&s.as_bytes()[plain..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                plain = i + c.len_utf8();
            }
        }
        w.write_all(&s.as_bytes()[plain..])
    }
}

/// Appends (and fsyncs) one letter to `path`, creating the file (and syncing its directory entry)
/// the first time. Blocking: call from a blocking context.
pub fn append(path: &Path, letter: &DeadLetter) -> io::Result<()> {
    let line = letter.to_line();
    loop {
        let existed = path.exists();
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let _lock = Lock::exclusive(&file)?;
        // A replay may have renamed a rewritten file over this path since we opened it.
        if !same_file(&file, path)? {
            continue;
        }
        (&file).write_all(&line)?;
        file.sync_data()?;
        if !existed {
            sync_dir(path.parent().unwrap_or(Path::new(".")))?;
        }
        return Ok(());
    }
}

fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    let (a, b) = (file.metadata()?, fs::metadata(path)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// An `flock` held until dropped (closing the descriptor would also release it).
struct Lock<'a>(&'a File);

impl<'a> Lock<'a> {
    fn exclusive(file: &'a File) -> io::Result<Self> {
        rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive)?;
        Ok(Lock(file))
    }
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(self.0, rustix::fs::FlockOperation::Unlock);
    }
}

/// One line of a dead-letter file: its number (from 1) and what it holds.
#[derive(Debug)]
pub struct Entry {
    pub line: usize,
    pub letter: Result<DeadLetter, String>,
}

/// Reads a dead-letter file one line at a time (bounded memory beyond the longest line). A line
/// that does not parse is an `Err` entry, not the end: the rest are still replayable.
pub struct Reader {
    lines: Lines<BufReader<File>>,
}

impl Reader {
    /// `Ok(None)` when the file does not exist (no dead letters).
    pub fn open(path: &Path) -> io::Result<Option<Reader>> {
        match File::open(path) {
            Ok(f) => Ok(Some(Reader::new(f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn new(file: File) -> Reader {
        Reader {
            lines: Lines::new(BufReader::new(file)),
        }
    }

    /// Bytes read so far (for a progress bar over the file's size).
    pub fn consumed(&self) -> u64 {
        self.lines.consumed()
    }

    /// The next non-empty line's raw bytes and parsed letter; the raw bytes are `None` when the
    /// line was too long to hold (and was skipped).
    fn next_raw(&mut self) -> io::Result<Option<(Option<Vec<u8>>, Entry)>> {
        let Some(line) = self.lines.next_line()? else {
            return Ok(None);
        };
        let letter = match line.text() {
            None => Err(format!("line longer than {MAX_LINE} bytes")),
            Some(text) => DeadLetter::from_line(text),
        };
        let entry = Entry {
            line: line.number,
            letter,
        };
        Ok(Some((line.bytes, entry)))
    }
}

impl Iterator for Reader {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_raw().map(|o| o.map(|(_, e)| e)).transpose()
    }
}

/// What [`rewrite`] does with one letter.
#[derive(Debug)]
pub enum Fate {
    Keep,
    /// Delivered: the letter goes.
    Drop,
    /// Tried again and still refused: this letter (new attempts, error, time) takes its place.
    Replace(Box<DeadLetter>),
}

/// Rewrites `path` atomically under the appenders' lock, deciding each letter's [`Fate`] (every
/// line that does not parse is kept untouched); returns how many were dropped. Letters appended
/// while a replay ran are in the file by the time the lock is held, so they are never lost: the
/// caller's `fate` keeps what it did not try. Replay calls it once at the end.
pub fn rewrite(path: &Path, mut fate: impl FnMut(&DeadLetter) -> Fate) -> io::Result<usize> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let _lock = Lock::exclusive(&file)?;
    let tmp = path.with_extension("jsonl.tmp");
    let mut out = io::BufWriter::new(File::create(&tmp)?);
    let mut reader = Reader::new(file.try_clone()?);
    let mut removed = 0;
    while let Some((raw, entry)) = reader.next_raw()? {
        let fate = match &entry.letter {
            Ok(letter) => fate(letter),
            Err(_) => Fate::Keep,
        };
        match fate {
            Fate::Drop => removed += 1,
            Fate::Replace(letter) => out.write_all(&letter.to_line())?,
            Fate::Keep => {
                let Some(raw) = raw else {
                    drop(out);
                    let _ = fs::remove_file(&tmp);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("line {} is too long to keep; not rewriting", entry.line),
                    ));
                };
                out.write_all(&raw)?;
                if !raw.ends_with(b"\n") {
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    let out = out.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(removed)
}

#[cfg(test)]
#[path = "dead_letter_tests.rs"]
mod tests;
