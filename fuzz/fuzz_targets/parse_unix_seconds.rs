//! `parse::unix_seconds` (`webhook-timestamp`, `X-Slack-Request-Timestamp`, Stripe's `t=`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_listener::signature::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(secs) = parse::unix_seconds(&text) {
        assert!((0..1_000_000_000_000).contains(&secs));
        let digits = text.trim().trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        assert_eq!(secs.to_string(), digits);
    }
});
