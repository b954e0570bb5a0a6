//! `parse::base64_digest` (Shopify `X-Shopify-Hmac-Sha256`, the generic hmac provider's base64).
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use webhook_listener::signature::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(bytes) = parse::base64_digest(&text) {
        // Padded or not, accepted base64 is canonical: it re-encodes to the trimmed input.
        let trimmed = text.trim().trim_end_matches('=');
        let again = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        assert_eq!(again, trimmed);
    }
});
