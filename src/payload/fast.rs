//! A fast path for [`super::netbox`]: a hand-written, validating JSON scanner that reads the few
//! fields a [`NetboxEvent`] keeps and skips the rest.
//!
//! Why: serde_json decodes every key of the large `data` and `snapshots` objects and skips their
//! values through its generic visitor machinery, byte by byte; with no key allocated, that is still
//! 28k instructions on tests/fixtures/netbox/v4.6.8-created.json (sonic-rs: 25k). This scanner skips
//! them with a word-at-a-time string search and a flat loop over the nesting, and allocates
//! nothing: 13k (callgrind, `payload::netbox` inclusive, in the running service).
//!
//! serde stays the specification. [`netbox`] answers `None` whenever it is not sure, and the caller
//! then runs serde, which decides (with its precise error messages). The one promise: whenever
//! [`netbox`] returns `Some(ev)`, `serde_json::from_str::<NetboxEvent>` accepts the same text and
//! gives the same fields. To keep that promise cheaply:
//!
//! - every skipped value is checked by the grammar serde_json applies when it skips a value
//!   (`IgnoredAny`, `RawValue`): RFC 8259, where a `\u` escape needs four hex digits but need not
//!   be a valid surrogate pair;
//! - every kept leaf is read as serde reads it: a string without an escape is its own text, one
//!   with an escape is decoded by serde_json, a UUID goes through the same `FromStr`, a timestamp
//!   through the same [`parse_timestamp`], and `data.id` and `context` are `RawValue`s that
//!   serde_json makes from their span;
//! - where serde is stricter than the skipping grammar, the scanner gives up rather than copy the
//!   rule: a key with a backslash wherever serde decodes keys (it then checks surrogates), a
//!   duplicate known field, a struct given as an array.
//!
//! The promise is checked by the tests below (every fixture, every truncation and single-byte
//! mutation of them, each grammar rule) and by the `netbox_fast` fuzz target; this module is
//! public only for that target.

use std::borrow::Cow;

use serde_json::value::RawValue;
use uuid::Uuid;

use super::{
    decoded_string, is_scalar_id, parse_timestamp, AnyObject, NetboxEvent, NetboxTimestamp,
    ObjectRef, RequestInfo, Snapshots,
};

/// Parses `text` as a NetBox body when that is quick and certain; `None` means "ask serde", never
/// "invalid".
pub fn netbox(text: &str) -> Option<NetboxEvent<'_>> {
    let mut s = Scanner::new(text);
    let mut seen = Seen::default();
    let mut event = None;
    let mut timestamp = None;
    let mut model = None;
    let mut object_type = None;
    let mut username = None;
    let mut request_id = None;
    let mut request = None;
    let mut data = None;
    let mut snapshots = None;
    let mut context = None;
    // A top-level array is a struct as a sequence to serde: rare, so left to it.
    s.object(|s, key| {
        match key {
            b"event" => {
                seen.first(0)?;
                event = Some(s.string()?);
            }
            b"timestamp" => {
                seen.first(1)?;
                let text = s.string()?;
                timestamp = Some(NetboxTimestamp(parse_timestamp(&text).ok()?));
            }
            b"model" => {
                seen.first(2)?;
                model = s.optional_string()?;
            }
            b"object_type" => {
                seen.first(3)?;
                object_type = s.optional_string()?;
            }
            b"username" => {
                seen.first(4)?;
                username = s.optional_string()?;
            }
            b"request_id" => {
                seen.first(5)?;
                request_id = s.optional_uuid()?;
            }
            b"request" => {
                seen.first(6)?;
                request = s.request()?;
            }
            b"data" => {
                seen.first(7)?;
                data = s.data()?;
            }
            b"snapshots" => {
                seen.first(8)?;
                snapshots = s.snapshots()?;
            }
            b"context" => {
                seen.first(9)?;
                context = serde_json::from_str::<Option<&RawValue>>(s.span()?).ok()?;
            }
            _ => s.skip_value()?,
        }
        Some(())
    })?;
    if s.ws().is_some() {
        return None;
    }
    Some(NetboxEvent {
        event: event?,
        timestamp: timestamp?,
        model,
        object_type,
        username,
        request_id,
        request,
        data,
        snapshots,
        context,
    })
}

/// Which known fields of one struct were seen: serde's derive refuses a duplicate.
#[derive(Default)]
struct Seen(u16);

impl Seen {
    fn first(&mut self, field: u8) -> Option<()> {
        let bit = 1 << field;
        if self.0 & bit != 0 {
            return None;
        }
        self.0 |= bit;
        Some(())
    }
}

