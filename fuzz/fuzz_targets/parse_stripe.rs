//! `parse::stripe` (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=...][,v0=...]`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_listener::signature::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(h) = parse::stripe(&text) {
        assert!(!h.v1.is_empty());
        assert!(h.unix >= 0);
        assert_eq!(parse::unix_seconds(&h.timestamp), Ok(h.unix));
        assert!(text.contains(h.timestamp.as_str()));
    }
});
