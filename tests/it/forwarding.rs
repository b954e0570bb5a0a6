//! Forwarding through the running service: the real binary with `[[sinks]]`, real `nats-server`
//! and `redis-server` processes, read back with real clients. Each test reads what the brokers hold
//! and compares it with the event log and what was sent.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures_util::StreamExt;
use nix::sys::signal::Signal;

use crate::common::brokers::{free_port, Nats, Redis};
use crate::common::{
    health, hook, metrics, netbox_body, netbox_hook, netbox_signature, read_lines, secret, signed,
    Options, Provider, Server, NETBOX_SECRET,
};

const STREAM: &str = "WEBHOOKS";
const REDIS_STREAM: &str = "webhooks";
/// Generous for a loaded CI box; every wait polls and returns as soon as its condition holds.
const CATCH_UP: Duration = Duration::from_secs(60);

pub(crate) fn hooks() -> String {
    format!(
        "{}{}",
        netbox_hook("/webhook/"),
        hook(
            Provider::Github,
            "/github",
            &[secret(Provider::Github, 1)],
            ""
        )
    )
}

fn nats_sink(url: &str, extra: &str) -> String {
    format!("[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"{url}\"\nstream = \"{STREAM}\"\n{extra}\n")
}

fn redis_sink(url: &str, extra: &str) -> String {
    format!("[[sinks]]\nname = \"cache\"\nkind = \"redis\"\nurl = \"{url}\"\nstream = \"{REDIS_STREAM}\"\n{extra}\n")
}

/// An event log and a spool in `dir` (so a restarted server finds both), and a NATS sink on `port`.
fn shared_log_and_spool(dir: &Path, port: u16) -> (PathBuf, PathBuf, String) {
    let spool = dir.join("spool");
    let tables = format!(
        "[spool]\ndir = {:?}\n{}",
        spool.display().to_string(),
        nats_sink(&format!("nats://127.0.0.1:{port}"), "")
    );
    (dir.join("events.log"), spool, tables)
}

/// A server with both hooks and `tables` (`[spool]`, `[[sinks]]`), JSON event log at `log` when
/// given (so a restarted server can share it).
pub(crate) fn server(tables: &str, log: Option<&Path>) -> Server {
    server_with("", tables, log)
}

/// [`server`] with top-level keys.
pub(crate) fn server_with(top: &str, tables: &str, log: Option<&Path>) -> Server {
    let hooks = format!("{}{tables}", hooks());
    let log = log.map(|p| p.display().to_string());
    Server::start_with(Options {
        top,
        log: "format = \"json\"",
        hooks: &hooks,
        log_file: log.as_deref(),
        ..Default::default()
    })
}

pub(crate) fn github_body(n: usize) -> Vec<u8> {
    format!("{{\"ref\":\"refs/heads/main\",\"n\":{n},\"text\":\"caf\\u00e9 \\n line\"}}\n")
        .into_bytes()
}

/// Posts a signed GitHub push with delivery `id`; returns the status and the `Retry-After` header.
pub(crate) async fn post_github(server: &Server, id: &str, body: &[u8]) -> (u16, Option<String>) {
    let key = secret(Provider::Github, 1);
    let mut req = crate::common::client()
        .post(server.url("/github"))
        .header("content-type", "application/json")
        .header("x-github-event", "push");
    for (k, v) in signed(Provider::Github, &key, body, crate::common::now(), id) {
        req = req.header(k, v);
    }
    let resp = req.body(body.to_vec()).send().await.expect("request");
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), retry)
}

pub(crate) async fn post_netbox(server: &Server, request_id: &str) -> (u16, Option<String>) {
    let body = netbox_body(request_id);
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &body);
    let resp = crate::common::client()
        .post(server.url("/webhook/"))
        .header("content-type", "application/json")
        .header("x-hook-signature", sig)
        .body(body)
        .send()
        .await
        .expect("request");
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), retry)
}

/// The `/healthz` entry of sink `name`.
pub(crate) fn sink<'a>(h: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    h["sinks"]
        .as_array()
        .expect("sinks listed")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("sink {name} in {h}"))
}

