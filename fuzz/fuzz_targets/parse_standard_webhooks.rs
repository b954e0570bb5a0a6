//! `parse::standard_webhooks` (`webhook-signature` / `svix-signature`: `v1,<base64> v1a,<...>`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_listener::signature::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(sigs) = parse::standard_webhooks(&text) {
        let v1_entries = text
            .split_ascii_whitespace()
            .filter(|e| e.starts_with("v1,"))
            .count();
        // Undecodable and other-version entries are skipped, never invented.
        assert!(!sigs.is_empty());
        assert!(sigs.len() <= v1_entries);
    }
});