/// The position in the body. Every method returns `None` on anything it does not accept, leaving
/// the position wherever it was: the whole parse is then abandoned.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    /// Index of the next unread byte; always at an ASCII byte or the end between calls, so slicing
    /// `text` there cannot split a character.
    i: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            text,
            bytes: text.as_bytes(),
            i: 0,
        }
    }

    /// Skips whitespace and peeks at the next byte.
    #[inline(always)]
    fn ws(&mut self) -> Option<u8> {
        let (i, c) = peek(self.bytes, self.i)?;
        self.i = i;
        Some(c)
    }

    /// Skips whitespace, then `c`.
    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.ws()? != c {
            return None;
        }
        self.i += 1;
        Some(())
    }

    /// `null` (after whitespace), or `None` when the value is something else.
    #[inline(always)]
    fn null(&mut self) -> Option<bool> {
        if self.ws()? != b'n' {
            return Some(false);
        }
        self.i = literal_end(self.bytes, self.i, b"null")?;
        Some(true)
    }

    /// The text of the value after any whitespace, checked and skipped; exactly what serde would
    /// read as a `RawValue` there.
    #[inline]
    fn span(&mut self) -> Option<&'a str> {
        self.ws()?;
        let start = self.i;
        self.skip_value()?;
        self.text.get(start..self.i)
    }

    /// A string, as serde reads a `Cow<str>`: borrowed when it has no escape (then one pass finds
    /// its end), else decoded by serde (which also refuses a lone surrogate). `None` for any other
    /// value: serde would refuse it too.
    #[inline]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        if self.ws()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let end = find_special(self.bytes, start);
        if *self.bytes.get(end)? == b'"' {
            self.i = end + 1;
            return self.text.get(start..end).map(Cow::Borrowed);
        }
        decoded_string(self.span()?)
    }

    /// `null` or a string, as serde reads an `Option<Cow<str>>`.
    #[inline]
    fn optional_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// `null` or a UUID, as serde reads an `Option<Uuid>`: the `uuid` crate's `Deserialize` takes
    /// only a string (from serde_json) and parses it with `FromStr`, as here.
    #[inline]
    fn optional_uuid(&mut self) -> Option<Option<Uuid>> {
        if self.null()? {
            return Some(None);
        }
        // The usual spelling, parsed in place: 36 bytes that parse as a UUID have no quote,
        // backslash or control byte, so they are the whole string, unescaped.
        let i = self.i;
        if let Some(&[b'"', ref uuid @ .., b'"']) = self.bytes.get(i..i + 38) {
            if let Ok(uuid) = Uuid::try_parse_ascii(uuid) {
                self.i = i + 38;
                return Some(Some(uuid));
            }
        }
        self.string()?.parse().ok().map(Some)
    }

    /// The members of an object whose keys serde decodes itself (a struct's fields, a map's keys),
    /// each passed to `member` with the position at its value, which `member` must consume.
    /// A key with an escape is refused: serde would check its surrogates, skipping does not. Keys
    /// are compared as bytes: only ASCII names matter, and no UTF-8 boundary check is needed.
    #[inline(always)]
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        let b = self.bytes;
        self.eat(b'{')?;
        let (at, c) = peek(b, self.i)?;
        if c == b'}' {
            self.i = at + 1;
            return Some(());
        }
        if c != b'"' {
            return None;
        }
        let mut start = at + 1;
        loop {
            let end = key_end(b, start, true)?;
            let key = b.get(start..end - 1)?;
            self.i = colon(b, end)?;
            member(self, key)?;
            start = match next_key(b, self.i)? {
                Next::Key(start) => start,
                Next::End(end) => {
                    self.i = end;
                    return Some(());
                }
            };
        }
    }

    /// `data`: `null`, or an object of which the first scalar `id` and the first string `url` are
    /// kept (the rule of [`ObjectRef`]'s own `Deserialize`). Its own loop with the position in a
    /// local, rather than [`Scanner::object`]: `data` is the largest object read member by member.
    fn data(&mut self) -> Option<Option<ObjectRef<'a>>> {
        if self.null()? {
            return Some(None);
        }
        let (b, text) = (self.bytes, self.text);
        let mut obj = ObjectRef::default();
        let (at, c) = peek(b, self.i)?;
        if c != b'{' {
            return None;
        }
        let (at, c) = peek(b, at + 1)?;
        if c == b'}' {
            self.i = at + 1;
            return Some(Some(obj));
        }
        if c != b'"' {
            return None;
        }
        let mut start = at + 1;
        loop {
            let after_key = key_end(b, start, true)?;
            let key = b.get(start..after_key - 1)?;
            let value = colon(b, after_key)?;
            let end = if key == b"id" && obj.id.is_none() {
                let (value, end) = value_span(b, value)?;
                let raw = text.get(value..end)?;
                if is_scalar_id(raw) {
                    obj.id = Some(serde_json::from_str::<&RawValue>(raw).ok()?);
                }
                end
            } else if key == b"url" && obj.url.is_none() {
                let (value, end) = value_span(b, value)?;
                obj.url = decoded_string(text.get(value..end)?);
                end
            } else {
                skip_value(b, value)?
            };
            start = match next_key(b, end)? {
                Next::Key(start) => start,
                Next::End(end) => {
                    self.i = end;
                    return Some(Some(obj));
                }
            };
        }
    }

    /// `request`: `null` or an object, read as serde's derive reads [`RequestInfo`] (an array
    /// would be the struct as a sequence: left to serde).
    fn request(&mut self) -> Option<Option<RequestInfo<'a>>> {
        if self.null()? {
            return Some(None);
        }
        let mut seen = Seen::default();
        let mut req = RequestInfo {
            id: None,
            method: None,
            path: None,
            user: None,
        };
        self.object(|s, key| {
            match key {
                b"id" => {
                    seen.first(0)?;
                    req.id = s.optional_uuid()?;
                }
                b"method" => {
                    seen.first(1)?;
                    req.method = s.optional_string()?;
                }
                b"path" => {
                    seen.first(2)?;
                    req.path = s.optional_string()?;
                }
                b"user" => {
                    seen.first(3)?;
                    req.user = s.optional_string()?;
                }
                _ => s.skip_value()?,
            }
            Some(())
        })?;
        Some(Some(req))
    }

    /// `snapshots`: `null`, or an object (an array would be the struct as a sequence: left to
    /// serde) whose `prechange` and `postchange` are objects or `null`.
    fn snapshots(&mut self) -> Option<Option<Snapshots>> {
        if self.null()? {
            return Some(None);
        }
        let mut seen = Seen::default();
        let mut snap = Snapshots {
            prechange: None,
            postchange: None,
        };
        self.object(|s, key| {
            match key {
                b"prechange" => {
                    seen.first(0)?;
                    snap.prechange = s.any_object()?;
                }
                b"postchange" => {
                    seen.first(1)?;
                    snap.postchange = s.any_object()?;
                }
                _ => s.skip_value()?,
            }
            Some(())
        })?;
        Some(Some(snap))
    }

    /// `null` or an object, as `Option<AnyObject>`. [`AnyObject`] reads its keys through
    /// serde_json's key reader (as `IgnoredAny`, but the reader decodes and so checks them), so
    /// its keys are strict; its values are only skipped.
    fn any_object(&mut self) -> Option<Option<AnyObject>> {
        if self.null()? {
            return Some(None);
        }
        if self.ws()? != b'{' {
            return None;
        }
        self.i = skip::<true>(self.bytes, self.i)?;
        Some(Some(AnyObject))
    }

    /// Skips one value after any whitespace (see [`skip_value`]).
    #[inline(always)]
    fn skip_value(&mut self) -> Option<()> {
        self.i = skip_value(self.bytes, self.i)?;
        Some(())
    }
}