/// Polls `/healthz` until every sink has lag 0 and delivered at least `delivered` in all.
pub(crate) async fn wait_caught_up(server: &Server, delivered: u64) -> serde_json::Value {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let h = health(server).await;
        let sinks = h["sinks"].as_array().expect("sinks listed").clone();
        let done = sinks.iter().all(|s| {
            s["lag_events"] == 0
                && s["delivered"].as_u64().unwrap_or(0) + s["dead_lettered"].as_u64().unwrap_or(0)
                    >= delivered
        });
        if done {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "sinks did not catch up within {CATCH_UP:?}: {h}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message in the NATS stream.
async fn nats_messages(nats: &Nats) -> Vec<jetstream::Message> {
    nats.messages(STREAM).await
}

async fn nats_count(nats: &Nats) -> u64 {
    let js = jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
    match js.get_stream(STREAM).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

type Entry = (String, Vec<(String, Vec<u8>)>);

async fn redis_entries(redis: &Redis) -> Vec<Entry> {
    let mut c = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("XRANGE")
        .arg(REDIS_STREAM)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap()
}

/// The event log's lines as JSON.
pub(crate) fn log_records(path: &Path) -> Vec<serde_json::Value> {
    read_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON log line"))
        .collect()
}

fn header(m: &jetstream::Message, name: &str) -> Option<String> {
    m.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}

#[tokio::test]
async fn every_accepted_event_is_in_each_stream_once_byte_identical_with_its_headers() {
    let (nats, redis) = (Nats::start(), Redis::start());
    let s = server(
        &format!(
            "{}{}",
            nats_sink(&nats.url(), ""),
            redis_sink(&redis.url(), "")
        ),
        None,
    );
    let mut sent: HashMap<String, Vec<u8>> = HashMap::new();
    for n in 0..20 {
        if n % 2 == 0 {
            let id = format!("gh-{n}-{}", uuid::Uuid::new_v4());
            let body = github_body(n);
            assert_eq!(post_github(&s, &id, &body).await.0, 200);
            sent.insert(id, body);
        } else {
            let rid = uuid::Uuid::new_v4().to_string();
            assert_eq!(post_netbox(&s, &rid).await.0, 200);
            sent.insert(rid.clone(), netbox_body(&rid));
        }
    }
    let h = wait_caught_up(&s, 20).await;
    assert_eq!(h["result"], "ok", "{h}");
    assert_eq!(sink(&h, "bus")["state"], "connected", "{h}");
    assert_eq!(sink(&h, "cache")["connected"], true, "{h}");

    // What the log says about each event: its id, when, and which request it was.
    let records = log_records(&s.log_path);
    assert_eq!(records.len(), 20);
    let mut by_event: HashMap<String, (&serde_json::Value, &Vec<u8>)> = HashMap::new();
    for r in &records {
        let event_id = r["event_id"]
            .as_str()
            .expect("event_id in every line")
            .to_owned();
        let version = uuid::Uuid::parse_str(&event_id).unwrap().get_version_num();
        assert_eq!(version, 7, "UUIDv7: {event_id}");
        let key = r["delivery_id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| r["request_id"].as_str().unwrap().to_owned());
        by_event.insert(event_id, (r, &sent[&key]));
    }
    assert_eq!(by_event.len(), 20, "event ids are unique");

    let msgs = nats_messages(&nats).await;
    assert_eq!(msgs.len(), 20, "each event once in the NATS stream");
    let mut seen = HashSet::new();
    for m in &msgs {
        let id = header(m, "Webhook-Event-Id").expect("Webhook-Event-Id");
        assert!(seen.insert(id.clone()), "{id} twice");
        let (r, body) = by_event[&id];
        assert_eq!(&m.payload[..], &body[..], "body byte-identical");
        let hook = r["hook"].as_str().unwrap();
        assert_eq!(header(m, "Webhook-Hook").as_deref(), Some(hook));
        assert_eq!(
            header(m, "Webhook-Provider").as_deref(),
            r["provider"].as_str()
        );
        assert_eq!(
            header(m, "Webhook-Received-At").as_deref(),
            r["received_at"].as_str()
        );
        assert_eq!(
            header(m, "Content-Type").as_deref(),
            Some("application/json")
        );
        match r["delivery_id"].as_str() {
            Some(d) => {
                assert_eq!(header(m, "Webhook-Delivery-Id").as_deref(), Some(d));
                assert_eq!(header(m, "Nats-Msg-Id"), Some(format!("{hook}:{d}")));
                assert_eq!(header(m, "Webhook-Event").as_deref(), Some("push"));
                assert_eq!(m.subject.as_str(), "webhooks.github.push");
            }
            None => {
                assert_eq!(header(m, "Webhook-Delivery-Id"), None);
                assert_eq!(header(m, "Nats-Msg-Id"), Some(id.clone()));
                assert_eq!(
                    header(m, "Webhook-Event").as_deref(),
                    Some("dcim.site.created")
                );
                assert_eq!(m.subject.as_str(), "webhooks.netbox.dcim.site.created");
            }
        }
    }

    let entries = redis_entries(&redis).await;
    assert_eq!(entries.len(), 20, "each event once in the Redis stream");
    let mut seen = HashSet::new();
    for (_, fields) in &entries {
        let f: HashMap<&str, &[u8]> = fields.iter().map(|(k, v)| (k.as_str(), &v[..])).collect();
        let text = |k: &str| f.get(k).map(|v| String::from_utf8(v.to_vec()).unwrap());
        let id = text("event_id").expect("event_id field");
        assert!(seen.insert(id.clone()), "{id} twice");
        let (r, body) = by_event[&id];
        assert_eq!(f["body"], &body[..], "body byte-identical");
        assert_eq!(text("hook").as_deref(), r["hook"].as_str());
        assert_eq!(text("provider").as_deref(), r["provider"].as_str());
        assert_eq!(text("received_at").as_deref(), r["received_at"].as_str());
        assert_eq!(text("content_type").as_deref(), Some("application/json"));
        assert_eq!(text("delivery_id").as_deref(), r["delivery_id"].as_str());
        let event = if r["provider"] == "netbox" {
            "dcim.site.created"
        } else {
            "push"
        };
        assert_eq!(text("event").as_deref(), Some(event));
    }

    let m = metrics(&s).await;
    assert!(
        m.contains("webhook_sink_delivered_total{sink=\"bus\"} 20"),
        "{m}"
    );
    assert!(
        m.contains("webhook_sink_delivered_total{sink=\"cache\"} 20"),
        "{m}"
    );
    assert!(m.contains("webhook_sink_lag_events{sink=\"bus\"} 0"), "{m}");
    assert!(m.contains("webhook_sink_connected{sink=\"bus\"} 1"), "{m}");
    // Each confirmation timed twice: from the request's arrival and from its 2xx.
    for sink in ["bus", "cache"] {
        for histogram in ["confirm", "ack_to_confirm"] {
            let count = format!("webhook_sink_{histogram}_seconds_count{{sink=\"{sink}\"}} 20");
            assert!(m.contains(&count), "{count} in {m}");
        }
    }
}

#[tokio::test]
async fn a_broker_killed_mid_load_costs_no_request_and_every_event_arrives_once() {
    let (mut nats, mut redis) = (Nats::start(), Redis::start());
    let tables = format!(
        "{}{}",
        nats_sink(&nats.url(), ""),
        redis_sink(&redis.url(), "")
    );
    let s = server(&tables, None);
    let total = 150;
    let mut lag_seen = (0u64, 0u64);
    for n in 0..total {
        if n == 40 {
            nats.kill();
            redis.kill();
        }
        if n == 100 {
            let h = health(&s).await;
            lag_seen = (
                sink(&h, "bus")["lag_events"].as_u64().unwrap(),
                sink(&h, "cache")["lag_events"].as_u64().unwrap(),
            );
            nats.restart();
            redis.restart();
        }
        let (status, _) = post_github(&s, &format!("kill-{n}"), &github_body(n)).await;
        assert_eq!(status, 200, "request {n} while the broker was away");
    }
    assert!(
        lag_seen.0 > 0 && lag_seen.1 > 0,
        "lag rose while the brokers were away: {lag_seen:?}"
    );
    wait_caught_up(&s, 1).await;
    let msgs = nats_messages(&nats).await;
    let ids: HashSet<String> = msgs
        .iter()
        .map(|m| header(m, "Webhook-Delivery-Id").unwrap())
        .collect();
    assert_eq!(msgs.len(), total, "exactly once: {} messages", msgs.len());
    assert_eq!(ids.len(), total);
    let entries = redis_entries(&redis).await;
    assert_eq!(
        entries.len(),
        total,
        "exactly once in Redis: {}",
        entries.len()
    );
    // The diagnostics say when the broker went and came back.
    let log = s.stderr();
    assert!(log.contains("nats sink disconnected"), "{log}");
    assert!(log.matches("nats sink connected").count() >= 2, "{log}");
}

/// Spools `total` NetBox events while the broker on `port` is away (every one acknowledged), then
/// starts it and returns once forwarding is under way: the first message is in the stream.
async fn backlog_then_broker(server: &Server, port: u16, total: usize) -> Nats {
    let statuses: Vec<u16> = futures_util::stream::iter(0..total)
        .map(|n| async move {
            post_netbox(server, &format!("00000000-0000-4000-8000-{n:012}"))
                .await
                .0
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|&st| st == 200), "{statuses:?}");
    let nats = Nats::start_on(port);
    let deadline = Instant::now() + CATCH_UP;
    while nats_count(&nats).await == 0 {
        assert!(Instant::now() < deadline, "forwarding never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nats
}

#[tokio::test]
async fn the_receiver_killed_mid_forwarding_resumes_from_its_checkpoint_none_missing_none_twice() {
    // The broker starts only once every event is spooled, so the kill lands mid-forwarding.
    let port = free_port();
    let shared = tempfile::tempdir().unwrap();
    let (log, _spool, tables) = shared_log_and_spool(shared.path(), port);
    let total = 1000;
    let mut first = server(&tables, Some(&log));
    // Kill as soon as forwarding is under way, before it has finished.
    let nats = backlog_then_broker(&first, port, total).await;
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    let at_kill = nats_count(&nats).await;
    assert!(
        at_kill < total as u64,
        "killed mid-forwarding ({at_kill} of {total} forwarded)"
    );

    let second = server(&tables, Some(&log));
    wait_caught_up(&second, 0).await;
    let msgs = nats_messages(&nats).await;
    let ids: HashSet<String> = msgs
        .iter()
        .map(|m| header(m, "Webhook-Event-Id").unwrap())
        .collect();
    let logged: HashSet<String> = log_records(&log)
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged.len(), total);
    assert_eq!(ids, logged, "none missing");
    assert_eq!(msgs.len(), total, "none twice");
}

#[tokio::test]
async fn sigterm_drains_the_spool_into_the_broker_before_exiting() {
    // A backlog spooled while the broker was away; SIGTERM lands while it is being forwarded.
    let port = free_port();
    let tables = nats_sink(&format!("nats://127.0.0.1:{port}"), "");
    let total = 1000;
    let mut first = server_with("shutdown_timeout_secs = 30", &tables, None);
    let nats = backlog_then_broker(&first, port, total).await;
    first.signal(Signal::SIGTERM);
    let started = Instant::now();
    let status = first
        .wait_exit(Duration::from_secs(40))
        .expect("exits within shutdown_timeout_secs");
    assert!(status.success(), "{status:?}: {}", first.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "left as soon as the spool was drained, not at the deadline ({:?})",
        started.elapsed()
    );
    let msgs = nats_messages(&nats).await;
    let ids: HashSet<String> = msgs
        .iter()
        .map(|m| header(m, "Webhook-Event-Id").unwrap())
        .collect();
    assert_eq!(
        msgs.len(),
        total,
        "every spooled event delivered before exit, once each"
    );
    assert_eq!(ids.len(), total);
}

#[tokio::test]
async fn a_torn_spool_tail_is_cut_and_reported_at_start_and_nothing_acknowledged_is_lost() {
    let nats = Nats::start();
    let shared = tempfile::tempdir().unwrap();
    let log = shared.path().join("events.log");
    let spool = shared.path().join("spool");
    let tables = format!(
        "[spool]\ndir = {:?}\n{}",
        spool.display().to_string(),
        nats_sink(&nats.url(), "")
    );
    let mut first = server(&tables, Some(&log));
    for n in 0..5 {
        assert_eq!(
            post_github(&first, &format!("torn-{n}"), &github_body(n))
                .await
                .0,
            200
        );
    }
    wait_caught_up(&first, 5).await;
    first.signal(Signal::SIGTERM);
    first.wait_exit(Duration::from_secs(20)).expect("stopped");

    // A crash mid-append: half a record's header after the last complete one.
    let segment: PathBuf = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max()
        .expect("a segment");
    let before = std::fs::metadata(&segment).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0x5a; 7]).unwrap();
    drop(f);

    let second = server(&tables, Some(&log));
    assert!(
        second.wait_for_stderr("torn tail cut", Duration::from_secs(5)),
        "{}",
        second.stderr()
    );
    let report = second.stderr();
    assert!(report.contains("bytes_cut=7"), "{report}");
    assert!(report.contains(&format!("offset={before}")), "{report}");
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        before,
        "cut back"
    );
    assert_eq!(
        post_github(&second, "torn-after", &github_body(9)).await.0,
        200
    );
    wait_caught_up(&second, 1).await;
    let msgs = nats_messages(&nats).await;
    assert_eq!(
        msgs.len(),
        6,
        "the five before and the one after, once each"
    );
}

#[tokio::test]
async fn a_full_spool_answers_503_and_degrades_healthz_then_recovers_on_its_own() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let tables = format!(
        "[spool]\nmax_bytes = 65536\nsegment_bytes = 16384\n{}",
        nats_sink(&url, "")
    );
    let s = server_with("max_body_bytes = 8192", &tables, None);
    let mut accepted = 0;
    let mut refused = None;
    for n in 0..400 {
        match post_github(&s, &format!("full-{n}"), &github_body(n)).await {
            (200, _) => accepted += 1,
            (503, retry) => {
                refused = Some(retry);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    let retry = refused.expect("the spool fills with the broker away");
    assert_eq!(retry.as_deref(), Some("1"), "Retry-After");
    assert!(accepted > 10, "{accepted}");
    let h = health(&s).await;
    assert_eq!(h["result"], "degraded", "{h}");
    assert_eq!(h["spool"]["state"], "full", "{h}");

    let nats = Nats::start_on(port);
    wait_caught_up(&s, accepted).await;
    let deadline = Instant::now() + CATCH_UP;
    loop {
        match post_github(&s, "full-after", &github_body(1000)).await.0 {
            200 => break,
            503 => assert!(Instant::now() < deadline, "never recovered"),
            other => panic!("{other}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let h = health(&s).await;
    assert_eq!(h["result"], "ok", "{h}");
    wait_caught_up(&s, accepted + 1).await;
    assert_eq!(nats_count(&nats).await, accepted + 1);
}

#[tokio::test]
async fn two_replicas_given_the_same_github_delivery_store_one_entry() {
    let (nats, redis) = (Nats::start(), Redis::start());
    let tables = format!(
        "{}{}",
        nats_sink(&nats.url(), ""),
        redis_sink(&redis.url(), "")
    );
    let (a, b) = (server(&tables, None), server(&tables, None));
    let body = github_body(1);
    assert_eq!(post_github(&a, "same-delivery", &body).await.0, 200);
    assert_eq!(post_github(&b, "same-delivery", &body).await.0, 200);
    wait_caught_up(&a, 1).await;
    wait_caught_up(&b, 1).await;
    assert_eq!(log_records(&a.log_path).len(), 1);
    assert_eq!(log_records(&b.log_path).len(), 1);
    let msgs = nats_messages(&nats).await;
    assert_eq!(msgs.len(), 1, "one NATS message for one delivery");
    assert_eq!(&msgs[0].payload[..], &body[..]);
    assert_eq!(redis_entries(&redis).await.len(), 1, "one Redis entry");
}

#[tokio::test]
async fn a_required_sink_down_answers_503_and_the_retry_after_it_is_back_stores_one_entry() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let s = server(
        &nats_sink(&url, "required = true\nrequired_timeout_secs = 1"),
        None,
    );
    let body = github_body(7);
    let started = Instant::now();
    let (status, retry) = post_github(&s, "required-1", &body).await;
    assert_eq!(status, 503);
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited the timeout"
    );
    assert!(
        s.wait_for_stderr("did not confirm within 1 s", Duration::from_secs(1)),
        "{}",
        s.stderr()
    );

    let nats = Nats::start_on(port);
    let deadline = Instant::now() + CATCH_UP;
    loop {
        match post_github(&s, "required-1", &body).await.0 {
            200 => break,
            503 => assert!(Instant::now() < deadline, "never accepted: {}", s.stderr()),
            other => panic!("{other}"),
        }
    }
    wait_caught_up(&s, 1).await;
    let msgs = nats_messages(&nats).await;
    assert_eq!(
        msgs.len(),
        1,
        "the spooled first copy and the retries collapse into one"
    );
    assert_eq!(
        header(&msgs[0], "Webhook-Delivery-Id").as_deref(),
        Some("required-1")
    );
}

#[tokio::test]
async fn a_message_over_max_payload_is_dead_lettered_and_the_events_after_it_flow() {
    let nats = Nats::start_with_config("max_payload: 4096\n");
    let s = server(&nats_sink(&nats.url(), ""), None);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(8000)).into_bytes();
    assert_eq!(post_github(&s, "big-1", &big).await.0, 200);
    for n in 0..3 {
        assert_eq!(
            post_github(&s, &format!("small-{n}"), &github_body(n))
                .await
                .0,
            200
        );
    }
    let h = wait_caught_up(&s, 4).await;
    assert_eq!(sink(&h, "bus")["dead_lettered"], 1, "{h}");
    assert_eq!(sink(&h, "bus")["delivered"], 3, "{h}");
    let msgs = nats_messages(&nats).await;
    let ids: Vec<String> = msgs
        .iter()
        .map(|m| header(m, "Webhook-Delivery-Id").unwrap())
        .collect();
    assert_eq!(ids, ["small-0", "small-1", "small-2"]);

    let big_event = log_records(&s.log_path)
        .into_iter()
        .find(|r| r["delivery_id"] == "big-1")
        .unwrap();
    let letters = read_lines(
        &s.dir
            .path()
            .join("webhook-listener.spool/dead-letter/bus.jsonl"),
    );
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].contains(big_event["event_id"].as_str().unwrap()),
        "{}",
        letters[0]
    );
    assert!(
        s.wait_for_stderr("event dead-lettered", Duration::from_secs(1)),
        "{}",
        s.stderr()
    );
    let m = metrics(&s).await;
    assert!(
        m.contains("webhook_sink_dead_lettered_total{sink=\"bus\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn filters_pick_the_events_and_sighup_adds_and_removes_sinks() {
    let (nats, redis) = (Nats::start(), Redis::start());
    let pushes_only = nats_sink(&nats.url(), "events = [\"push\"]\nhooks = [\"/github\"]");
    let s = server(&pushes_only, None);
    assert_eq!(
        post_netbox(&s, &uuid::Uuid::new_v4().to_string()).await.0,
        200
    );
    assert_eq!(post_github(&s, "hup-1", &github_body(1)).await.0, 200);
    let h = wait_caught_up(&s, 1).await;
    assert_eq!(sink(&h, "bus")["delivered"], 1, "{h}");
    let ids: Vec<String> = nats_messages(&nats)
        .await
        .iter()
        .map(|m| header(m, "Webhook-Delivery-Id").unwrap())
        .collect();
    assert_eq!(ids, ["hup-1"], "the NetBox event is filtered out");

    // Add a Redis sink: it takes the events accepted from now on.
    let config = std::fs::read_to_string(&s.config_path).unwrap();
    let with_redis = format!("{config}\n{}", redis_sink(&redis.url(), ""));
    std::fs::write(&s.config_path, &with_redis).unwrap();
    s.signal(Signal::SIGHUP);
    assert!(
        s.wait_for_stderr("sink started by reload", Duration::from_secs(10)),
        "{}",
        s.stderr()
    );
    assert_eq!(post_github(&s, "hup-2", &github_body(2)).await.0, 200);
    let h = wait_caught_up(&s, 1).await;
    assert_eq!(sink(&h, "cache")["delivered"], 1, "{h}");
    let entries = redis_entries(&redis).await;
    assert_eq!(entries.len(), 1);
    assert!(entries[0]
        .1
        .iter()
        .any(|(k, v)| k == "delivery_id" && v == b"hup-2"));

    // Remove the NATS sink: it stops; its checkpoint stays for a later return.
    let without_nats = with_redis.replace(&pushes_only, "");
    std::fs::write(&s.config_path, without_nats).unwrap();
    s.signal(Signal::SIGHUP);
    assert!(
        s.wait_for_stderr("sink removed by reload", Duration::from_secs(20)),
        "{}",
        s.stderr()
    );
    let h = health(&s).await;
    let names: Vec<&str> = h["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cache"], "{h}");
    assert!(s
        .dir
        .path()
        .join("webhook-listener.spool/checkpoints/bus")
        .is_file());
}

#[tokio::test]
async fn check_config_lists_the_sinks_and_connect_reaches_each_broker_without_showing_credentials()
{
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let down = format!("redis://127.0.0.1:{}/0", free_port());
    let config = format!(
        "{}{}{}",
        hooks(),
        nats_sink(&nats.url(), ""),
        redis_sink(&down, "password = \"literal:hunter2-sink-secret\"")
    );
    let file = dir.path().join("c.toml");
    std::fs::write(&file, config).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(crate::common::bin())
            .arg("check-config")
            .args(args)
            .arg(&file)
            .output()
            .unwrap()
    };
    let plain = run(&[]);
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(plain.status.success(), "{text}");
    assert!(
        text.contains("2 sink(s):") && text.contains("stream=WEBHOOKS"),
        "{text}"
    );

    let connect = run(&["--connect"]);
    let text = String::from_utf8_lossy(&connect.stdout).into_owned()
        + &String::from_utf8_lossy(&connect.stderr);
    assert!(!connect.status.success(), "a broker is down: {text}");
    assert!(text.contains("connect bus: OK: nats-server"), "{text}");
    assert!(text.contains("connect cache: FAILED"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn a_log_that_lost_its_unsynced_tail_in_a_power_loss_is_written_back_from_the_spool() {
    // With a sink, a group syncs only the spool; the log is synced behind it and its checkpoint
    // says how far. A power loss is what the test plays: the checkpoint set back and the log cut
    // to it, mid-line, after a kill -9.
    let port = free_port(); // no broker: every event stays spooled
    let shared = tempfile::tempdir().unwrap();
    let (log, spool, tables) = shared_log_and_spool(shared.path(), port);
    let total = 200;
    let mut first = server(&tables, Some(&log));
    for n in 0..total {
        let (status, _) = post_github(&first, &format!("wal-{n}"), &github_body(n)).await;
        assert_eq!(status, 200);
    }
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).expect("killed");
    let original = std::fs::read(&log).unwrap();
    assert_eq!(original.iter().filter(|&&b| b == b'\n').count(), total);

    // A kill -9 loses nothing from the page cache: the restart writes nothing back.
    let mut second = server(&tables, Some(&log));
    assert_eq!(
        std::fs::read(&log).unwrap(),
        original,
        "nothing written twice"
    );
    second.signal(Signal::SIGKILL);
    second.wait_exit(Duration::from_secs(10)).expect("killed");

    // The power loss: synced through event 50 only, event 51's line torn.
    let keep = 50;
    let ends: Vec<usize> = original
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let torn = ends[keep - 1] + (ends[keep] - ends[keep - 1]) / 2;
    std::fs::write(&log, &original[..torn]).unwrap();
    std::fs::write(spool.join("checkpoints/event-log"), format!("{keep}\n")).unwrap();

    let third = server(&tables, Some(&log));
    assert!(
        third.wait_for_stderr("event log repaired from the spool", Duration::from_secs(10)),
        "{}",
        third.stderr()
    );
    let repaired = std::fs::read(&log).unwrap();
    assert!(
        repaired == original,
        "the torn line is cut and every lost line written back as it was, in order:\n{}",
        String::from_utf8_lossy(&repaired[ends[keep - 2]..ends[keep + 1].min(repaired.len())])
    );
    let line = third
        .stderr()
        .lines()
        .find(|l| l.contains("event log repaired"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains(&format!("restored={}", total - keep)),
        "{line}"
    );
    let (status, _) = post_github(&third, "wal-after", &github_body(total)).await;
    assert_eq!(status, 200);
    assert_eq!(log_records(&log).len(), total + 1);
}
