//! The event log line: what an accepted event looks like on disk, in `text` or `json` format.
//!
//! Both formats end with the complete body, so nothing a sender sent is dropped. JSON bodies are
//! written byte for byte as sent, with line breaks (only ever insignificant whitespace in valid
//! JSON) turned into spaces, which guarantees one line per event whatever the sender's formatting.

use std::io::Write;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};

use serde::Deserialize;
use uuid::Uuid;

use crate::client_ip::Client;
use crate::diagnostics::is_hostile;
use crate::forward::Event;
use crate::payload::{self, decoded_string, NetboxEvent, PayloadKind};

/// How the event log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `key=value` fields then the payload as compact JSON: for people reading `tail -f`.
    Text,
    /// One JSON object per line: for log shippers and `jq`.
    Json,
}

/// An accepted event, borrowed from the request that carried it.
pub struct EventRecord<'a> {
    pub received_at: DateTime<Utc>,
    /// UUIDv7 given at intake; the same in the spool and every forwarded message.
    pub event_id: Uuid,
    pub hook: &'a str,
    pub provider: &'a str,
    pub delivery_id: Option<&'a str>,
    /// The event type (see `signature::EventSource`). A NetBox payload logs its own `event` and
    /// `model` fields instead, so this is not written for it.
    pub event: Option<&'a str>,
    pub client: Client,
    /// The request's `Content-Type`, as sent: JSON lines only, so a replayed event keeps it.
    pub content_type: Option<&'a str>,
    pub payload: Payload<'a>,
}

