//! The fast NetBox parser's one promise: whenever `payload::fast::netbox` answers, serde (the
//! specification) accepts the same text and reads the same fields. `Debug` shows every field (a
//! `Cow` as its text, a `RawValue` as its raw text), so equal output means equal fields. When the
//! fast path declines, nothing is checked: serde decides alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_listener::payload::{self, NetboxEvent};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(fast) = payload::fast::netbox(text) else {
        return;
    };
    match serde_json::from_str::<NetboxEvent>(text) {
        Ok(slow) => assert_eq!(
            format!("{fast:?}"),
            format!("{slow:?}"),
            "fields differ for {text:?}"
        ),
        Err(e) => panic!("the fast path accepts what serde refuses ({e}): {text:?}"),
    }
});
