//! `parse::prefixed_hex` with the prefixes senders use: GitHub `sha256=`, Slack `v0=`, and the
//! generic hmac provider's (here `sha1=` and none). The first byte picks the prefix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_listener::signature::parse;

const PREFIXES: [&str; 4] = ["sha256=", "v0=", "sha1=", ""];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let prefix = PREFIXES[pick as usize % PREFIXES.len()];
    let text = String::from_utf8_lossy(rest);
    let result = parse::prefixed_hex(&text, prefix);
    if let Ok(bytes) = &result {
        let after = text
            .trim()
            .strip_prefix(prefix)
            .expect("accepted without its prefix");
        assert_eq!(parse::hex_digest(after).as_ref(), Ok(bytes));
    }
    // The prefix itself is never taken for part of the digest.
    if !text.trim().starts_with(prefix) {
        assert!(result.is_err());
    }
});