/// The body in the form its hook's `payload` setting checked it.
pub enum Payload<'a> {
    Netbox(&'a NetboxEvent<'a>, &'a [u8]),
    Json(&'a [u8]),
    Raw(&'a [u8]),
}

/// The line intake wrote for `event`, rebuilt from its spool record: the same fields and the same
/// payload form, for a log repaired after a power loss (`wal`). `kind` is how the event's hook
/// checks bodies now; a body that no longer passes that check is written as JSON or raw, so nothing
/// is dropped.
pub fn line_for(event: &Event, kind: PayloadKind, format: LogFormat) -> Vec<u8> {
    let body = &event.body[..];
    let netbox;
    let as_json = || match payload::json(body) {
        Ok(()) => Payload::Json(body),
        Err(_) => Payload::Raw(body),
    };
    let payload = match kind {
        PayloadKind::Netbox => match payload::netbox(body) {
            Ok(n) => {
                netbox = n;
                Payload::Netbox(&netbox, body)
            }
            Err(_) => as_json(),
        },
        PayloadKind::Json => as_json(),
        PayloadKind::Raw => Payload::Raw(body),
    };
    let client = event
        .client
        .as_deref()
        .and_then(|c| c.parse().ok())
        .map_or(Client::Unknown, Client::Known);
    let mut out = Vec::with_capacity(body.len() + 512);
    EventRecord {
        received_at: event.received_at,
        event_id: event.id,
        hook: &event.hook,
        provider: &event.provider,
        delivery_id: event.delivery_id.as_deref(),
        event: event.event_type.as_deref(),
        client,
        content_type: event.content_type.as_deref(),
        payload,
    }
    .write(format, &mut out);
    out
}

/// The event id a log line was written with (both formats put it first among the fields), or
/// `None` for a line that is not one of ours (or torn before its id).
pub fn line_event_id(line: &[u8]) -> Option<Uuid> {
    const KEYS: [&[u8]; 2] = [b" event_id=", b"\"event_id\":\""];
    let head = &line[..line.len().min(128)];
    KEYS.iter().find_map(|key| {
        let at = head.windows(key.len()).position(|w| w == *key)? + key.len();
        let text = std::str::from_utf8(line.get(at..at + 36)?).ok()?;
        Uuid::try_parse(text).ok()
    })
}

impl EventRecord<'_> {
    /// Appends the record and a newline to `out`.
    pub fn write(&self, format: LogFormat, out: &mut Vec<u8>) {
        match format {
            LogFormat::Text => self.write_text(out),
            LogFormat::Json => self.write_json(out),
        }
        out.push(b'\n');
    }

    fn write_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            self.received_at
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .as_bytes(),
        );
        out.extend_from_slice(b" event_id=");
        out.extend_from_slice(
            self.event_id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        text_field(out, "hook", Some(self.hook));
        if !matches!(self.payload, Payload::Netbox(..)) {
            text_field(out, "event", self.event);
        }
        if let Payload::Netbox(ev, _) = &self.payload {
            text_field(out, "event", Some(&ev.event));
            text_field(out, "model", ev.model());
            if let Some(id) = ev.request_id() {
                text_field(out, "request_id", Some(&id.to_string()));
            }
            text_field(out, "username", ev.user());
            if let Some(obj) = ev.object() {
                if let Some(id) = obj.id {
                    text_field(out, "id", Some(id.get()));
                }
                text_field(out, "url", obj.url.as_deref());
            }
        }
        text_field(out, "delivery_id", self.delivery_id);
        text_field(out, "client", Some(&self.client.to_string()));
        out.push(b' ');
        match self.payload {
            Payload::Netbox(_, body) | Payload::Json(body) => single_line_json(body, out),
            Payload::Raw(body) => raw_value(body, out),
        }
    }

    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"received_at\":\"");
        out.extend_from_slice(
            self.received_at
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"event_id\":\"");
        out.extend_from_slice(
            self.event_id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        out.push(b'"');
        json_field(out, "hook", Some(self.hook));
        json_field(out, "provider", Some(self.provider));
        json_field(out, "delivery_id", self.delivery_id);
        json_field(out, "client", Some(&self.client.to_string()));
        json_field(out, "content_type", self.content_type);
        if !matches!(self.payload, Payload::Netbox(..)) {
            json_field(out, "event", self.event);
        }
        if let Payload::Netbox(ev, _) = &self.payload {
            json_field(out, "event", Some(&ev.event));
            json_field(
                out,
                "timestamp",
                Some(&ev.timestamp.0.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
            );
            json_field(out, "model", ev.model());
            if let Some(id) = ev.request_id() {
                json_field(out, "request_id", Some(&id.to_string()));
            }
            json_field(out, "username", ev.user());
            if let Some(obj) = ev.object() {
                if let Some(id) = obj.id.map(|id| id.get()) {
                    // A string is any JSON string (raw U+2028 and C1 included): decoded and
                    // escaped like every other field. A number's JSON text is safe as it is.
                    match decoded_string(id) {
                        Some(text) => json_field(out, "object_id", Some(&text)),
                        None if !id.starts_with('"') => {
                            out.extend_from_slice(b",\"object_id\":");
                            out.extend_from_slice(id.as_bytes());
                        }
                        // A lone surrogate escape is no text; the payload keeps it as sent.
                        None => {}
                    }
                }
                json_field(out, "object_url", obj.url.as_deref());
            }
        }
        match self.payload {
            Payload::Netbox(_, body) | Payload::Json(body) => {
                out.extend_from_slice(b",\"payload\":");
                single_line_json(body, out);
            }
            Payload::Raw(body) => match std::str::from_utf8(body) {
                Ok(text) => {
                    json_field(out, "payload_encoding", Some("utf-8"));
                    json_field(out, "payload", Some(text));
                }
                Err(_) => {
                    json_field(out, "payload_encoding", Some("base64"));
                    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
                    json_field(out, "payload", Some(&b64));
                }
            },
        }
        out.push(b'}');
    }
}

/// ` key=value`, with the value JSON-quoted when it is empty or has anything but printable ASCII
/// other than `"` and `=`: a line always splits back into its fields, and a terminal never sees a
/// control character from a sender.
fn text_field(out: &mut Vec<u8>, key: &str, value: Option<&str>) {
    let Some(value) = value else { return };
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    let bare = !value.is_empty()
        && value.as_bytes().chunks(32).all(|c| {
            c.iter().fold(true, |ok, &b| {
                ok & (b > b' ') & (b < 0x7f) & (b != b'"') & (b != b'=')
            })
        });
    if bare {
        out.extend_from_slice(value.as_bytes());
    } else {
        json_string(out, value);
    }
}

