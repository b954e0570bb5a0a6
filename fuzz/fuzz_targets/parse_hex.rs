//! `parse::hex_digest` (NetBox `X-Hook-Signature`, the generic hmac provider's hex encoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_listener::signature::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(bytes) = parse::hex_digest(&text) {
        // A decoded digest re-encodes to the trimmed input, up to case.
        let trimmed = text.trim();
        assert!(!bytes.is_empty());
        assert!(hex::encode(&bytes).eq_ignore_ascii_case(trimmed));
    }
});