/// Skips one value from `i` (whitespace first), checking it as serde_json's `ignore_value` does,
/// and returns the index after it. The scalars most members hold are handled inline; the rest goes
/// to [`skip`].
#[inline(always)]
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    let (i, c) = peek(b, i)?;
    match c {
        b'"' => string_end(b, i + 1),
        b'n' => literal_end(b, i, b"null"),
        _ => skip::<false>(b, i),
    }
}

/// The start and end of the value from `i` (whitespace first): what serde reads as a `RawValue`.
#[inline(always)]
fn value_span(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let (start, _) = peek(b, i)?;
    Some((start, skip_value(b, start)?))
}

/// Skips one value of any kind from `i` (whitespace first) and returns the index after it. With
/// `STRICT_KEYS`, the keys of the outermost object must have no escape (see [`Scanner::object`]);
/// keys deeper in are skipped like any string, as serde_json does.
///
/// A loop over an explicit stack, not recursion: serde_json has no depth limit when it skips, so
/// neither may this (and a deep body must not exhaust the call stack). One function with
/// everything inlined and the position in a register, as this loop is most of the work of a parse.
#[inline(never)]
fn skip<const STRICT_KEYS: bool>(b: &[u8], mut i: usize) -> Option<usize> {
    let mut nest = Nesting::default();
    // Whether `i` is at the first byte of a key (after its quote) rather than before a value.
    let mut at_key = false;
    loop {
        if at_key {
            let after_key = key_end(b, i, STRICT_KEYS && nest.depth == 1)?;
            // The usual member, as NetBox (Python's `json.dumps`) writes it, takes one path:
            // `"key": "value", "`.
            if b.get(after_key..)
                .is_some_and(|rest| rest.starts_with(b": \""))
            {
                i = string_end(b, after_key + 3)?;
                if b.get(i..).is_some_and(|rest| rest.starts_with(b", \"")) {
                    i += 3;
                    continue;
                }
            } else {
                i = colon(b, after_key)?;
                at_key = false;
                continue;
            }
        } else {
            let (at, c) = peek(b, i)?;
            // An `if` chain, most frequent first, rather than a `match`: a jump table's indirect
            // branch is mispredicted far more often (measured with cachegrind's branch
            // simulation).
            i = if c == b'"' {
                string_end(b, at + 1)?
            } else if c == b'n' {
                literal_end(b, at, b"null")?
            } else if c == b'{' {
                let (at, c) = peek(b, at + 1)?;
                if c == b'}' {
                    at + 1
                } else if c == b'"' {
                    nest.push(true);
                    i = at + 1;
                    at_key = true;
                    continue;
                } else {
                    return None;
                }
            } else if c == b'[' {
                let (at, c) = peek(b, at + 1)?;
                if c == b']' {
                    at + 1
                } else {
                    nest.push(false);
                    i = at;
                    continue;
                }
            } else if c == b'-' || c.is_ascii_digit() {
                number_end(b, at)?
            } else if c == b't' {
                literal_end(b, at, b"true")?
            } else if c == b'f' {
                literal_end(b, at, b"false")?
            } else {
                return None;
            };
        }
        // A value ended: close the containers it ends, or go on after a comma.
        at_key = false;
        loop {
            if nest.depth == 0 {
                return Some(i);
            }
            if nest.top_is_object() {
                match next_key(b, i)? {
                    Next::Key(start) => {
                        i = start;
                        at_key = true;
                        break;
                    }
                    Next::End(end) => i = end,
                }
            } else {
                let (at, c) = peek(b, i)?;
                match c {
                    b',' => {
                        i = at + 1;
                        break;
                    }
                    b']' => i = at + 1,
                    _ => return None,
                }
            }
            nest.pop();
        }
    }
}

