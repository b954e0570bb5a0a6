//! `Config::from_toml` on any UTF-8 text: an error or a config, never a panic. An error is one
//! inert line per problem. A config it accepts
//! has every hook's verifier built, and builds the live config as a SIGHUP reload would.
//!
//! `WEBHOOK_SECRET` is set so the shipped configs (`env:WEBHOOK_SECRET`) resolve fully. Note that
//! `file:` secret references are read for real, as the server would.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use webhook_listener::config::Config;
use webhook_listener::live_config::LiveConfig;

fuzz_target!(|data: &[u8]| {
    static ENV: Once = Once::new();
    ENV.call_once(|| std::env::set_var("WEBHOOK_SECRET", "my-webhook-secret"));

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_toml(text, "fuzz") {
        Ok(c) => c,
        Err(e) => {
            // One line per problem, each naming the origin, none carrying a raw control character.
            let lines = e.lines();
            assert!(!lines.is_empty());
            for l in &lines {
                assert!(l.starts_with("fuzz:"), "{l:?}");
                assert!(
                    !l.chars().any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
                    "{l:?}"
                );
            }
            return;
        }
    };
    assert!(!config.hooks.is_empty());
    for (i, h) in config.hooks.iter().enumerate() {
        assert!(h.path.starts_with('/'));
        assert!(h.verifier.allows_unsigned() != (h.verifier.key_count() > 0));
        assert!(config.hooks[..i].iter().all(|o| o.path != h.path));
    }
    let live = LiveConfig::new(&config, &webhook_listener::metrics::Metrics::new());
    assert_eq!(live.hooks.len(), config.hooks.len());
});
