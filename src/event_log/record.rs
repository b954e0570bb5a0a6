//! The event log line: what an accepted event looks like on disk, in `text` or `json` format.
//!
//! Both formats end with the complete body, so nothing a sender sent is dropped. JSON bodies are
//! written byte for byte as sent, with line breaks (only ever insignificant whitespace in valid
//! JSON) turned into spaces, which guarantees one line per event whatever the sender's formatting.

use std::io::Write;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};

use serde::Deserialize;

use crate::client_ip::Client;
use crate::payload::NetboxEvent;

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
    pub hook: &'a str,
    pub provider: &'static str,
    pub delivery_id: Option<&'a str>,
    pub client: Client,
    pub payload: Payload<'a>,
}

/// The body in the form its hook's `payload` setting checked it.
pub enum Payload<'a> {
    Netbox(&'a NetboxEvent<'a>, &'a [u8]),
    Json(&'a [u8]),
    Raw(&'a [u8]),
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
        text_field(out, "hook", Some(self.hook));
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
        out.push(b'"');
        json_field(out, "hook", Some(self.hook));
        json_field(out, "provider", Some(self.provider));
        json_field(out, "delivery_id", self.delivery_id);
        json_field(out, "client", Some(&self.client.to_string()));
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
                if let Some(id) = obj.id {
                    out.extend_from_slice(b",\"object_id\":");
                    out.extend_from_slice(id.get().as_bytes());
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

/// ` key=value`, with the value JSON-quoted when it is empty or has spaces, quotes, `=` or control
/// characters, so a line always splits back into its fields.
fn text_field(out: &mut Vec<u8>, key: &str, value: Option<&str>) {
    let Some(value) = value else { return };
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    let bare = !value.is_empty()
        && value
            .bytes()
            .all(|b| b > b' ' && b != b'"' && b != b'=' && b != 0x7f);
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

fn json_string(out: &mut Vec<u8>, s: &str) {
    // Checked 32 bytes at a time without an early exit, so the loop vectorizes.
    let plain = s.as_bytes().chunks(32).all(|c| {
        c.iter()
            .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
    });
    if plain {
        // Nothing to escape (the usual case: paths, event names, user names).
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
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

/// Copies valid JSON byte for byte as it was sent, except that line breaks become spaces. In valid
/// JSON a raw CR or LF can only be insignificant whitespace (strings cannot hold them unescaped), so
/// the value is unchanged and the event stays on one line. Nothing is re-encoded or re-minified: the
/// common single-line body is one `memchr2` scan and one copy.
pub fn single_line_json(json: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(json);
    if memchr::memchr2(b'\n', b'\r', json).is_some() {
        for b in &mut out[start..] {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