/// What follows a member of an object.
enum Next {
    /// A comma and a key: the index of the key's first byte (after its quote).
    Key(usize),
    /// The closing brace: the index after it.
    End(usize),
}

/// What follows the member value that ends at `i`. The layout NetBox (Python's `json.dumps`)
/// writes, `, "`, is tried first.
#[inline(always)]
fn next_key(b: &[u8], i: usize) -> Option<Next> {
    if b.get(i..).is_some_and(|rest| rest.starts_with(b", \"")) {
        return Some(Next::Key(i + 3));
    }
    let (at, c) = peek(b, i)?;
    match c {
        b',' => {
            let (at, c) = peek(b, at + 1)?;
            (c == b'"').then_some(Next::Key(at + 1))
        }
        b'}' => Some(Next::End(at + 1)),
        _ => None,
    }
}

/// The index and value of the first byte from `i` on that is not JSON whitespace (only these four
/// bytes, as serde_json).
#[inline(always)]
fn peek(b: &[u8], i: usize) -> Option<(usize, u8)> {
    let i = skip_ws(b, i);
    Some((i, *b.get(i)?))
}

/// The index of the first byte from `i` on that is not JSON whitespace, or `b.len()`. Most calls
/// find no whitespace or one space, so those are tried inline.
#[inline(always)]
fn skip_ws(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(&c) if c > b' ' => i,
        Some(b' ') if b.get(i + 1).is_some_and(|&c| c > b' ') => i + 1,
        _ => skip_more_ws(b, i),
    }
}

#[inline(never)]
fn skip_more_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// The index after `word` at `i`.
#[inline(always)]
fn literal_end(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    let end = i + word.len();
    (b.get(i..end)? == word).then_some(end)
}

/// The index after the closing quote of the key whose first byte is at `start`. With `strict`, a
/// key with an escape is refused (see [`Scanner::object`]).
#[inline(always)]
fn key_end(b: &[u8], start: usize, strict: bool) -> Option<usize> {
    if strict {
        let end = find_special(b, start);
        (*b.get(end)? == b'"').then_some(end + 1)
    } else {
        string_end(b, start)
    }
}

/// The index after the colon that follows a key, from `i` (whitespace first). The layout NetBox
/// writes, `": "`, is tried first (and then the space is skipped too).
#[inline(always)]
fn colon(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i..).is_some_and(|rest| rest.starts_with(b": ")) {
        return Some(i + 2);
    }
    let (at, c) = peek(b, i)?;
    (c == b':').then_some(at + 1)
}

/// The index after the closing quote of the string whose contents start at `i`: no byte below
/// 0x20, only JSON's escapes.
#[inline(always)]
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i = find_special(b, i);
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i = escape_end(b, i)?,
            _ => return None,
        }
    }
}

/// The index after the escape whose backslash is at `i`. `\u` needs four hex digits and nothing
/// more: serde_json does not pair surrogates in a string it skips.
#[inline(never)]
fn escape_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 2),
        b'u' => {
            let hex = b.get(i + 2..i + 6)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 6)
        }
        _ => None,
    }
}

/// The index after the number at `i`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, of any
/// length. What follows is checked by the caller, as serde_json does (so `01` fails there, on the
/// `1`).
#[inline(never)]
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(b, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(b, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// The index after the ASCII digits from `i` on.
#[inline]
fn digits(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b'0'..=b'9')) {
        i += 1;
    }
    i
}

