//! Issue 11, hole 7: values a sender spells in ASCII JSON (`\u009b`, `\u0085`, `\u2028`, `\u001b`)
//! must not reach the event log as raw controls or line separators.

use crate::common::*;

/// Python's `str.splitlines` boundaries.
const LINE_BREAKS: &[char] = &[
    '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\u{85}', '\u{2028}', '\u{2029}',
];

#[tokio::test]
async fn escaped_controls_in_an_ascii_body_stay_escaped_in_both_log_formats() {
    for log in ["format = \"text\"", "format = \"json\""] {
        let server = Server::netbox("", log);
        let mut sent = 0;
        for request_id in [
            "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a11",
            "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a12",
        ] {
            let body = format!(
                r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": "\u0085", "username": "\u009b2J", "request_id": "{request_id}", "data": {{"id": 1, "url": "\u2028x", "name": "\u001b[31mred"}}}}"#
            );
            assert!(body.is_ascii());
            let (status, json) = post_netbox(&server.url("/webhook/"), body.as_bytes()).await;
            assert_eq!(status, 200, "{log}: {json}");
            sent += 1;
        }
        let text = std::fs::read_to_string(&server.log_path).expect("log is UTF-8");
        let lines: Vec<&str> = text.trim_end_matches('\n').split(LINE_BREAKS).collect();
        assert_eq!(lines.len(), sent, "{log}: one line per event: {text:?}");
        for line in lines {
            assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
                "{log}: control in {line:?}"
            );
        }
    }
}
