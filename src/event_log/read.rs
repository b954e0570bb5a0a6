//! Reading the JSON event log back: one line becomes the [`Event`] the service spooled for it (same
//! id, hook, provider, event type, delivery id, time, content type and body as logged), for
//! `replay --from-log`. The body is the logged `payload`: a JSON body as logged, so with its line
//! breaks folded into spaces; a raw body exactly (`payload_encoding` utf-8 or base64).

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::forward::Event;

/// The content type a JSON payload gets when its line has none (logs written before the field).
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Why a line is not an event: our words, a field name and a column, never the line's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not JSON ({0})")]
    Syntax(String),
    #[error("not an event log line: {0}")]
    Shape(String),
    #[error("payload: {0}")]
    Payload(&'static str),
}

/// The fields replay needs; the rest of the line (NetBox's typed fields) is not read.
#[derive(Deserialize)]
struct LogLine<'a> {
    received_at: DateTime<Utc>,
    event_id: Uuid,
    hook: String,
    provider: String,
    delivery_id: Option<String>,
    client: Option<String>,
    content_type: Option<String>,
    event: Option<String>,
    /// NetBox only: the event type is `<model>.<event>`, as intake builds it.
    model: Option<String>,
    payload_encoding: Option<String>,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// Parses one line (without its newline) of a `format = "json"` event log.
pub fn parse_json_line(line: &[u8]) -> Result<Event, ReadError> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let l: LogLine = serde_path_to_error::deserialize(&mut de).map_err(describe)?;
    de.end().map_err(|e| ReadError::Syntax(position(&e)))?;
    let event_type = match (l.model, l.event) {
        (Some(model), Some(event)) => Some(format!("{model}.{event}")),
        (_, event) => event,
    };
    let text = || -> Result<String, ReadError> {
        serde_json::from_str(l.payload.get()).map_err(|_| ReadError::Payload("not a string"))
    };
    let (body, content_type) = match l.payload_encoding.as_deref() {
        None => (
            Bytes::copy_from_slice(as_logged(line, l.payload.get().as_bytes())),
            Some(
                l.content_type
                    .unwrap_or_else(|| JSON_CONTENT_TYPE.to_owned()),
            ),
        ),
        Some("utf-8") => (Bytes::from(text()?), l.content_type),
        Some("base64") => (
            base64::engine::general_purpose::STANDARD
                .decode(text()?)
                .map(Bytes::from)
                .map_err(|_| ReadError::Payload("not valid base64"))?,
            l.content_type,
        ),
        Some(_) => {
            return Err(ReadError::Payload(
                "payload_encoding is neither utf-8 nor base64",
            ))
        }
    };
    Ok(Event {
        id: l.event_id,
        hook: l.hook,
        provider: l.provider,
        event_type,
        delivery_id: l.delivery_id,
        received_at: l.received_at,
        content_type,
        client: l.client,
        body,
    })
}

/// A JSON payload with the whitespace around it that the parser steps over: the writer puts the
/// body right after `"payload":` and before the line's closing `}`, so the spaces on either side
/// are the body's own folded line breaks (a trailing newline, say). With them the body is exactly
/// as logged, and as long as the one sent.
fn as_logged<'a>(line: &'a [u8], raw: &'a [u8]) -> &'a [u8] {
    // `raw` borrows from `line` (the struct borrows it); checked, not assumed.
    let Some(start) = (raw.as_ptr() as usize).checked_sub(line.as_ptr() as usize) else {
        return raw;
    };
    let end = start + raw.len();
    if end > line.len() || &line[start..end] != raw {
        return raw;
    }
    let lead = line[..start]
        .iter()
        .rev()
        .take_while(|&&b| b == b' ')
        .count();
    let trail = line[end..].iter().take_while(|&&b| b == b' ').count();
    if line[end + trail..] != *b"}" {
        // The payload is not the line's last field (not a line we wrote): the value alone.
        return raw;
    }
    &line[start - lead..end + trail]
}

/// Whether `line` is a `format = "text"` line (`<RFC 3339 time> event_id=…`), so a text log is
/// refused as a whole instead of every line being counted unparsable.
pub fn is_text_line(line: &[u8]) -> bool {
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let time = std::str::from_utf8(&line[..space]).ok();
    time.is_some_and(|t| DateTime::parse_from_rfc3339(t).is_ok())
        && line[space..].starts_with(b" event_id=")
}

fn position(e: &serde_json::Error) -> String {
    format!("at column {}", e.column())
}

