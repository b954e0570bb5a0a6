//! Micro-benchmarks of the per-request CPU work, outside the HTTP stack: signature verification for
//! every provider, NetBox payload parsing, and formatting the event-log line (text and json).
//! Each runs on a ~1.6 kB NetBox body (tests/fixtures/netbox/v4.6.8-created.json) and a ~100 kB one
//! (the same event with a long `data.comments`).
//!
//! ```sh
//! cargo bench --bench hot_paths                  # all, about two minutes
//! cargo bench --bench hot_paths -- verify/netbox # one group or bench (a substring filter)
//! ```
//!
//! Measurement time is kept short on purpose (2 s per bench, 30 samples): the point is to compare
//! before and after a change on the same machine, not to publish absolute numbers.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::{HeaderMap, HeaderName, HeaderValue};
use strum::IntoEnumIterator;

use webhook_listener::client_ip::Client;
use webhook_listener::event_log::{EventRecord, LogFormat, Payload};
use webhook_listener::payload;
use webhook_listener::signature::{Algorithm, Encoding, Provider, Scheme, Secret, Verifier};

/// The independent signer the tests use: the bench verifies what a sender would send.
#[path = "../tests/common/sign.rs"]
mod sign;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/netbox/v4.6.8-created.json"
);
/// Target size of the large body, in bytes.
const LARGE: usize = 100_000;

/// The two bodies every bench runs on: (label, body).
fn bodies() -> Vec<(&'static str, Bytes)> {
    let small = std::fs::read_to_string(FIXTURE).expect("read the NetBox fixture");
    // A NetBox-shaped 100 kB body: the same event with a long Markdown `data.comments` (the first
    // `"comments": ""`; the second one is in the snapshot). serde_json escapes the newlines.
    let line = "Rack A-12 patched to core-sw-01 (ticket #4711) — see runbook §3.\n";
    let mut comments = String::new();
    while small.len() + comments.len() + comments.matches('\n').count() < LARGE {
        comments.push_str(line);
    }
    let quoted = serde_json::to_string(&comments).expect("a string serializes");
    let large = small.replacen(r#""comments": """#, &format!(r#""comments": {quoted}"#), 1);
    assert!(large.len() >= LARGE && large.len() < LARGE + 2 * line.len());
    vec![
        (size_label(small.len()), Bytes::from(small)),
        (size_label(large.len()), Bytes::from(large)),
    ]
}

fn size_label(n: usize) -> &'static str {
    if n < 10_000 {
        "1.6kB"
    } else {
        "100kB"
    }
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// A scheme and a secret it can use, per provider. The generic `hmac` one is SHA-1, as some
/// senders (Gogs, older Gitea) still use.
fn scheme_and_secret(p: Provider) -> (Scheme, Secret) {
    match p {
        Provider::StandardWebhooks => {
            let key = base64::engine::general_purpose::STANDARD
                .encode(b"bench-secret-key-32-bytes-long!!");
            (
                Scheme::StandardWebhooks,
                Secret::new(format!("whsec_{key}")),
            )
        }
        Provider::Hmac => (
            Scheme::Hmac {
                header: "x-signature".into(),
                algorithm: Algorithm::Sha1,
                encoding: Encoding::Hex,
                prefix: "sha1=".into(),
                delivery_id_header: None,
                event_header: None,
            },
            Secret::new("bench-secret"),
        ),
        p => (Scheme::from_provider(p), Secret::new("bench-secret")),
    }
}

fn bench_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    for (label, body) in bodies() {
        g.throughput(Throughput::Bytes(body.len() as u64));
        // Discord verifies with public keys, Linear needs its stamp in the body and Twilio a form
        // body or a signed URL: none of them fits a NetBox fixture signed with a secret.
        let fits =
            |p: &Provider| !matches!(p, Provider::Discord | Provider::Linear | Provider::Twilio);
        for p in Provider::iter().filter(fits) {
            let name = match p {
                Provider::Hmac => "hmac-sha1",
                p => p.name(),
            };
            let (scheme, secret) = scheme_and_secret(p);
            let mut headers = HeaderMap::new();
            for (k, v) in
                sign::request_headers(&scheme, secret.expose(), &body, now(), "bench-delivery-1")
            {
                headers.insert(
                    HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                    HeaderValue::from_str(&v).expect("header value"),
                );
            }
            let verifier = Verifier::new(scheme, &[secret], Duration::from_secs(300), false)
                .expect("verifier");
            let t = now();
            verifier
                .verify(&headers, body.clone(), t)
                .expect("the signed body verifies");
            g.bench_with_input(BenchmarkId::new(name, label), &body, |b, body| {
                b.iter(|| verifier.verify(black_box(&headers), body.clone(), t))
            });
        }
    }
    g.finish();
}

fn bench_parse_and_format(c: &mut Criterion) {
    let received_at = Utc::now();
    let client = Client::Known(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut g = c.benchmark_group("netbox");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    for (label, body) in bodies() {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("parse", label), &body, |b, v| {
            b.iter(|| {
                payload::netbox(black_box(v))
                    .expect("fixture parses")
                    .timestamp
            })
        });
        let ev = payload::netbox(&body).expect("fixture parses");
        for (fmt, format) in [
            ("format_text", LogFormat::Text),
            ("format_json", LogFormat::Json),
        ] {
            g.bench_with_input(BenchmarkId::new(fmt, label), &body, |b, body| {
                b.iter(|| {
                    // As the handler does: a fresh line buffer per event.
                    let mut line = Vec::with_capacity(body.len() + 320);
                    EventRecord {
                        received_at,
                        event_id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
                        hook: "/webhook/",
                        provider: "netbox",
                        delivery_id: None,
                        event: None,
                        client,
                        content_type: Some("application/json"),
                        payload: Payload::Netbox(&ev, black_box(body)),
                    }
                    .write(format, &mut line);
                    line
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_verify, bench_parse_and_format);
criterion_main!(benches);
