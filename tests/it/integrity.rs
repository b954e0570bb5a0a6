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

/// A NetBox `data.id` may be any JSON string: one holding raw U+2028 and C1 characters (legal
/// unescaped in JSON) must reach the JSON log's `object_id` escaped, not raw, while the line reads
/// back to the same id; a numeric id stays a number.
#[tokio::test]
async fn a_string_object_id_with_raw_separators_is_escaped_in_the_json_log() {
    let server = Server::netbox("", "format = \"json\"");
    let hostile = "a\u{2028}b\u{9b}2J\u{85}c";
    for (request_id, id) in [
        (
            "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a21",
            format!("\"{hostile}\""),
        ),
        ("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a22", "42".to_owned()),
    ] {
        let body = format!(
            r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": "dcim.site", "username": "admin", "request_id": "{request_id}", "data": {{"id": {id}, "url": "/api/dcim/sites/1/"}}}}"#
        );
        let (status, json) = post_netbox(&server.url("/webhook/"), body.as_bytes()).await;
        assert_eq!(status, 200, "{json}");
    }
    let text = std::fs::read_to_string(&server.log_path).expect("log is UTF-8");
    let lines: Vec<&str> = text.trim_end_matches('\n').split(LINE_BREAKS).collect();
    assert_eq!(lines.len(), 2, "one line per event: {text:?}");
    for line in &lines {
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
            "control in {line:?}"
        );
    }
    assert!(
        lines[0].contains(r#""object_id":"a\u2028b\u009b2J\u0085c""#),
        "{}",
        lines[0]
    );
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["object_id"], hostile);
    let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(second["object_id"], 42);
}

/// The bidirectional controls (`Bidi_Control`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A sender's bidi overrides and isolates (raw, or spelled `\u202e` in ASCII JSON) would make a
/// log line show its fields in another order than they were written ("Trojan Source"): in both
/// formats they are `\u` escapes, in the fields and in the payload, and the JSON line reads back to
/// what was sent.
#[tokio::test]
async fn bidi_controls_are_escaped_in_both_log_formats() {
    let user = "\u{202e}nimda\u{202c}\u{2066}x\u{2069}\u{200f}\u{61c}";
    for log in ["format = \"text\"", "format = \"json\""] {
        let server = Server::netbox("", log);
        let raw = format!(
            r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": "dcim.site", "username": "{user}", "request_id": "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a31", "data": {{"id": "{user}", "url": "/{user}"}}}}"#
        );
        let ascii = raw.replace(user, r"\u202enimda\u202c\u2066x\u2069\u200f\u061c");
        assert!(ascii.is_ascii());
        for body in [&raw, &ascii] {
            let (status, json) = post_netbox(&server.url("/webhook/"), body.as_bytes()).await;
            assert_eq!(status, 200, "{log}: {json}");
        }
        let text = std::fs::read_to_string(&server.log_path).expect("log is UTF-8");
        assert!(!text.chars().any(is_bidi_control), "{log}: {text:?}");
        assert!(text.contains(r"\u202enimda\u202c"), "{log}: {text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{log}: {text:?}");
        if log.contains("json") {
            for line in lines {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["username"], user, "{line}");
                assert_eq!(v["object_id"], user, "{line}");
                assert_eq!(v["payload"]["username"], user, "{line}");
            }
        } else {
            for line in lines {
                assert!(line.contains(r#" username="\u202enimda"#), "{line}");
                assert_eq!(line_payload(line)["data"]["id"], user, "{line}");
            }
        }
    }
}