/// The index of the first `"`, `\` or byte below 0x20 from `i` on, or `b.len()`: the end of the
/// plain run of a string.
///
/// Eight bytes at a time, as serde_json does. Measured on the NetBox fixture: 13.1k instructions
/// per parse this way, 22.7k with `memchr2` plus a control-byte check (most strings in a NetBox
/// body are a few bytes long, shorter than a `memchr2` call costs).
#[inline(always)]
fn find_special(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while i + 8 <= b.len() {
        let Some(Ok(chunk)) = b.get(i..i + 8).map(<[u8; 8]>::try_from) else {
            break;
        };
        let w = u64::from_le_bytes(chunk);
        // `x - n·ONES & !x & HIGH` flags the bytes of `x` below `n` (the lowest flag is always
        // right; a borrow can only wrongly flag a byte above it). Flipping bit 1 maps `"` to 0x20
        // and keeps the bytes below 0x20 below it, so one test finds both; a second finds `\`.
        // The flipped words have the high bits of `w`, so one `!w` serves both tests.
        let quote_or_control = w ^ (ONES * 0x02);
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found =
            (quote_or_control.wrapping_sub(ONES * 0x21) | backslash.wrapping_sub(ONES)) & !w & HIGH;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Whether each open container is an object or an array, one bit per level, the innermost in the
/// lowest bit. The innermost 64 levels live in one word, so a NetBox body never allocates; the
/// levels below spill to a vector, a word at a time.
#[derive(Default)]
struct Nesting {
    depth: usize,
    word: u64,
    spill: Vec<u64>,
}

impl Nesting {
    #[inline(always)]
    fn push(&mut self, object: bool) {
        if self.depth.is_multiple_of(64) && self.depth > 0 {
            spill(&mut self.spill, self.word);
        }
        self.word = self.word << 1 | u64::from(object);
        self.depth += 1;
    }

    /// Only with `depth > 0`.
    #[inline(always)]
    fn pop(&mut self) {
        self.word >>= 1;
        self.depth -= 1;
        if self.depth.is_multiple_of(64) && self.depth > 0 {
            self.word = unspill(&mut self.spill);
        }
    }

    /// Only with `depth > 0`.
    #[inline(always)]
    fn top_is_object(&self) -> bool {
        self.word & 1 == 1
    }
}

/// Out of line, so the vector stays out of registers in the loop that nests.
#[cold]
#[inline(never)]
fn spill(spill: &mut Vec<u64>, word: u64) {
    spill.push(word);
}

#[cold]
#[inline(never)]
fn unspill(spill: &mut Vec<u64>) -> u64 {
    spill.pop().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;

    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/netbox/",
                    $name,
                    ".json"
                )),
            )
        };
    }

    const FIXTURES: [(&str, &str); 8] = [
        fixture!("v3.5.9-created"),
        fixture!("v3.5.9-deleted"),
        fixture!("v3.5.9-updated"),
        fixture!("v4.6.8-bulk-created-1of2"),
        fixture!("v4.6.8-bulk-created-2of2"),
        fixture!("v4.6.8-created"),
        fixture!("v4.6.8-deleted"),
        fixture!("v4.6.8-updated"),
    ];

    /// The invariant: when the fast path answers, serde accepts the text and reads the same
    /// fields. Returns whether the fast path answered.
    fn agrees(text: &str) -> bool {
        let Some(fast) = netbox(text) else {
            return false;
        };
        match serde_json::from_str::<NetboxEvent>(text) {
            Ok(slow) => {
                assert_same(&fast, &slow, text);
                true
            }
            Err(e) => panic!("the fast path accepts what serde refuses ({e}): {text:?}"),
        }
    }

    fn assert_same(fast: &NetboxEvent, slow: &NetboxEvent, text: &str) {
        type Request<'e> = (
            Option<Uuid>,
            Option<&'e str>,
            Option<&'e str>,
            Option<&'e str>,
        );
        fn request<'e>(e: &'e NetboxEvent<'_>) -> Option<Request<'e>> {
            let r = e.request.as_ref()?;
            Some((
                r.id,
                r.method.as_deref(),
                r.path.as_deref(),
                r.user.as_deref(),
            ))
        }
        fn data<'e>(e: &'e NetboxEvent<'_>) -> Option<(Option<&'e str>, Option<&'e str>)> {
            let d = e.data.as_ref()?;
            Some((d.id.map(RawValue::get), d.url.as_deref()))
        }
        fn snapshots(e: &NetboxEvent<'_>) -> Option<(bool, bool)> {
            let s = e.snapshots.as_ref()?;
            Some((s.prechange.is_some(), s.postchange.is_some()))
        }
        fn context<'e>(e: &'e NetboxEvent<'_>) -> Option<&'e str> {
            e.context.map(RawValue::get)
        }
        assert_eq!(fast.event, slow.event, "{text:?}");
        // `DateTime`'s `==` compares instants only; the offset is kept too.
        assert_eq!(fast.timestamp, slow.timestamp, "{text:?}");
        assert_eq!(
            fast.timestamp.0.offset(),
            slow.timestamp.0.offset(),
            "{text:?}"
        );
        assert_eq!(fast.model, slow.model, "{text:?}");
        assert_eq!(fast.object_type, slow.object_type, "{text:?}");
        assert_eq!(fast.username, slow.username, "{text:?}");
        assert_eq!(fast.request_id, slow.request_id, "{text:?}");
        assert_eq!(request(fast), request(slow), "{text:?}");
        assert_eq!(data(fast), data(slow), "{text:?}");
        assert_eq!(snapshots(fast), snapshots(slow), "{text:?}");
        assert_eq!(context(fast), context(slow), "{text:?}");
        // And whatever a later field adds: `Debug` shows every field (a `Cow` as its text, a
        // `RawValue` as its raw text).
        assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{text:?}");
    }

    fn serde_accepts(text: &str) -> bool {
        serde_json::from_str::<NetboxEvent>(text).is_ok()
    }

    /// `text` with `ws` after every `{ [ , :` and around every `} ]` outside strings.
    fn respace(text: &str, ws: &str) -> String {
        let mut out = String::from(ws);
        let (mut in_string, mut escaped) = (false, false);
        for c in text.chars() {
            if in_string {
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
                continue;
            }
            match c {
                '"' => {
                    in_string = true;
                    out.push(c);
                }
                '{' | '[' | ',' | ':' => {
                    out.push(c);
                    out.push_str(ws);
                }
                '}' | ']' => {
                    out.push_str(ws);
                    out.push(c);
                    out.push_str(ws);
                }
                _ => out.push(c),
            }
        }
        out
    }

    #[test]
    fn every_fixture_takes_the_fast_path() {
        for (name, text) in FIXTURES {
            assert!(agrees(text), "{name}");
            let ev = netbox(text).unwrap();
            assert!(ev.object().and_then(|o| o.id).is_some(), "{name}");
            assert!(ev.object().and_then(|o| o.url.as_ref()).is_some(), "{name}");
            assert!(ev.snapshots.is_some(), "{name}");
        }
    }

    #[test]
    fn whitespace_variants_take_the_fast_path() {
        for (name, text) in FIXTURES {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let variants = [
                format!("{pretty}\n"),
                pretty.replace('\n', "\r\n"),
                serde_json::to_string(&value).unwrap(),
                respace(text, "\n  "),
                respace(text, "\r\n\t"),
                respace(text, " \t \r\n "),
            ];
            for v in variants {
                assert!(agrees(&v), "{name}: {v}");
            }
        }
    }

    #[test]
    fn every_truncation_agrees() {
        for (_, text) in FIXTURES {
            for end in (0..text.len()).filter(|&end| text.is_char_boundary(end)) {
                let cut = &text[..end];
                let taken = agrees(cut);
                // Only whitespace may be cut: nothing else after the last `}`.
                assert_eq!(taken, serde_accepts(cut), "{cut:?}");
            }
        }
    }

    #[test]
    fn every_single_byte_mutation_agrees() {
        const BYTES: &[u8] = b"\"\\{}[],:0-e. \n\x01un";
        let (mut fast, mut slow_only, mut refused) = (0, 0, 0);
        for (_, text) in FIXTURES {
            let mut bytes = text.as_bytes().to_vec();
            for at in 0..bytes.len() {
                let original = bytes[at];
                for &b in BYTES.iter().filter(|&&b| b != original) {
                    bytes[at] = b;
                    if let Ok(mutant) = std::str::from_utf8(&bytes) {
                        if agrees(mutant) {
                            fast += 1;
                        } else if serde_accepts(mutant) {
                            slow_only += 1;
                        } else {
                            refused += 1;
                        }
                    }
                }
                bytes[at] = original;
            }
        }
        eprintln!("mutants: {fast} fast, {slow_only} only serde, {refused} refused by both");
        assert!(fast > 0 && refused > 0);
    }

    /// Wraps a value in each place the fast path only skips.
    fn skipped_slots(value: &str) -> [String; 6] {
        const HEAD: &str = r#"{"event": "created", "timestamp": "2026-11-23T15:20:42+00:00""#;
        [
            format!(r#"{HEAD}, "data": {{"id": 1, "x": {value}}}}}"#),
            format!(r#"{HEAD}, "data": {{"x": [{value}], "id": 1}}}}"#),
            format!(r#"{HEAD}, "x": {value}}}"#),
            format!(r#"{HEAD}, "snapshots": {{"other": {value}, "prechange": null}}}}"#),
            format!(r#"{HEAD}, "snapshots": {{"postchange": {{"a": {value}}}}}}}"#),
            format!(r#"{HEAD}, "context": {value}}}"#),
        ]
    }

    /// In a skipped place, the fast path is exact: it accepts a value iff serde_json does.
    fn check_skipped(value: &str, valid: bool) {
        assert_eq!(
            serde_json::from_str::<IgnoredAny>(value).is_ok(),
            valid,
            "test case {value:?} is mislabelled"
        );
        for text in skipped_slots(value) {
            assert_eq!(agrees(&text), valid, "{text:?}");
            assert_eq!(serde_accepts(&text), valid, "{text:?}");
        }
    }

    #[test]
    fn strings_as_serde_skips_them() {
        for (value, valid) in [
            (r#""""#, true),
            (r#""plain""#, true),
            (r#""\"\\\/\b\f\n\r\t""#, true),
            (r#""\u00e9\u2013\uD83D\ude00""#, true),
            // Skipped, so not decoded: a lone or reversed surrogate is fine.
            (r#""\ud800""#, true),
            (r#""\udc00\ud800x""#, true),
            (r#""\ud800\u0041""#, true),
            ("\"é – 😀 \u{7f}\"", true),
            (r#""\q""#, false),
            (r#""\U0041""#, false),
            (r#""\u12""#, false),
            (r#""\u12G4""#, false),
            (r#""\u""#, false),
            (r#""\"#, false),
            (r#""abc"#, false),
            ("\"a\u{1}b\"", false),
            ("\"a\tb\"", false),
            ("\"a\nb\"", false),
            ("\"a\u{1f}b\"", false),
            ("\"0123456789abcdef\u{0}\"", false),
            ("\"0123456789abcde\\x\"", false),
            (r#""0123456789abcdef0123456789\"x""#, true),
        ] {
            check_skipped(value, valid);
        }
    }

    #[test]
    fn numbers_and_literals_as_serde_skips_them() {
        for (value, valid) in [
            ("0", true),
            ("-0", true),
            ("7", true),
            ("-12.50", true),
            ("0.0e+0", true),
            ("1E-5", true),
            ("1e999999999", true),
            ("-1e-999999999", true),
            ("123456789012345678901234567890123456789", true),
            ("01", false),
            ("-01", false),
            ("00", false),
            ("1.", false),
            ("1.e5", false),
            ("-", false),
            ("--1", false),
            ("- 1", false),
            ("+1", false),
            ("1e", false),
            ("1e+", false),
            ("1.5e", false),
            (".5", false),
            ("0x1", false),
            ("1_000", false),
            ("true", true),
            ("false", true),
            ("null", true),
            ("tru", false),
            ("nul", false),
            ("nulll", false),
            ("True", false),
            ("NaN", false),
        ] {
            check_skipped(value, valid);
        }
    }

    #[test]
    fn structure_as_serde_skips_it() {
        let deep = |open: &str, inner: &str, close: &str, n| {
            format!("{}{inner}{}", open.repeat(n), close.repeat(n))
        };
        for (value, valid) in [
            ("[]".to_string(), true),
            ("{}".to_string(), true),
            ("[ ]".to_string(), true),
            ("{\r\n\t}".to_string(), true),
            (r#"[1, "a", {"b": [null, {}]}, []]"#.to_string(), true),
            // Keys of skipped objects are skipped, not decoded, too.
            (
                r#"{"\ud800": 1, "\u0041": {"\udfff": 2}}"#.to_string(),
                true,
            ),
            ("[1,]".to_string(), false),
            (r#"{"a": 1,}"#.to_string(), false),
            ("{,}".to_string(), false),
            ("[,1]".to_string(), false),
            ("[1 2]".to_string(), false),
            ("[1]]".to_string(), false),
            (r#"{"a" 1}"#.to_string(), false),
            (r#"{"a":}"#.to_string(), false),
            (r#"{"a":1 "b":2}"#.to_string(), false),
            ("{1: 2}".to_string(), false),
            ("{a: 2}".to_string(), false),
            ("{\"a\u{1}\": 2}".to_string(), false),
            ("\u{feff}1".to_string(), false),
            ("\u{a0}1".to_string(), false),
            ("\u{b}1".to_string(), false),
            ("\u{c}1".to_string(), false),
            (deep("[", "", "]", 1000), true),
            (deep(r#"{"a": "#, "1", "}", 1000), true),
            (deep(r#"[{"a": "#, "[]", "}]", 600), true),
            (deep("[", "", "]", 1000)[1..].to_string(), false),
            (
                deep(r#"[{"a": "#, "[]", "}]", 600).replacen("}]}", "]}}", 1),
                false,
            ),
        ] {
            check_skipped(&value, valid);
        }
    }

    #[test]
    fn nesting_spills_and_restores() {
        let mut n = Nesting::default();
        let kinds: Vec<bool> = (0..300).map(|i| i % 3 == 0 || i % 7 == 0).collect();
        for &k in &kinds {
            n.push(k);
            assert_eq!(n.top_is_object(), k);
        }
        for &k in kinds.iter().rev() {
            assert_eq!(n.top_is_object(), k);
            n.pop();
        }
        assert_eq!(n.depth, 0);
        assert!(n.spill.is_empty());
    }

    #[test]
    fn find_special_agrees_with_a_byte_loop() {
        let naive = |b: &[u8], i: usize| {
            let k = b[i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            k.map_or(b.len(), |k| i + k)
        };
        let base = b"0123456789abcdef0123456789abcdef0123";
        for at in 0..base.len() {
            for c in 0..=255u8 {
                // What follows a special byte in the same word can be flagged wrongly by a
                // borrow (`#` after `"`, `]` after `\`); only the first flag may count.
                for after in [b'a', b'"', b'#', b']', 0x00, 0x21, 0x5d, 0x7f, 0xff] {
                    let mut t = base.to_vec();
                    t[at] = c;
                    if let Some(next) = t.get_mut(at + 1) {
                        *next = after;
                    }
                    for start in [0, at.saturating_sub(3), at, at + 1, t.len()] {
                        assert_eq!(
                            find_special(&t, start),
                            naive(&t, start),
                            "{t:?} from {start}"
                        );
                    }
                }
            }
        }
    }

    const HEAD: &str = r#""event": "created", "timestamp": "2026-11-23T15:20:42+00:00""#;

    /// Cases the fast path leaves to serde though serde may accept them.
    #[test]
    fn unsure_cases_go_to_serde() {
        for (text, serde_ok) in [
            // Keys serde decodes (so checks their surrogates) may have no escape at all.
            (format!(r#"{{{HEAD}, "data": {{"\ud800": 1}}}}"#), false),
            (format!(r#"{{{HEAD}, "data": {{"\u0069d": 5}}}}"#), true),
            (format!(r#"{{{HEAD}, "\ud800": 1}}"#), false),
            (format!(r#"{{{HEAD}, "x\n": 1}}"#), true),
            (
                r#"{"ev\u0065nt": "created", "timestamp": "2026-11-23T15:20:42+00:00"}"#.into(),
                true,
            ),
            (
                format!(r#"{{{HEAD}, "snapshots": {{"\ud800": 1}}}}"#),
                false,
            ),
            (
                format!(r#"{{{HEAD}, "snapshots": {{"postchange": {{"\ud800": 1}}}}}}"#),
                false,
            ),
            (
                format!(r#"{{{HEAD}, "snapshots": {{"postchange": {{"\u0041": 1}}}}}}"#),
                true,
            ),
            (format!(r#"{{{HEAD}, "request": {{"\ud800": 1}}}}"#), false),
            // Structs as sequences.
            (r#"["created", "2026-11-23T15:20:42+00:00"]"#.into(), true),
            (format!(r#"{{{HEAD}, "snapshots": [null, {{}}]}}"#), true),
            (
                format!(r#"{{{HEAD}, "request": ["327c526c-42b3-446b-b86d-9a919f1dc429"]}}"#),
                true,
            ),
            // Duplicate fields.
            (format!(r#"{{{HEAD}, "event": "deleted"}}"#), false),
            (
                format!(r#"{{{HEAD}, "model": null, "model": null}}"#),
                false,
            ),
            (
                format!(r#"{{{HEAD}, "snapshots": {{"prechange": null, "prechange": {{}}}}}}"#),
                false,
            ),
            (
                format!(r#"{{{HEAD}, "request": {{"user": "a", "user": "b"}}}}"#),
                false,
            ),
            // Wrong types and missing fields.
            (r#"{"event": "created"}"#.into(), false),
            (
                r#"{"event": null, "timestamp": "2026-11-23T15:20:42+00:00"}"#.into(),
                false,
            ),
            (
                r#"{"event": "created", "timestamp": "2026-11-23T15:20:42"}"#.into(),
                false,
            ),
            (format!(r#"{{{HEAD}, "data": []}}"#), false),
            (format!(r#"{{{HEAD}, "data": 1}}"#), false),
            (
                format!(r#"{{{HEAD}, "snapshots": {{"postchange": []}}}}"#),
                false,
            ),
            (format!(r#"{{{HEAD}, "request_id": "not-a-uuid"}}"#), false),
            (format!(r#"{{{HEAD}, "username": 7}}"#), false),
            (format!(r#"{{{HEAD}, "event": "\ud800"}}"#), false),
            // Trailing content.
            (format!(r#"{{{HEAD}}} x"#), false),
            (format!(r#"{{{HEAD}}}{{}}"#), false),
            (format!(r#"{{{HEAD},}}"#), false),
            (format!("{}{{{HEAD}}}", '\u{feff}'), false),
        ] {
            assert!(netbox(&text).is_none(), "{text}");
            assert_eq!(serde_accepts(&text), serde_ok, "{text}");
        }
    }

    #[test]
    fn leaves_read_as_serde_reads_them() {
        for text in [
            format!(" \r\n{{{HEAD}}}\t\n "),
            format!(r#"{{{HEAD}, "data": null, "snapshots": null, "context": null}}"#),
            format!(r#"{{{HEAD}, "snapshots": {{}}, "context": {{"a": [1]}}}}"#),
            format!(r#"{{{HEAD}, "snapshots": {{"x": [], "postchange": null}}}}"#),
            format!(r#"{{{HEAD}, "model": null, "username": null, "request_id": null}}"#),
            format!(r#"{{{HEAD}, "request": null, "object_type": "dcim.site"}}"#),
            format!(r#"{{{HEAD}, "request": {{"id": null, "user": "\u00e9", "x": [1e400]}}}}"#),
            format!(r#"{{{HEAD}, "request_id": "327C526C42B3446BB86D9A919F1DC429"}}"#),
            r#"{"event": "cr\u0065ated\n", "timestamp": "2026-11-23T15:20:42\u002b01:00"}"#.into(),
            r#"{"timestamp": "2026-11-23 15:20:42.5-02:30", "event": ""}"#.into(),
            format!(r#"{{{HEAD}, "data": {{"id": "a\"b", "url": "\/api\/x"}}}}"#),
            format!(r#"{{{HEAD}, "data": {{"id": -1.5e3, "id": 2}}}}"#),
            format!(r#"{{{HEAD}, "data": {{"id": true, "id": null, "id": [1], "id": 9}}}}"#),
        ] {
            assert!(agrees(&text), "{text}");
        }
    }

    proptest::proptest! {
        /// Random token soups in each skipped place: the invariant always, and the fast path must
        /// take every soup that is one valid value.
        #[test]
        fn token_soups_agree(tokens in proptest::collection::vec(proptest::sample::select(&[
            "{", "}", "[", "]", ",", ":", " ", "\n", "\"", "\"a\"", "\"\\ud800\"", "\\", "u", "0", "1",
            "-", ".", "e", "+", "null", "true", "f", "\u{1}", "é", "\"k\": ", "\"id\": ",
            "\"url\": ", "\"event\": ",
        ][..]), 0..24)) {
            let value = tokens.concat();
            let valid = serde_json::from_str::<IgnoredAny>(&value).is_ok();
            for text in skipped_slots(&value) {
                let taken = agrees(&text);
                if valid {
                    proptest::prop_assert!(taken, "{}", text);
                }
            }
        }
    }
}
