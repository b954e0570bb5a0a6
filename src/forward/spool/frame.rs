//! The spool's record framing, pure (no I/O, no tokio) so it can be fuzzed and property-tested.
//!
//! A record is a fixed 40-byte header followed by the encoded event:
//!
//! ```text
//! offset size
//!  0     4    magic "WLSP"
//!  4     1    format version (1)
//!  5     3    reserved, zero
//!  8     4    crc32c (Castagnoli) of every byte after this field: bytes 12.. to the record's end
//! 12     4    payload length (u32 LE), bytes after the header
//! 16     8    sequence number (u64 LE), global across segments, from 1
//! 24    16    event id (UUID bytes)
//! 40     …    payload: the event's other fields (see `encode_payload`)
//! ```
//!
//! The checksum covers the length, so a flipped length bit is caught like any other (or, when it
//! points past the end, reported as such). The payload layout is hand-written rather than derived
//! (serde + postcard): it is our on-disk format across releases, so its byte layout must not move
//! when someone reorders a struct field, and the version byte is where it may change on purpose.
//! Every length is checked against what is actually there before anything is allocated.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::forward::Event;

/// The first bytes of every record: lets recovery and resynchronisation tell a record start from
/// arbitrary bytes cheaply before paying for a checksum.
pub const MAGIC: [u8; 4] = *b"WLSP";
/// The only payload layout this build reads and writes.
pub const VERSION: u8 = 1;
/// Fixed header size in bytes.
pub const HEADER_LEN: usize = 40;
/// Largest payload accepted, written or read (64 MiB). Bodies are capped far lower at intake (1 MB
/// by default); this bound exists so a corrupt or hostile length can never make a reader allocate
/// gigabytes.
pub const MAX_PAYLOAD: u32 = 64 << 20;

/// Why bytes are not a valid record. Offsets and lengths are for the caller's report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("short header: {have} of {HEADER_LEN} bytes")]
    ShortHeader { have: usize },
    #[error("bad magic")]
    BadMagic,
    #[error("unsupported record version {version} (flags {flags:#x})")]
    UnsupportedVersion { version: u8, flags: u32 },
    #[error("record length {len} over the {MAX_PAYLOAD}-byte limit")]
    TooLong { len: u64 },
    #[error("record length {len} past the end ({have} bytes there)")]
    LengthPastEnd { len: u32, have: usize },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("payload does not decode: {0}")]
    Decode(&'static str),
}

/// A parsed header: what is needed to read the payload and check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub seq: u64,
    pub id: Uuid,
    /// Payload bytes after the header.
    pub len: u32,
    stored_crc: u32,
    /// crc32c over header bytes 12..40, so the payload check needs no copy of the header.
    partial_crc: u32,
}

impl Header {
    /// Bytes the whole record occupies.
    pub fn record_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.len)
    }

    /// Checks the payload against the stored checksum and decodes the event (its body copied).
    pub fn decode_payload(&self, payload: &[u8]) -> Result<Event, FrameError> {
        self.check(payload)?;
        decode_payload(self.id, payload, Bytes::copy_from_slice)
    }

    /// Like [`decode_payload`](Self::decode_payload), but the body is a slice of `payload`, not a
    /// copy: the spool reader hands out events that share the chunk they were read in.
    pub fn decode_shared(&self, payload: &Bytes) -> Result<Event, FrameError> {
        self.check(payload)?;
        decode_payload(self.id, payload, |body| payload.slice_ref(body))
    }

    fn check(&self, payload: &[u8]) -> Result<(), FrameError> {
        if payload.len() != self.len as usize {
            return Err(FrameError::LengthPastEnd {
                len: self.len,
                have: payload.len(),
            });
        }
        let computed = crc32c::crc32c_append(self.partial_crc, payload);
        if computed != self.stored_crc {
            return Err(FrameError::ChecksumMismatch {
                stored: self.stored_crc,
                computed,
            });
        }
        Ok(())
    }
}

/// Parses and checks the fixed header at the start of `buf` (magic, version, length cap). The
/// checksum needs the payload and is checked by [`Header::decode_payload`].
pub fn decode_header(buf: &[u8]) -> Result<Header, FrameError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err(FrameError::ShortHeader { have: buf.len() });
    };
    if h[0..4] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let flags = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) >> 8;
    if h[4] != VERSION || flags != 0 {
        return Err(FrameError::UnsupportedVersion {
            version: h[4],
            flags,
        });
    }
    let stored_crc = u32::from_le_bytes(arr(&h[8..12]));
    let len = u32::from_le_bytes(arr(&h[12..16]));
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLong {
            len: u64::from(len),
        });
    }
    Ok(Header {
        seq: u64::from_le_bytes(arr(&h[16..24])),
        id: Uuid::from_bytes(arr(&h[24..40])),
        len,
        stored_crc,
        partial_crc: crc32c::crc32c(&h[12..40]),
    })
}

