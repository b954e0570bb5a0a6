//! The accepted-event path after the signature: an unsigned verifier hands any body to
//! `payload::netbox`; an accepted event is written as a log line in both formats, which must be
//! exactly one line of UTF-8 and, for `json`, one JSON value. The same is checked for the `json`
//! and `raw` payload kinds. Separately, `event_log::record::single_line_json` on any text serde_json accepts
//! must give one line of JSON equal to it.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use webhook_listener::event_log::record::{single_line_json, EventRecord, LogFormat, Payload};
use webhook_listener::client_ip::Client;
use webhook_listener::payload;
use webhook_listener::signature::{Scheme, Verifier};

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    // GitHub, so the delivery id header is read too (NetBox sends none).
    V.get_or_init(|| Verifier::new(Scheme::Github, &[], Duration::from_secs(300), true).unwrap())
}

fn check_line(what: &str, format: LogFormat, line: &[u8]) {
    let newlines = line.iter().filter(|&&b| b == b'\n').count();
    assert!(
        newlines == 1 && line.ends_with(b"\n"),
        "{what} {format:?} line has {newlines} newlines (must be one, at the end): {:?}",
        String::from_utf8_lossy(line)
    );
    if let Err(e) = std::str::from_utf8(line) {
        panic!(
            "{what} {format:?} line is not UTF-8 ({e}): {:?}",
            String::from_utf8_lossy(line)
        );
    }
    if format == LogFormat::Json {
        // A JSON text by the grammar (RFC 8259). Not `serde_json::Value`: that refuses numbers
        // beyond f64 such as 1e400, which are valid JSON and are logged as the sender wrote them.
        if let Err(e) = serde_json::from_slice::<&RawValue>(line) {
            panic!(
                "{what} json line is not JSON ({e}): {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

fn write_both(what: &str, record: &EventRecord) {
    for format in [LogFormat::Text, LogFormat::Json] {
        let mut line = Vec::new();
        record.write(format, &mut line);
        check_line(what, format, &line);
    }
}

fuzz_target!(|data: &[u8]| {
    // single_line_json keeps any JSON value as it is, on one line.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        {
            let name = "single_line_json";
            let mut out = Vec::new();
            single_line_json(data, &mut out);
            assert!(!out.contains(&b'\n'), "{name} left a line break");
            assert!(!out.contains(&b'\r'), "{name} left a line break");
            match serde_json::from_slice::<serde_json::Value>(&out) {
                Ok(again) => assert_eq!(again, value, "{name} changed the value"),
                Err(e) => panic!(
                    "{name} output is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&out)
                ),
            }
        }
    }

    let mut headers = HeaderMap::new();
    // A delivery id that needs quoting in the text format.
    headers.insert(
        "x-github-delivery",
        HeaderValue::from_static("72d3162e-cc78 \"quoted\"=x"),
    );
    let verified = verifier()
        .verify(&headers, Bytes::copy_from_slice(data), 1_700_000_000)
        .expect("unsigned verifier accepts anything");
    let client: IpAddr = "2001:db8::7".parse().unwrap();
    let record = |payload| EventRecord {
        received_at: DateTime::<Utc>::from_timestamp(1_795_440_642, 237_645_000).unwrap(),
        event_id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
        hook: "/webhook/",
        provider: "netbox",
        delivery_id: verified.delivery_id(),
        event: verified.delivery_id(),
        client: Client::Known(client),
        content_type: verified.delivery_id(),
        payload,
    };

    if let Ok(event) = payload::netbox(verified.body()) {
        write_both(
            "netbox",
            &EventRecord {
                payload: Payload::Netbox(&event, verified.body()),
                ..record(Payload::Raw(b""))
            },
        );
    }
    if payload::json(verified.body()).is_ok() {
        write_both("json", &record(Payload::Json(verified.body())));
    }
    write_both("raw", &record(Payload::Raw(verified.body())));
});
