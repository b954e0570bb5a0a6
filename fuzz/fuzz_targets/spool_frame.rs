//! `forward::spool::frame::decode` on hostile bytes (a damaged or forged spool segment): it must
//! never panic or over-allocate, and whatever it accepts must be exactly what `encode` writes for
//! that event (the format is canonical, so a record never has two readings). The chunked reader's
//! path (`Header::decode_shared`, bodies sliced out of the read buffer) must read the same bytes
//! the same way: the same event, or an error where `decode` has one.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use webhook_listener::forward::spool::frame;

fuzz_target!(|data: &[u8]| {
    let decoded = frame::decode(data);
    if let Ok((seq, event, used)) = &decoded {
        assert!(*used <= data.len());
        let mut again = Vec::new();
        frame::encode(*seq, event, &mut again).expect("a decoded event fits");
        assert_eq!(again.as_slice(), &data[..*used]);
    }
    let shared = Bytes::copy_from_slice(data);
    let sliced = frame::decode_header(data).ok().and_then(|h| {
        let end = frame::HEADER_LEN + h.len as usize;
        let payload = shared.get(frame::HEADER_LEN..end)?;
        Some(h.decode_shared(&shared.slice_ref(payload)))
    });
    match (&decoded, sliced) {
        (Ok((_, event, _)), Some(Ok(e))) => assert_eq!(event, &e),
        (Ok(_), other) => panic!("decode accepted what decode_shared did not: {other:?}"),
        (Err(_), Some(Ok(e))) => panic!("decode_shared accepted what decode refused: {e:?}"),
        (Err(_), _) => {}
    }
});
