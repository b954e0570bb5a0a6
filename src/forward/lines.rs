//! Reading a lines file (a dead-letter file, a JSON event log) one bounded line at a time, so a
//! damaged or hostile file can never make a reader hold more than [`MAX_LINE`] bytes at once.

use std::io::{self, BufRead, Read};

use super::spool::frame::MAX_PAYLOAD;

/// Longest line read back: a body of the spool's [`MAX_PAYLOAD`] bytes that JSON escaping grows
/// sixfold (`\u0085` for a 1-byte control), plus room for the other fields.
pub const MAX_LINE: u64 = 6 * MAX_PAYLOAD as u64 + (64 << 10);

/// One non-blank line.
#[derive(Debug)]
pub struct Line {
    /// From 1, counting blank lines too (what an editor shows).
    pub number: usize,
    /// The line with its newline (when it had one); `None` when it was longer than [`MAX_LINE`]
    /// and was skipped.
    pub bytes: Option<Vec<u8>>,
}

impl Line {
    /// The line without its line ending.
    pub fn text(&self) -> Option<&[u8]> {
        let b = self.bytes.as_deref()?;
        let b = b.strip_suffix(b"\n").unwrap_or(b);
        Some(b.strip_suffix(b"\r").unwrap_or(b))
    }
}

/// The non-blank lines of `input`, each at most [`MAX_LINE`] bytes held.
pub struct Lines<R> {
    input: R,
    number: usize,
    /// Bytes consumed so far, for a progress bar over the file's size.
    consumed: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R) -> Self {
        Lines {
            input,
            number: 0,
            consumed: 0,
        }
    }

    /// Bytes read so far, skipped lines included.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The next non-blank line; `Ok(None)` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            let mut buf = Vec::new();
            let n = (&mut self.input)
                .take(MAX_LINE)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.consumed += n as u64;
            self.number += 1;
            let too_long = buf.last() != Some(&b'\n') && n as u64 == MAX_LINE;
            if too_long {
                // Skip the rest of the overlong line, a bounded piece at a time.
                let mut rest = Vec::new();
                while !rest.ends_with(b"\n") {
                    rest.clear();
                    let m = (&mut self.input)
                        .take(1 << 20)
                        .read_until(b'\n', &mut rest)?;
                    if m == 0 {
                        break;
                    }
                    self.consumed += m as u64;
                }
                return Ok(Some(Line {
                    number: self.number,
                    bytes: None,
                }));
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(Line {
                number: self.number,
                bytes: Some(buf),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_blank_ones_skipped_and_the_last_may_lack_a_newline() {
        let mut l = Lines::new(&b"a\n\n  \nb\r\nc"[..]);
        let mut got = Vec::new();
        while let Some(line) = l.next_line().expect("read") {
            got.push((line.number, line.text().expect("short").to_vec()));
        }
        assert_eq!(
            got,
            [(1, b"a".to_vec()), (4, b"b".to_vec()), (5, b"c".to_vec())]
        );
        assert_eq!(l.consumed(), 10);
    }
}
