//! The NATS JetStream and Redis Streams sinks against real `nats-server` (2.9 on Debian) and
//! `redis-server` processes, read back with real clients. No mocks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::brokers::{free_port, Nats, Redis};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;
use webhook_listener::forward::nats::{self as nats_sink, NatsAuth, NatsConfig, NatsSink};
use webhook_listener::forward::redis::{self as redis_sink, RedisConfig, RedisSink};
use webhook_listener::forward::{DeliveryError, Event, Sink};

const STREAM: &str = "WEBHOOKS";

fn event(n: u128, delivery_id: Option<&str>, event_type: Option<&str>, body: &[u8]) -> Event {
    Event {
        id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n),
        hook: "/github".into(),
        provider: "github".into(),
        event_type: event_type.map(str::to_owned),
        delivery_id: delivery_id.map(str::to_owned),
        received_at: DateTime::from_timestamp(1_700_000_000 + n as i64, 123_456_000).unwrap(),
        content_type: Some("application/json".into()),
        client: Some("192.0.2.1".into()),
        body: Bytes::copy_from_slice(body),
    }
}

/// A mix that covers what can go wrong with bodies and optional fields.
fn events(n: usize) -> Vec<Event> {
    (0..n as u128)
        .map(|i| match i % 4 {
            0 => event(
                i,
                Some(&format!("d-{i}")),
                Some("push"),
                format!("{{\"n\":{i}}}").as_bytes(),
            ),
            1 => event(
                i,
                None,
                Some("pull_request.opened"),
                &[0xff, 0x00, 0xfe, b'\n', 0x80],
            ),
            2 => event(
                i,
                Some(&format!("d-{i}")),
                None,
                b"line one\r\nline two\r\n\r\n",
            ),
            _ => {
                let mut e = event(i, None, Some("dcim.device.created"), b"");
                e.content_type = None;
                e
            }
        })
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn nats_config(nats: &Nats) -> NatsConfig {
    let mut c = NatsConfig::new("bus", nats.url());
    c.stream = Some(STREAM.into());
    c.publish_timeout = Duration::from_secs(1);
    c.connect_timeout = Duration::from_secs(1);
    c
}

async fn js(nats: &Nats) -> jetstream::Context {
    jetstream::new(
        async_nats::connect(nats.url())
            .await
            .expect("test client connects"),
    )
}

/// Every message in the stream.
async fn read_stream(nats: &Nats) -> Vec<async_nats::jetstream::Message> {
    nats.messages(STREAM).await
}

/// Delivers until it succeeds: the client reconnects on its own schedule after a restart.
async fn deliver_until_ok(sink: &impl Sink, ev: &Event) {
    for _ in 0..60 {
        match sink.deliver(ev).await {
            Ok(()) => return,
            Err(DeliveryError::Retry { .. }) => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Err(e) => panic!("expected success after restart, got {e:?}"),
        }
    }
    panic!("deliver did not succeed again after the broker came back");
}

#[tokio::test]
async fn nats_stores_each_event_once_with_exact_body_and_headers() {
    let nats = Nats::start();
    let sink = NatsSink::new(nats_config(&nats)).await.unwrap();
    let sent = events(12);
    for ev in &sent {
        sink.deliver(ev).await.unwrap_or_else(|e| panic!("{e:?}"));
    }
    assert!(sink.is_connected());

    let got = read_stream(&nats).await;
    assert_eq!(got.len(), sent.len(), "each event exactly once");
    let by_id: HashMap<String, _> = got
        .iter()
        .map(|m| {
            let h = m.headers.as_ref().expect("headers");
            (h.get("Webhook-Event-Id").unwrap().as_str().to_owned(), m)
        })
        .collect();
    assert_eq!(by_id.len(), sent.len());
    for ev in &sent {
        let m = by_id[&ev.id.to_string()];
        assert_eq!(m.payload, ev.body, "body byte-identical for {}", ev.id);
        assert_eq!(m.subject.as_str(), sink.subject_for(ev));
        let h = m.headers.as_ref().unwrap();
        let get = |n: &str| h.get(n).map(|v| v.as_str().to_owned());
        assert_eq!(get("Nats-Msg-Id"), Some(ev.dedupe_key()));
        assert_eq!(get("Webhook-Hook").as_deref(), Some("/github"));
        assert_eq!(get("Webhook-Provider").as_deref(), Some("github"));
        assert_eq!(get("Webhook-Event"), ev.event_type.clone());
        assert_eq!(get("Webhook-Delivery-Id"), ev.delivery_id.clone());
        assert_eq!(get("Webhook-Received-At"), Some(rfc3339(ev.received_at)));
        assert_eq!(get("Content-Type"), ev.content_type.clone());
    }
    assert_eq!(
        by_id[&sent[3].id.to_string()].subject.as_str(),
        "webhooks.github.dcim.device.created"
    );
}

/// A dedupe key over the header cap once escaped (a long hook path, a delivery id of `%`s at the
/// intake cap) is hashed, not cut: two alike in their first kilobyte are two messages, and the
/// same one twice is still one.
#[tokio::test]
async fn nats_long_dedupe_keys_stay_distinct() {
    let nats = Nats::start();
    let sink = NatsSink::new(nats_config(&nats)).await.unwrap();
    let hook = format!("/{}", "h".repeat(300));
    let long = |n: u128, last: char| {
        let id = format!("{}{last}", "%".repeat(255));
        let mut ev = event(n, Some(&id), Some("push"), b"{}");
        ev.hook = hook.clone();
        ev
    };
    let (a, b, a_retry) = (long(1, 'a'), long(2, 'b'), long(3, 'a'));
    for ev in [&a, &b, &a_retry] {
        sink.deliver(ev).await.unwrap_or_else(|e| panic!("{e:?}"));
    }
    let got = read_stream(&nats).await;
    let ids: Vec<String> = got
        .iter()
        .map(|m| {
            let h = m.headers.as_ref().expect("headers");
            h.get("Nats-Msg-Id")
                .expect("Nats-Msg-Id")
                .as_str()
                .to_owned()
        })
        .collect();
    assert_eq!(got.len(), 2, "a and b kept, a's retry collapsed: {ids:?}");
    assert!(ids
        .iter()
        .all(|id| id.starts_with("sha256:") && id.len() == 71));
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn nats_same_dedupe_key_twice_stores_one_message() {
    let nats = Nats::start();
    let sink = NatsSink::new(nats_config(&nats)).await.unwrap();
    let first = event(1, Some("gh-delivery-1"), Some("push"), b"{}");
    // The sender's retry, accepted again (on this or another replica): a new event id, same key.
    let retry = event(2, Some("gh-delivery-1"), Some("push"), b"{}");
    let own_resend = event(3, None, Some("push"), b"{}");
    for ev in [&first, &retry, &own_resend, &own_resend] {
        sink.deliver(ev).await.unwrap();
    }
    let mut s = js(&nats).await.get_stream(STREAM).await.unwrap();
    assert_eq!(s.info().await.unwrap().state.messages, 2);
    assert_eq!(
        s.info().await.unwrap().config.duplicate_window,
        nats_sink::DEFAULT_DEDUPE_WINDOW
    );
}

/// Reads the raw protocol: nats-server 2.9 de-duplicates on `Nats-Msg-Id` spelled exactly so.
#[tokio::test]
async fn nats_header_names_keep_their_case_on_the_wire() {
    let nats = Nats::start();
    let sink = NatsSink::new(nats_config(&nats)).await.unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", nats.port()))
        .await
        .unwrap();
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    w.write_all(b"CONNECT {\"verbose\":false,\"headers\":true,\"protocol\":1}\r\nSUB webhooks.> 1\r\nPING\r\n")
        .await
        .unwrap();
    line.clear();
    r.read_line(&mut line).await.unwrap();
    assert_eq!(line, "PONG\r\n");

    let ev = event(7, Some("abc"), Some("push"), b"x");
    sink.deliver(&ev).await.unwrap();
    let mut block = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        if line.starts_with("PING") {
            w.write_all(b"PONG\r\n").await.unwrap();
            continue;
        }
        block.push_str(&line);
        if block.starts_with("HMSG") && line == "\r\n" {
            break;
        }
    }
    assert!(
        block.contains("\r\nNats-Msg-Id: /github:abc\r\n"),
        "{block}"
    );
    for name in [
        "Webhook-Event-Id",
        "Webhook-Hook",
        "Webhook-Provider",
        "Webhook-Event",
        "Webhook-Delivery-Id",
        "Webhook-Received-At",
        "Content-Type",
    ] {
        assert!(
            block.contains(&format!("\r\n{name}: ")),
            "{name} missing or re-cased in {block}"
        );
    }
}

#[tokio::test]
async fn nats_broker_killed_is_retry_within_bound_and_back_without_restarting_us() {
    let mut nats = Nats::start();
    let cfg = nats_config(&nats);
    let bound = cfg.publish_timeout + Duration::from_secs(2);
    let sink = NatsSink::new(cfg).await.unwrap();
    sink.deliver(&event(1, None, Some("push"), b"before"))
        .await
        .unwrap();

    nats.kill();
    assert_retry_within(&sink, &event(2, None, Some("push"), b"during"), bound).await;
    assert!(!sink.is_connected());

    nats.restart();
    deliver_until_ok(&sink, &event(2, None, Some("push"), b"during")).await;
    assert!(sink.is_connected());
    let got = read_stream(&nats).await;
    let bodies: Vec<&[u8]> = got.iter().map(|m| m.payload.as_ref()).collect();
    assert_eq!(bodies, [b"before".as_slice(), b"during".as_slice()]);
}

#[tokio::test]
async fn nats_down_at_start_does_not_fail_start_up() {
    let port = free_port();
    let mut cfg = NatsConfig::new("bus", format!("nats://127.0.0.1:{port}"));
    cfg.stream = Some(STREAM.into());
    cfg.publish_timeout = Duration::from_secs(1);
    let sink = NatsSink::new(cfg)
        .await
        .expect("built while the broker is down");
    let r = sink.deliver(&event(1, None, None, b"x")).await;
    assert!(matches!(r, Err(DeliveryError::Retry { .. })), "{r:?}");

    let nats = Nats::start_on(port);
    deliver_until_ok(&sink, &event(1, None, None, b"x")).await;
    assert_eq!(read_stream(&nats).await.len(), 1);
}

#[tokio::test]
async fn nats_message_over_max_payload_is_permanent_and_the_next_flows() {
    let nats = Nats::start_with_config("max_payload: 4096\n");
    let sink = NatsSink::new(nats_config(&nats)).await.unwrap();
    sink.deliver(&event(1, None, None, b"small")).await.unwrap();
    let r = sink.deliver(&event(2, None, None, &vec![b'x'; 8192])).await;
    assert!(matches!(r, Err(DeliveryError::Permanent(_))), "{r:?}");
    sink.deliver(&event(3, None, None, b"small again"))
        .await
        .unwrap();
    assert_eq!(read_stream(&nats).await.len(), 2);
}

#[tokio::test]
async fn nats_stream_that_does_not_take_the_subject_is_permanent() {
    let nats = Nats::start();
    js(&nats)
        .await
        .create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec!["other.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let sink = NatsSink::new(nats_config(&nats)).await.unwrap();
    let r = sink.deliver(&event(1, None, Some("push"), b"x")).await;
    assert!(
        matches!(r, Err(DeliveryError::Permanent(ref m)) if m.contains("does not take")),
        "{r:?}"
    );
}

#[tokio::test]
async fn nats_without_a_stream_for_the_subject_is_retry() {
    let nats = Nats::start();
    let mut cfg = nats_config(&nats);
    cfg.stream = None;
    let sink = NatsSink::new(cfg).await.unwrap();
    let r = sink.deliver(&event(1, None, Some("push"), b"x")).await;
    assert!(matches!(r, Err(DeliveryError::Retry { .. })), "{r:?}");
}

#[tokio::test]
async fn nats_check_reaches_the_broker_and_hides_credentials() {
    let nats = Nats::start();
    let ok = nats_sink::check(&nats_config(&nats)).await.unwrap();
    assert!(ok.contains("JetStream enabled"), "{ok}");
    assert!(ok.contains("will be created"), "{ok}");

    let mut down = NatsConfig::new("bus", format!("nats://u:hunter2@127.0.0.1:{}", free_port()));
    down.auth = NatsAuth::Token("tok-s3cret".into());
    down.connect_timeout = Duration::from_millis(500);
    let err = nats_sink::check(&down).await.unwrap_err();
    assert!(
        !err.contains("hunter2") && !err.contains("tok-s3cret"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1"), "{err}");
}

fn redis_config(redis: &Redis, stream: &str) -> RedisConfig {
    let mut c = RedisConfig::new("cache", redis.url(), stream);
    c.call_timeout = Duration::from_secs(1);
    c.connect_timeout = Duration::from_secs(1);
    c
}

async fn redis_conn(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

type Entry = (String, Vec<(String, Vec<u8>)>);

async fn xrange(redis: &Redis, stream: &str) -> Vec<Entry> {
    let mut c = redis_conn(redis).await;
    redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test]
async fn redis_stores_each_event_once_with_exact_fields() {
    let redis = Redis::start();
    let sink = RedisSink::new(redis_config(&redis, "webhooks")).unwrap();
    let sent = events(12);
    for ev in &sent {
        sink.deliver(ev).await.unwrap_or_else(|e| panic!("{e:?}"));
    }
    assert!(sink.is_connected());
    let got = xrange(&redis, "webhooks").await;
    assert_eq!(got.len(), sent.len(), "each event exactly once");
    for (ev, (_, fields)) in sent.iter().zip(&got) {
        let mut want: Vec<(String, Vec<u8>)> = vec![
            ("event_id".into(), ev.id.to_string().into()),
            ("hook".into(), ev.hook.clone().into()),
            ("provider".into(), ev.provider.clone().into()),
        ];
        if let Some(e) = &ev.event_type {
            want.push(("event".into(), e.clone().into()));
        }
        if let Some(d) = &ev.delivery_id {
            want.push(("delivery_id".into(), d.clone().into()));
        }
        want.push(("received_at".into(), rfc3339(ev.received_at).into()));
        if let Some(ct) = &ev.content_type {
            want.push(("content_type".into(), ct.clone().into()));
        }
        want.push(("body".into(), ev.body.to_vec()));
        assert_eq!(fields, &want, "fields of {}", ev.id);
    }
}

#[tokio::test]
async fn redis_same_dedupe_key_twice_adds_one_entry() {
    let redis = Redis::start();
    // A hash-tagged key, as on Redis Cluster: works the same on one server.
    let sink = RedisSink::new(redis_config(&redis, "{webhooks}")).unwrap();
    let first = event(1, Some("gh-1"), Some("push"), b"{}");
    let retry = event(2, Some("gh-1"), Some("push"), b"{}");
    let own_resend = event(3, None, Some("push"), b"{}");
    for ev in [&first, &retry, &own_resend, &own_resend] {
        sink.deliver(ev).await.unwrap();
    }
    assert_eq!(xrange(&redis, "{webhooks}").await.len(), 2);
    let mut c = redis_conn(&redis).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg("{webhooks}:dedupe:/github:gh-1")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= redis_sink::DEFAULT_DEDUPE_WINDOW.as_secs() as i64,
        "ttl {ttl}"
    );
}

#[tokio::test]
async fn redis_killed_is_retry_within_bound_and_back_without_restarting_us() {
    let mut redis = Redis::start();
    let cfg = redis_config(&redis, "webhooks");
    let bound = cfg.call_timeout + Duration::from_secs(2);
    let sink = RedisSink::new(cfg).unwrap();
    sink.deliver(&event(1, None, None, b"before"))
        .await
        .unwrap();

    redis.kill();
    assert_retry_within(&sink, &event(2, None, None, b"during"), bound).await;
    assert!(!sink.is_connected());

    redis.restart();
    deliver_until_ok(&sink, &event(2, None, None, b"during")).await;
    assert!(sink.is_connected());
    let bodies: Vec<Vec<u8>> = xrange(&redis, "webhooks")
        .await
        .into_iter()
        .map(|(_, f)| f.into_iter().find(|(k, _)| k == "body").unwrap().1)
        .collect();
    assert_eq!(bodies, [b"before".to_vec(), b"during".to_vec()]);
}

#[tokio::test]
async fn redis_down_at_start_does_not_fail_start_up() {
    let port = free_port();
    let mut cfg = RedisConfig::new("cache", format!("redis://127.0.0.1:{port}/0"), "webhooks");
    cfg.call_timeout = Duration::from_secs(1);
    cfg.connect_timeout = Duration::from_millis(500);
    let sink = RedisSink::new(cfg).expect("built while the server is down");
    let r = sink.deliver(&event(1, None, None, b"x")).await;
    assert!(matches!(r, Err(DeliveryError::Retry { .. })), "{r:?}");
    let redis = Redis::start_on(port);
    deliver_until_ok(&sink, &event(1, None, None, b"x")).await;
    assert_eq!(xrange(&redis, "webhooks").await.len(), 1);
}

#[tokio::test]
async fn redis_wrong_type_is_permanent_and_leaves_no_dedupe_mark() {
    let redis = Redis::start();
    assert_eq!(
        redis.command(&[b"SET", b"webhooks", b"a string"]),
        b"+OK\r\n"
    );
    let sink = RedisSink::new(redis_config(&redis, "webhooks")).unwrap();
    let ev = event(1, Some("d1"), None, b"x");
    let r = sink.deliver(&ev).await;
    assert!(
        matches!(r, Err(DeliveryError::Permanent(ref m)) if m.contains("WRONGTYPE")),
        "{r:?}"
    );
    // The batch script refuses at its first event, the same way.
    let batch = [event(2, Some("d2"), None, b"y"), event(3, None, None, b"z")];
    let r = sink.deliver_batch(&batch).await;
    assert!(
        matches!(r.as_slice(), [Err(DeliveryError::Permanent(m))] if m.contains("WRONGTYPE")),
        "{r:?}"
    );
    // Once the operator fixes the key, the same events go in: the failed XADDs left no mark.
    assert_eq!(redis.command(&[b"DEL", b"webhooks"]), b":1\r\n");
    sink.deliver(&ev).await.unwrap();
    let r = sink.deliver_batch(&batch).await;
    assert!(r.len() == 2 && r.iter().all(Result::is_ok), "{r:?}");
    assert_eq!(xrange(&redis, "webhooks").await.len(), 3);
}

#[tokio::test]
async fn redis_check_reaches_the_server_and_hides_credentials() {
    let redis = Redis::start();
    let ok = redis_sink::check(&redis_config(&redis, "webhooks"))
        .await
        .unwrap();
    assert!(
        ok.contains("redis 7") && ok.contains("will be created"),
        "{ok}"
    );
    assert_eq!(redis.command(&[b"SET", b"taken", b"x"]), b"+OK\r\n");
    let err = redis_sink::check(&redis_config(&redis, "taken"))
        .await
        .unwrap_err();
    assert!(err.contains("not a stream"), "{err}");

    let mut down = RedisConfig::new(
        "cache",
        format!("redis://u:hunter2@127.0.0.1:{}/0", free_port()),
        "w",
    );
    down.password = Some("pw-s3cret".into());
    down.connect_timeout = Duration::from_millis(500);
    let err = redis_sink::check(&down).await.unwrap_err();
    assert!(
        !err.contains("hunter2") && !err.contains("pw-s3cret"),
        "{err}"
    );
    assert!(err.contains("127.0.0.1"), "{err}");
}

#[tokio::test]
async fn nats_config_is_validated_without_a_broker() {
    let mut c = NatsConfig::new("bus", "nats://a:4222, nats://b:4222");
    assert!(c.validate().is_ok());
    c.stream = Some("BAD.NAME".into());
    assert!(c.validate().is_err());
    c.stream = Some(STREAM.into());
    c.subject = "{provider}.{event}".into();
    assert!(
        c.validate().is_err(),
        "a stream over `*.>` would swallow every subject"
    );
    c.subject = "webhooks.{nope}".into();
    assert!(c.validate().is_err());

    let mut bad = NatsConfig::new("bus", "nats://u:hunter2@[::1");
    bad.auth = NatsAuth::Token("tok-s3cret".into());
    let Err(e) = NatsSink::new(bad).await else {
        panic!("an unparsable URL is refused")
    };
    let e = e.to_string();
    assert!(!e.contains("hunter2") && !e.contains("tok-s3cret"), "{e}");
    let debug = format!(
        "{:?}",
        NatsAuth::UserPassword {
            user: "u".into(),
            password: "pw".into()
        }
    );
    assert!(!debug.contains("pw"), "{debug}");
}

/// With the broker gone, `deliver` must answer Retry, and within its bound (never hang).
async fn assert_retry_within(sink: &impl Sink, event: &Event, bound: Duration) {
    let started = Instant::now();
    let r = sink.deliver(event).await;
    assert!(matches!(r, Err(DeliveryError::Retry { .. })), "{r:?}");
    assert!(
        started.elapsed() < bound,
        "deliver took {:?}",
        started.elapsed()
    );
}

/// A spool of its own in `dir`, for the tests that drive a runner directly.
fn spool_in(dir: &std::path::Path) -> webhook_listener::forward::Spool {
    use webhook_listener::forward::{Spool, SpoolConfig};
    Spool::open(SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: 256 << 20,
        segment_bytes: 16 << 20,
    })
    .unwrap()
    .0
}

/// The `event_id` of each entry, in stream order.
fn redis_ids(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|(_, fields)| {
            let (_, v) = fields
                .iter()
                .find(|(k, _)| k == "event_id")
                .expect("event_id");
            String::from_utf8(v.clone()).expect("utf-8")
        })
        .collect()
}

fn nats_ids(msgs: &[async_nats::jetstream::Message]) -> Vec<String> {
    msgs.iter()
        .map(|m| {
            let h = m.headers.as_ref().expect("headers");
            h.get("Webhook-Event-Id")
                .expect("event id")
                .as_str()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_batch_is_stored_in_order_byte_identical_and_sent_again_adds_nothing() {
    let (nats, redis) = (Nats::start(), Redis::start());
    let nats_sink = NatsSink::new(nats_config(&nats)).await.unwrap();
    let redis_sink = RedisSink::new(redis_config(&redis, "batch")).unwrap();
    let sent = events(40);
    let want: Vec<String> = sent.iter().map(|e| e.id.to_string()).collect();
    for _ in 0..2 {
        let n = nats_sink.deliver_batch(&sent).await;
        assert!(
            n.len() == sent.len() && n.iter().all(Result::is_ok),
            "{n:?}"
        );
        let r = redis_sink.deliver_batch(&sent).await;
        assert!(
            r.len() == sent.len() && r.iter().all(Result::is_ok),
            "{r:?}"
        );
    }
    let msgs = read_stream(&nats).await;
    assert_eq!(nats_ids(&msgs), want, "NATS: once each, in order");
    for (m, e) in msgs.iter().zip(&sent) {
        assert_eq!(m.payload, e.body, "NATS body byte-identical");
    }
    let entries = xrange(&redis, "batch").await;
    assert_eq!(redis_ids(&entries), want, "Redis: once each, in order");
    for ((_, fields), e) in entries.iter().zip(&sent) {
        let body = fields.iter().find(|(k, _)| k == "body").map(|(_, v)| v);
        assert_eq!(body, Some(&e.body.to_vec()), "Redis body byte-identical");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_cut_by_killing_both_brokers_arrive_each_exactly_once() {
    use tokio_util::sync::CancellationToken;
    use webhook_listener::forward::{Runner, RunnerConfig, SinkState};

    let (mut nats, mut redis) = (Nats::start(), Redis::start());
    let dir = tempfile::tempdir().unwrap();
    let mut spool = spool_in(dir.path());
    let handle = spool.handle();
    let shutdown = CancellationToken::new();
    let config = RunnerConfig {
        max_batch: 128,
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(500),
        ..RunnerConfig::default()
    };
    let bus = Runner::spawn(
        NatsSink::new(nats_config(&nats)).await.unwrap(),
        &handle,
        handle.register("bus").unwrap(),
        config.clone(),
        &shutdown,
    )
    .unwrap();
    let cache = Runner::spawn(
        RedisSink::new(redis_config(&redis, "batch")).unwrap(),
        &handle,
        handle.register("cache").unwrap(),
        config,
        &shutdown,
    )
    .unwrap();

    let all = events(6000);
    let mut last = 0;
    // Groups of 60 like group commits. Once both sinks are under way, both brokers are killed
    // right after a group became durable (a batch is on the wire), stay away for 30 groups and come
    // back while the appends go on.
    for (g, group) in all.chunks(60).enumerate() {
        for e in group {
            last = spool.append(e).unwrap();
        }
        spool.sync().unwrap();
        if g == 20 {
            for r in [&bus, &cache] {
                tokio::time::timeout(Duration::from_secs(30), r.status().wait_confirmed(600))
                    .await
                    .expect("under way")
                    .unwrap();
            }
            nats.kill();
            redis.kill();
        }
        if g == 50 {
            // Away long enough to be noticed: each sink is backing off (NATS notices when the
            // acks of a batch time out; a shorter outage is bridged by the client's reconnect).
            for r in [&bus, &cache] {
                let mut state = r.status().watch_state();
                tokio::time::timeout(
                    Duration::from_secs(30),
                    state.wait_for(|s| *s == SinkState::Retrying),
                )
                .await
                .expect("the kill was noticed")
                .unwrap();
            }
            nats.restart();
            redis.restart();
        }
    }
    for r in [&bus, &cache] {
        tokio::time::timeout(Duration::from_secs(60), r.status().wait_confirmed(last))
            .await
            .expect("caught up after the restart")
            .unwrap();
        let s = r.status().snapshot();
        assert_eq!((s.dead_lettered, s.lag_events), (0, 0), "{s:?}");
    }
    let want: Vec<String> = all.iter().map(|e| e.id.to_string()).collect();
    let mut c = redis_conn(&redis).await;
    // 6,000 entries: more than the client's default 500 ms on a loaded box.
    c.set_response_timeout(Duration::from_secs(30));
    let entries: Vec<Entry> = redis::cmd("XRANGE")
        .arg("batch")
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut got = redis_ids(&entries);
    assert_eq!(got.len(), all.len(), "Redis: exactly once");
    assert_eq!(
        got, want,
        "Redis keeps the order: a lost connection loses a suffix"
    );
    got = nats_ids(&read_stream(&nats).await);
    assert_eq!(got.len(), all.len(), "NATS: exactly once");
    got.sort();
    let mut sorted = want.clone();
    sorted.sort();
    assert_eq!(got, sorted, "NATS: every event, none twice");
    shutdown.cancel();
    bus.join().await;
    cache.join().await;
}

/// A Redis without our script cached (just started, restarted, or `SCRIPT FLUSH`ed) gets two
/// batches at once: both must land in spool order. With `EVALSHA`, both were answered `NOSCRIPT`
/// and the client's load-and-retry let the second batch land before the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_batches_out_on_an_empty_script_cache_keep_the_order() {
    use tokio_util::sync::CancellationToken;
    use webhook_listener::forward::{Runner, RunnerConfig};

    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let mut spool = spool_in(dir.path());
    let handle = spool.handle();
    let shutdown = CancellationToken::new();
    let cache = Runner::spawn(
        RedisSink::new(redis_config(&redis, "flushed")).unwrap(),
        &handle,
        handle.register("cache").unwrap(),
        RunnerConfig {
            max_batch: 64,
            ..RunnerConfig::default()
        },
        &shutdown,
    )
    .unwrap();
    let mut c = redis_conn(&redis).await;
    let all = events(50 * 100);
    // Each round: the cache emptied, one group commit of 36 events (the first batch goes out
    // alone), then one of 64 right behind it (a whole second batch, sent while the first may be
    // between its NOSCRIPT and its retry).
    for round in all.chunks(100) {
        let _: () = redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut c)
            .await
            .unwrap();
        let mut last = 0;
        for group in [&round[..36], &round[36..]] {
            for e in group {
                last = spool.append(e).unwrap();
            }
            spool.sync().unwrap();
        }
        tokio::time::timeout(Duration::from_secs(30), cache.status().wait_confirmed(last))
            .await
            .expect("delivered")
            .unwrap();
    }
    let want: Vec<String> = all.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(
        redis_ids(&xrange(&redis, "flushed").await),
        want,
        "every event once, in spool order"
    );
    shutdown.cancel();
    cache.join().await;
}
