//! `forward::spool::frame::decode` on hostile bytes (a damaged or forged spool segment): it must
//! never panic or over-allocate, and whatever it accepts must be exactly what `encode` writes for
//! that event (the format is canonical, so a record never has two readings).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_listener::forward::spool::frame;

fuzz_target!(|data: &[u8]| {
    if let Ok((seq, event, used)) = frame::decode(data) {
        assert!(used <= data.len());
        let mut again = Vec::new();
        frame::encode(seq, &event, &mut again).expect("a decoded event fits");
        assert_eq!(again.as_slice(), &data[..used]);
    }
});
