use proptest::prelude::*;

use super::*;
use crate::forward::testing::{any_event, event};

fn encoded(seq: u64, e: &Event) -> Vec<u8> {
    let mut out = Vec::new();
    encode(seq, e, &mut out).expect("fits");
    out
}

#[test]
fn round_trips_one_record_and_reports_its_length() {
    let e = event(7);
    let buf = encoded(42, &e);
    let (seq, back, used) = decode(&buf).expect("valid");
    assert_eq!((seq, used), (42, buf.len()));
    assert_eq!(back, e);
}

#[test]
fn absent_optional_fields_stay_absent() {
    let mut e = event(1);
    e.event_type = None;
    e.delivery_id = None;
    e.content_type = None;
    e.client = None;
    e.body = Bytes::new();
    let (_, back, _) = decode(&encoded(1, &e)).expect("valid");
    assert_eq!(back, e);
}

#[test]
fn records_concatenate_and_decode_in_turn() {
    let mut buf = encoded(1, &event(1));
    encode(2, &event(2), &mut buf).expect("fits");
    let (s1, e1, n1) = decode(&buf).expect("first");
    let (s2, e2, n2) = decode(&buf[n1..]).expect("second");
    assert_eq!((s1, s2, n1 + n2), (1, 2, buf.len()));
    assert_eq!((e1, e2), (event(1), event(2)));
}

#[test]
fn each_kind_of_damage_is_named() {
    let buf = encoded(3, &event(3));
    assert_eq!(
        decode(&buf[..10]).unwrap_err(),
        FrameError::ShortHeader { have: 10 }
    );
    let mut bad = buf.clone();
    bad[0] = b'X';
    assert_eq!(decode(&bad).unwrap_err(), FrameError::BadMagic);
    let mut bad = buf.clone();
    bad[4] = 9;
    assert!(matches!(
        decode(&bad).unwrap_err(),
        FrameError::UnsupportedVersion { version: 9, .. }
    ));
    assert!(matches!(
        decode(&buf[..buf.len() - 1]).unwrap_err(),
        FrameError::LengthPastEnd { .. }
    ));
    let mut bad = buf.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        decode(&bad).unwrap_err(),
        FrameError::ChecksumMismatch { .. }
    ));
    let mut huge = buf.clone();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode(&huge).unwrap_err(),
        FrameError::TooLong { .. }
    ));
}

#[test]
fn a_checksummed_but_malformed_payload_is_a_decode_error() {
    // A record whose checksum is right but whose payload is not an event: a writer bug or a
    // future format, not damage.
    let mut buf = Vec::from(MAGIC);
    buf.extend_from_slice(&[VERSION, 0, 0, 0, 0, 0, 0, 0]);
    buf.extend_from_slice(&3u32.to_le_bytes());
    buf.extend_from_slice(&1u64.to_le_bytes());
    buf.extend_from_slice(&[0; 16]);
    buf.extend_from_slice(b"abc");
    buf[12..16].copy_from_slice(&3u32.to_le_bytes());
    let crc = crc32c::crc32c(&buf[12..]);
    buf[8..12].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(decode(&buf).unwrap_err(), FrameError::Decode(_)));
}

#[test]
fn an_oversized_event_is_refused_and_leaves_the_buffer_alone() {
    let mut e = event(1);
    e.body = Bytes::from(vec![0u8; MAX_PAYLOAD as usize + 1]);
    let mut out = vec![1, 2, 3];
    assert!(matches!(
        encode(1, &e, &mut out),
        Err(FrameError::TooLong { .. })
    ));
    assert_eq!(out, [1, 2, 3]);
}

proptest! {
    #[test]
    fn any_event_round_trips(e in any_event(), seq in any::<u64>()) {
        let buf = encoded(seq, &e);
        let (s, back, used) = decode(&buf).expect("valid");
        prop_assert_eq!(s, seq);
        prop_assert_eq!(used, buf.len());
        prop_assert_eq!(back, e);
    }

    #[test]
    fn any_truncation_is_detected(e in any_event(), cut in any::<prop::sample::Index>()) {
        let buf = encoded(1, &e);
        let n = cut.index(buf.len());
        prop_assert!(decode(&buf[..n]).is_err());
    }

    /// A single flipped bit anywhere is caught: in the magic/version by their checks, anywhere
    /// after the checksum field by the checksum (crc32c detects every 1-bit error), in the
    /// checksum itself by the mismatch.
    #[test]
    fn any_bit_flip_is_detected(e in any_event(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut buf = encoded(1, &e);
        let i = at.index(buf.len());
        buf[i] ^= 1 << bit;
        prop_assert!(decode(&buf).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
    }
}

/// The fuzz seeds are written by a second, independent encoder (fuzz/seeds/make_seeds.py, with its
/// own crc32c): every one must decode, so the documented layout and this code agree.
#[test]
fn records_from_the_independent_python_encoder_decode() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/spool_frame");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("seeds") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
        let (seq, event, used) = decode(&bytes).expect("decodes");
        assert_eq!(used, bytes.len());
        assert_eq!(event.hook, "/netbox");
        assert_eq!(encoded(seq, &event), bytes, "canonical");
        seen += 1;
    }
    assert_eq!(seen, 4);
}