fn json_field(out: &mut Vec<u8>, key: &str, value: Option<&str>) {
    let Some(value) = value else { return };
    out.push(b',');
    json_string(out, key);
    out.push(b':');
    json_string(out, value);
}

/// A JSON string in which every character a terminal, a line reader or a display acts on
/// ([`is_hostile`]: C0, DEL, C1, U+2028, U+2029, the bidi controls) is a `\u` escape (serde_json
/// leaves all but C0 raw).
fn json_string(out: &mut Vec<u8>, s: &str) {
    // Checked 32 bytes at a time without an early exit, so the loop vectorizes.
    let plain = s.as_bytes().chunks(32).all(|c| {
        c.iter().fold(true, |ok, &b| {
            ok & (0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\')
        })
    });
    out.push(b'"');
    if plain {
        // Printable ASCII, nothing to escape (the usual case: paths, event names, user names).
        out.extend_from_slice(s.as_bytes());
    } else {
        escape_into(out, s);
    }
    out.push(b'"');
}

/// Writes `s` as the inside of a JSON string: `"` and `\\` escaped, every [`is_hostile`]
/// character as `\u` + 4 hex digits (or the short `\n`, `\r`, `\t`).
fn escape_into(out: &mut Vec<u8>, s: &str) {
    let mut rest = 0;
    for (i, c) in s.char_indices() {
        let short: &[u8] = match c {
            '"' => b"\\\"",
            '\\' => b"\\\\",
            '\n' => b"\\n",
            '\r' => b"\\r",
            '\t' => b"\\t",
            c if is_hostile(c) => b"",
            _ => continue,
        };
        out.extend_from_slice(&s.as_bytes()[rest..i]);
        rest = i + c.len_utf8();
        if short.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&s.as_bytes()[rest..]);
}

/// A raw (non-JSON) body in the text log: a JSON string when it is UTF-8, else `base64:` + base64.
fn raw_value(body: &[u8], out: &mut Vec<u8>) {
    match std::str::from_utf8(body) {
        Ok(text) => json_string(out, text),
        Err(_) => {
            out.extend_from_slice(b"base64:");
            let _ = write!(
                out,
                "{}",
                base64::engine::general_purpose::STANDARD.encode(body)
            );
        }
    }
}

/// Copies valid JSON as it was sent when it is printable ASCII, the usual case: one vectorised
/// scan and one copy. Otherwise the value is kept and only its spelling changes: in valid JSON a
/// raw C0 byte can only be insignificant whitespace (strings cannot hold one unescaped), so it
/// becomes a space; DEL and non-ASCII can only be inside strings, so DEL, C1, U+2028, U+2029 and
/// the bidi controls become `\u` escapes there. The event stays on one line for every reader, no
/// terminal control from a sender reaches the log, and no sender reorders how a line is shown.
pub fn single_line_json(json: &[u8], out: &mut Vec<u8>) {
    let printable = json
        .chunks(32)
        .all(|c| c.iter().fold(true, |ok, &b| ok & (0x20..0x7f).contains(&b)));
    if printable {
        out.extend_from_slice(json);
        return;
    }
    // Raw C0 first, in place: the usual non-printable body is only pretty-printed ASCII.
    let start = out.len();
    out.extend_from_slice(json);
    for b in &mut out[start..] {
        if *b < b' ' {
            *b = b' ';
        }
    }
    if json.is_ascii() && memchr::memchr(0x7f, json).is_none() {
        return;
    }
    // Callers pass JSON that parsed, hence UTF-8; a lossy decode keeps the guarantee regardless
    // (and borrows, without a copy, when the body is valid).
    let spaced = out.split_off(start);
    let text = String::from_utf8_lossy(&spaced);
    let b = text.as_bytes();
    // Only DEL and the lead bytes 0xC2 (C1), 0xE2 (U+2028/9, U+200E/F, U+202A-E, U+2066-9) and
    // 0xD8 (U+061C) can start what must be escaped. Lead bytes are never continuation bytes, so
    // every hit is a character boundary and the spans between hits are copied whole. memchr looks
    // for three bytes at once: the fourth, 0xD8 (Arabic script), sends the body to a scan of
    // every character.
    let hits: Box<dyn Iterator<Item = usize>> = if memchr::memchr(0xd8, b).is_some() {
        Box::new(text.char_indices().map(|(i, _)| i))
    } else {
        Box::new(memchr::memchr3_iter(0x7f, 0xc2, 0xe2, b))
    };
    let mut rest = 0;
    for i in hits {
        let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else {
            continue;
        };
        if !is_hostile(c) {
            continue;
        }
        out.extend_from_slice(&b[rest..i]);
        let _ = write!(out, "\\u{:04x}", u32::from(c));
        rest = i + c.len_utf8();
    }
    out.extend_from_slice(&b[rest..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_line_keeps_bytes_and_folds_line_breaks() {
        let mut out = Vec::new();
        single_line_json(b"{\"a\": \"x\\ny\",\r\n  \"b\": [1,\n2]}", &mut out);
        assert_eq!(out, b"{\"a\": \"x\\ny\",    \"b\": [1, 2]}");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["a"], "x\ny");
        out.clear();
        single_line_json(br#"{"event": "created"}"#, &mut out);
        assert_eq!(
            out, br#"{"event": "created"}"#,
            "single-line bodies are copied as sent"
        );
    }

    #[test]
    fn text_field_quotes_what_would_break_the_line() {
        let mut out = Vec::new();
        text_field(&mut out, "username", Some("bob smith"));
        text_field(&mut out, "model", Some("dcim.site"));
        text_field(&mut out, "x", Some("a=b\n"));
        text_field(&mut out, "e", Some(""));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#" username="bob smith" model=dcim.site x="a=b\n" e="""#
        );
    }

    /// The line boundaries of Python's `str.splitlines`, the widest common reader.
    const LINE_BREAKS: &[char] = &[
        '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\u{85}', '\u{2028}', '\u{2029}',
    ];

    fn hostile_string() -> impl Strategy<Value = String> {
        let nasty = prop::sample::select(vec![
            '\u{85}',
            '\u{9b}',
            '\u{2028}',
            '\u{2029}',
            '\u{202e}',
            '\u{2066}',
            '\u{200f}',
            '\u{61c}',
            '\x1b',
            '\x7f',
            '\n',
            '\r',
            '\t',
            '"',
            '=',
            ' ',
            '\\',
            '\0',
            'é',
            '\u{1F600}',
        ]);
        prop::collection::vec(prop_oneof![any::<char>(), nasty], 0..12).prop_map(String::from_iter)
    }

    /// JSON spelled in pure ASCII: every non-ASCII character as `\u` escapes, as NetBox sends it.
    fn ascii_json(v: &serde_json::Value, pretty: bool) -> Vec<u8> {
        let text = if pretty {
            serde_json::to_string_pretty(v).unwrap()
        } else {
            serde_json::to_string(v).unwrap()
        };
        let mut out = String::new();
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        out.into_bytes()
    }

    /// Checks the line is exactly one line for a Unicode-aware reader and holds no control.
    fn assert_one_clean_line(line: &[u8]) -> &str {
        let text = std::str::from_utf8(line).expect("log lines are UTF-8");
        let body = text.strip_suffix('\n').expect("ends with a newline");
        assert!(!body.contains(LINE_BREAKS), "line break inside {body:?}");
        assert!(!body.chars().any(is_hostile), "control inside {body:?}");
        body
    }

    /// Splits the `key=value` fields of a text line (after the timestamp) until the payload.
    fn text_fields(line: &str) -> (Vec<(String, String)>, &str) {
        let mut rest = &line[line.find(' ').unwrap()..];
        let mut fields = Vec::new();
        loop {
            rest = rest.strip_prefix(' ').expect("fields are space-separated");
            let Some(eq) = rest
                .find('=')
                .filter(|&eq| !rest[..eq].contains([' ', '"', '{']))
            else {
                return (fields, rest);
            };
            let key = rest[..eq].to_string();
            rest = &rest[eq + 1..];
            let value = if rest.starts_with('"') {
                let mut it = serde_json::Deserializer::from_str(rest).into_iter::<String>();
                let v = it.next().unwrap().expect("quoted values are JSON strings");
                rest = &rest[it.byte_offset()..];
                v
            } else {
                let end = rest.find(' ').unwrap_or(rest.len());
                let v = rest[..end].to_string();
                rest = &rest[end..];
                v
            };
            fields.push((key, value));
        }
    }

    proptest! {
        #[test]
        fn any_field_and_body_is_one_clean_line_that_reads_back(
            username in hostile_string(),
            model in hostile_string(),
            event in hostile_string(),
            url in hostile_string(),
            hook in hostile_string(),
            delivery_id in hostile_string(),
            content_type in hostile_string(),
            ascii in any::<bool>(),
            pretty in any::<bool>(),
            raw in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            let sent = serde_json::json!({
                "event": event, "timestamp": "2026-11-23T15:20:42.036573+00:00",
                "object_type": model, "username": username,
                "request_id": "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10",
                "data": {"id": 7, "url": url, "name": username},
            });
            let body = if ascii {
                ascii_json(&sent, pretty)
            } else if pretty {
                serde_json::to_vec_pretty(&sent).unwrap()
            } else {
                serde_json::to_vec(&sent).unwrap()
            };
            let ev = crate::payload::netbox(&body).unwrap();
            let event_id = Uuid::now_v7();
            let record = |payload| EventRecord {
                received_at: Utc::now(),
                event_id,
                hook: &hook,
                provider: "netbox",
                delivery_id: Some(&delivery_id),
                event: Some(&event),
                client: Client::Known(std::net::IpAddr::from([192, 0, 2, 1])),
                content_type: Some(&content_type),
                payload,
            };

            let mut out = Vec::new();
            record(Payload::Netbox(&ev, &body)).write(LogFormat::Json, &mut out);
            let line: serde_json::Value =
                serde_json::from_str(assert_one_clean_line(&out)).unwrap();
            prop_assert_eq!(&line["hook"], &hook);
            prop_assert_eq!(&line["event_id"], &event_id.to_string());
            prop_assert_eq!(&line["delivery_id"], &delivery_id);
            prop_assert_eq!(&line["content_type"], &content_type);
            prop_assert_eq!(&line["event"], &event);
            prop_assert_eq!(&line["model"], &model);
            prop_assert_eq!(&line["username"], &username);
            prop_assert_eq!(&line["object_url"], &url);
            prop_assert_eq!(&line["payload"], &sent);

            out.clear();
            record(Payload::Netbox(&ev, &body)).write(LogFormat::Text, &mut out);
            let (fields, payload) = text_fields(assert_one_clean_line(&out));
            let field = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
            prop_assert_eq!(field("hook"), Some(hook.clone()));
            prop_assert_eq!(field("event_id"), Some(event_id.to_string()));
            prop_assert_eq!(field("delivery_id"), Some(delivery_id.clone()));
            prop_assert_eq!(field("content_type"), None, "the text line keeps its fields");
            prop_assert_eq!(field("event"), Some(event.clone()));
            prop_assert_eq!(field("model"), Some(model.clone()));
            prop_assert_eq!(field("username"), Some(username.clone()));
            prop_assert_eq!(field("url"), Some(url.clone()));
            prop_assert_eq!(serde_json::from_str::<serde_json::Value>(payload).unwrap(), sent);

            // Not a NetBox payload: the record's own event type is written, escaped the same way.
            out.clear();
            record(Payload::Json(b"{}")).write(LogFormat::Json, &mut out);
            let line: serde_json::Value =
                serde_json::from_str(assert_one_clean_line(&out)).unwrap();
            prop_assert_eq!(&line["event"], &event);
            out.clear();
            record(Payload::Json(b"{}")).write(LogFormat::Text, &mut out);
            let (fields, _) = text_fields(assert_one_clean_line(&out));
            prop_assert_eq!(
                fields.iter().find(|(k, _)| k == "event").map(|(_, v)| v.clone()),
                Some(event.clone())
            );
            for format in [LogFormat::Text, LogFormat::Json] {
                out.clear();
                record(Payload::Raw(&raw)).write(format, &mut out);
                assert_one_clean_line(&out);
            }
        }
    }

    /// `data.id` is any JSON string or number: a string reaches the JSON line escaped, a number as
    /// sent, and a string that is no Unicode (a lone surrogate) not at all.
    #[test]
    fn object_ids_are_numbers_as_sent_or_escaped_strings() {
        let line = |id: &str| {
            let body = format!(
                r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "model": "dcim.site", "data": {{"id": {id}}}}}"#
            );
            let ev = crate::payload::netbox(body.as_bytes()).unwrap();
            let mut out = Vec::new();
            EventRecord {
                received_at: Utc::now(),
                event_id: Uuid::now_v7(),
                hook: "/h",
                provider: "netbox",
                delivery_id: None,
                event: None,
                client: Client::Known(std::net::IpAddr::from([192, 0, 2, 1])),
                content_type: None,
                payload: Payload::Netbox(&ev, body.as_bytes()),
            }
            .write(LogFormat::Json, &mut out);
            let text = assert_one_clean_line(&out).to_owned();
            // serde_json refuses a lone surrogate anywhere, the payload included.
            let v = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
            (text, v["object_id"].clone())
        };
        let (text, id) = line("\"a\u{2028}b\u{9b}2J\"");
        assert_eq!(id, "a\u{2028}b\u{9b}2J");
        assert!(text.contains(r#""object_id":"a\u2028b\u009b2J""#), "{text}");
        assert_eq!(line("-12.5e3").1, serde_json::json!(-12.5e3));
        assert!(line("7").0.contains(r#""object_id":7,"#));
        assert_eq!(line(r#""\u001b[2J""#).1, "\u{1b}[2J");
        assert!(!line(r#""\ud800""#).0.contains("object_id"));
    }

    #[test]
    fn printable_ascii_json_is_copied_as_sent() {
        let body = br#"{"username": "\u009b2J", "url": "\u2028x", "e": "\u001b[31m"}"#;
        let mut out = Vec::new();
        single_line_json(body, &mut out);
        assert_eq!(out, body);
        out.clear();
        single_line_json("{\"a\":\t\"\u{9b}\u{2028}\x7f\"}".as_bytes(), &mut out);
        assert_eq!(out, br#"{"a": "\u009b\u2028\u007f"}"#);
    }

    #[test]
    fn bidi_controls_are_escaped_in_the_payload_and_the_fields() {
        let body = "{\"u\": \"\u{202e}nimda\u{202c} \u{2066}\u{2069}\u{200e}\u{61c}\u{5e9}\"}";
        let mut out = Vec::new();
        single_line_json(body.as_bytes(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"u\": \"\\u202enimda\\u202c \\u2066\\u2069\\u200e\\u061c\u{5e9}\"}"
        );
        // Without Arabic script, the three-byte search finds the same.
        let mut out = Vec::new();
        single_line_json("[\"\u{202b}\u{e9}\u{2028}\"]".as_bytes(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[\"\\u202b\u{e9}\\u2028\"]"
        );
        let mut out = Vec::new();
        text_field(&mut out, "username", Some("\u{202e}x"));
        assert_eq!(out, br#" username="\u202ex""#);
    }

    #[test]
    fn raw_bodies_are_text_or_base64() {
        let mut out = Vec::new();
        raw_value(b"a\nb", &mut out);
        assert_eq!(out, br#""a\nb""#);
        out.clear();
        raw_value(&[0xff, 0x00], &mut out);
        assert_eq!(out, b"base64:/wA=");
    }
}