/// Decodes the one record at the start of `buf`; returns it and the bytes it occupied.
pub fn decode(buf: &[u8]) -> Result<(u64, Event, usize), FrameError> {
    let header = decode_header(buf)?;
    let end = HEADER_LEN + header.len as usize;
    let Some(payload) = buf.get(HEADER_LEN..end) else {
        return Err(FrameError::LengthPastEnd {
            len: header.len,
            have: buf.len() - HEADER_LEN,
        });
    };
    let event = header.decode_payload(payload)?;
    Ok((header.seq, event, end))
}

/// Appends the record for `event` with sequence number `seq` to `out`. Fails only when the encoded
/// event would exceed [`MAX_PAYLOAD`]; `out` is then left as it was.
pub fn encode(seq: u64, event: &Event, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let len = payload_len(event);
    if len > u64::from(MAX_PAYLOAD) {
        return Err(FrameError::TooLong { len });
    }
    let start = out.len();
    out.reserve(HEADER_LEN + len as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, 0, 0, 0]);
    out.extend_from_slice(&[0; 4]); // checksum, filled in below
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(event.id.as_bytes());
    encode_payload(event, out);
    debug_assert_eq!(out.len() - start, HEADER_LEN + len as usize);
    let crc = crc32c::crc32c(&out[start + 12..]);
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// Bit in the presence byte for each optional field, in payload order.
const HAS_EVENT_TYPE: u8 = 1;
const HAS_DELIVERY_ID: u8 = 2;
const HAS_CONTENT_TYPE: u8 = 4;
const HAS_CLIENT: u8 = 8;

/// Payload v1: `received_at` as i64 seconds + u32 nanoseconds; a presence byte for the optional
/// fields; then hook, provider and each present optional string as u32 length + UTF-8; then the
/// body as u32 length + bytes, which must end exactly at the payload's end.
fn encode_payload(e: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(&e.received_at.timestamp().to_le_bytes());
    out.extend_from_slice(&e.received_at.timestamp_subsec_nanos().to_le_bytes());
    let optional = optional_fields(e);
    let mut presence = 0u8;
    for (bit, field) in optional {
        if field.is_some() {
            presence |= bit;
        }
    }
    out.push(presence);
    put(out, e.hook.as_bytes());
    put(out, e.provider.as_bytes());
    for (_, field) in optional {
        if let Some(s) = field {
            put(out, s.as_bytes());
        }
    }
    put(out, &e.body);
}

fn optional_fields(e: &Event) -> [(u8, Option<&String>); 4] {
    [
        (HAS_EVENT_TYPE, e.event_type.as_ref()),
        (HAS_DELIVERY_ID, e.delivery_id.as_ref()),
        (HAS_CONTENT_TYPE, e.content_type.as_ref()),
        (HAS_CLIENT, e.client.as_ref()),
    ]
}

fn payload_len(e: &Event) -> u64 {
    let strings = optional_fields(e)
        .iter()
        .filter_map(|(_, f)| f.map(|s| 4 + s.len() as u64))
        .sum::<u64>();
    12 + 1
        + (4 + e.hook.len() as u64)
        + (4 + e.provider.len() as u64)
        + strings
        + 4
        + e.body.len() as u64
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    // Callers bound the total by MAX_PAYLOAD first, so every part fits a u32.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// `body` makes the event's body from its bytes within `payload` (a copy, or a shared slice).
fn decode_payload(
    id: Uuid,
    payload: &[u8],
    body: impl FnOnce(&[u8]) -> Bytes,
) -> Result<Event, FrameError> {
    let mut r = Cursor(payload);
    let secs = i64::from_le_bytes(arr(r.take(8)?));
    let nanos = u32::from_le_bytes(arr(r.take(4)?));
    let received_at = DateTime::<Utc>::from_timestamp(secs, nanos)
        .ok_or(FrameError::Decode("received_at out of range"))?;
    let presence = r.take(1)?[0];
    if presence & !(HAS_EVENT_TYPE | HAS_DELIVERY_ID | HAS_CONTENT_TYPE | HAS_CLIENT) != 0 {
        return Err(FrameError::Decode("unknown field bits"));
    }
    let hook = r.string()?;
    let provider = r.string()?;
    let mut optional = |bit| {
        if presence & bit != 0 {
            r.string().map(Some)
        } else {
            Ok(None)
        }
    };
    let event_type = optional(HAS_EVENT_TYPE)?;
    let delivery_id = optional(HAS_DELIVERY_ID)?;
    let content_type = optional(HAS_CONTENT_TYPE)?;
    let client = optional(HAS_CLIENT)?;
    let body = body(r.bytes()?);
    if !r.0.is_empty() {
        return Err(FrameError::Decode("trailing bytes after the body"));
    }
    Ok(Event {
        id,
        hook,
        provider,
        event_type,
        delivery_id,
        received_at,
        content_type,
        client,
        body,
    })
}

/// A read position over the payload; every read checks the length first.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Decode("field runs past the payload"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let n = u32::from_le_bytes(arr(self.take(4)?));
        self.take(n as usize)
    }
    fn string(&mut self) -> Result<String, FrameError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| FrameError::Decode("string is not UTF-8"))
    }
}

/// A fixed-size array from a slice whose length the caller already checked.
fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