/// serde's own messages can quote the value they refused; these keep to the field's name.
fn describe(e: serde_path_to_error::Error<serde_json::Error>) -> ReadError {
    let path = e.path().to_string();
    let inner = e.inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let msg = inner.to_string();
            // "missing field `x`" names one of our fields, nothing from the line.
            if msg.starts_with("missing field `") {
                let field = msg.split('`').nth(1).unwrap_or("?");
                ReadError::Shape(format!("missing field {field}"))
            } else {
                ReadError::Shape(format!("field {path} has the wrong type or form"))
            }
        }
        _ => ReadError::Syntax(position(inner)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_ip::Client;
    use crate::event_log::{EventRecord, LogFormat, Payload};

    fn line(content_type: Option<&str>, event: Option<&str>, payload: Payload) -> Vec<u8> {
        let mut out = Vec::new();
        EventRecord {
            received_at: DateTime::from_timestamp(1_795_440_642, 237_645_000).expect("time"),
            event_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            hook: "/h\"ook\u{2028}",
            provider: "github",
            delivery_id: Some("d-1"),
            event,
            client: Client::Known(std::net::IpAddr::from([192, 0, 2, 1])),
            content_type,
            payload,
        }
        .write(LogFormat::Json, &mut out);
        assert_eq!(out.pop(), Some(b'\n'));
        out
    }

    #[test]
    fn a_json_body_comes_back_as_logged_with_every_field() {
        let body = b"{\"a\": \"x\\ny\",\r\n  \"b\": [1,\n2]}";
        let l = line(
            Some("application/json; charset=utf-8"),
            Some("push"),
            Payload::Json(body),
        );
        let ev = parse_json_line(&l).expect("parses");
        assert_eq!(ev.id.to_string(), "01900000-0000-7000-8000-000000000001");
        assert_eq!(ev.hook, "/h\"ook\u{2028}");
        assert_eq!(ev.provider, "github");
        assert_eq!(ev.event_type.as_deref(), Some("push"));
        assert_eq!(ev.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(ev.client.as_deref(), Some("192.0.2.1"));
        assert_eq!(ev.received_at.timestamp_micros(), 1_795_440_642_237_645);
        assert_eq!(
            ev.content_type.as_deref(),
            Some("application/json; charset=utf-8")
        );
        // Line breaks folded, as the log holds it.
        assert_eq!(&ev.body[..], b"{\"a\": \"x\\ny\",    \"b\": [1, 2]}");
        let folded = parse_json_line(&line(None, None, Payload::Json(b"\n{\"a\":1}\r\n")));
        assert_eq!(&folded.expect("parses").body[..], b" {\"a\":1}  ");
        assert_eq!(
            parse_json_line(&line(None, None, Payload::Json(b"{}")))
                .expect("parses")
                .content_type
                .as_deref(),
            Some(JSON_CONTENT_TYPE),
            "an older line without content_type"
        );
    }

    #[test]
    fn raw_bodies_come_back_byte_for_byte() {
        for body in [
            &b"a\nb\r\n\x1b[2J\xc2\x85"[..],
            &[0xff, 0x00, 0xfe, b'\n'][..],
        ] {
            let ev = parse_json_line(&line(Some("text/plain"), None, Payload::Raw(body)))
                .expect("parses");
            assert_eq!(&ev.body[..], body);
            assert_eq!(ev.content_type.as_deref(), Some("text/plain"));
            assert_eq!(ev.event_type, None);
        }
        let ev = parse_json_line(&line(None, None, Payload::Raw(b"x"))).expect("parses");
        assert_eq!(ev.content_type, None, "no JSON default for a raw body");
    }

    #[test]
    fn a_netbox_line_gives_model_dot_event() {
        let body = br#"{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": "dcim.site", "username": "admin", "request_id": "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10", "data": {"id": 1, "url": "/api/dcim/sites/1/"}, "snapshots": {}}"#;
        let ev = crate::payload::netbox(body).expect("netbox");
        let parsed =
            parse_json_line(&line(None, None, Payload::Netbox(&ev, body))).expect("parses");
        assert_eq!(parsed.event_type.as_deref(), Some("dcim.site.created"));
        assert_eq!(&parsed.body[..], &body[..]);
    }

    #[test]
    fn errors_name_fields_and_columns_never_the_content() {
        let good = line(None, None, Payload::Json(b"{}"));
        let text = String::from_utf8(good).expect("utf-8");
        let secret_id = text.replace("01900000-0000-7000-8000-000000000001", "s3cret-value");
        for bad in [
            "{\"received_at\": 12",
            "s3cret-value",
            secret_id.as_str(),
            "{\"event_id\": \"s3cret-value\"}",
            r#"{"payload_encoding":"base64","payload":"s3cret-value!"}"#,
        ] {
            let e = parse_json_line(bad.as_bytes()).expect_err(bad).to_string();
            assert!(!e.contains("s3cret"), "{e}");
        }
        let e = parse_json_line(secret_id.as_bytes()).expect_err("bad id");
        assert_eq!(
            e,
            ReadError::Shape("field event_id has the wrong type or form".into())
        );
        let e = parse_json_line(b"{}").expect_err("empty");
        assert!(
            matches!(e, ReadError::Shape(ref m) if m.starts_with("missing field")),
            "{e}"
        );
        let mut trailing = text.clone().into_bytes();
        trailing.extend_from_slice(b" x");
        assert!(matches!(
            parse_json_line(&trailing),
            Err(ReadError::Syntax(_))
        ));
    }

    #[test]
    fn a_text_line_is_recognised() {
        let mut out = Vec::new();
        EventRecord {
            received_at: Utc::now(),
            event_id: Uuid::now_v7(),
            hook: "/h",
            provider: "github",
            delivery_id: None,
            event: None,
            client: Client::Unknown,
            content_type: None,
            payload: Payload::Json(b"{}"),
        }
        .write(LogFormat::Text, &mut out);
        assert!(is_text_line(&out));
        assert!(!is_text_line(&line(None, None, Payload::Json(b"{}"))));
        assert!(!is_text_line(b"garbage"));
    }
}
