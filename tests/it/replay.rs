//! `webhook-listener replay`: the real binary against real `nats-server` and `redis-server`
//! processes, fed by what a running server wrote (its dead letters, its JSON event log), read back
//! with real clients.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::common::brokers::{Nats, Redis};
use crate::common::{
    bin, health, netbox_body, netbox_signature, read_lines, secret, signed, Options, Provider,
    Server, NETBOX_SECRET,
};
use crate::forwarding::hooks;

const STREAM: &str = "WEBHOOKS";
/// Generous for a loaded CI box; every wait polls and returns as soon as its condition holds.
const CATCH_UP: Duration = Duration::from_secs(60);

/// A server with both hooks, `tables` after them, and the event log in `log_format`.
fn server(tables: &str, log_format: &str) -> Server {
    let hooks = format!("{}{tables}", hooks());
    let log = format!("format = \"{log_format}\"");
    Server::start_with(Options {
        log: &log,
        hooks: &hooks,
        ..Default::default()
    })
}

fn redis_sink(name: &str, url: &str, stream: &str) -> String {
    format!(
        "[[sinks]]\nname = \"{name}\"\nkind = \"redis\"\nurl = \"{url}\"\nstream = \"{stream}\"\n"
    )
}

/// The server's own config with `tables` appended: what an operator points replay at.
fn config_with(s: &Server, tables: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&s.config_path).expect("config");
    let path = s.dir.path().join("replay.toml");
    std::fs::write(&path, format!("{text}\n{tables}")).expect("write replay.toml");
    path
}

/// Posts a signed GitHub push with delivery `id` and `content_type`; the status.
async fn post_github(s: &Server, id: &str, body: &[u8], content_type: &str) -> u16 {
    let key = secret(Provider::Github, 1);
    let mut req = crate::common::client()
        .post(s.url("/github"))
        .header("content-type", content_type)
        .header("x-github-event", "push");
    for (k, v) in signed(Provider::Github, &key, body, crate::common::now(), id) {
        req = req.header(k, v);
    }
    let resp = req.body(body.to_vec()).send().await.expect("request");
    resp.status().as_u16()
}

async fn post_netbox(s: &Server, request_id: &str) -> u16 {
    let body = netbox_body(request_id);
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &body);
    crate::common::client()
        .post(s.url("/webhook/"))
        .header("content-type", "application/json")
        .header("x-hook-signature", sig)
        .body(body)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// A pretty-printed body (line breaks the log folds) with a non-ASCII character.
fn github_body(n: usize) -> Vec<u8> {
    format!("{{\n  \"ref\": \"refs/heads/main\",\n  \"n\": {n},\n  \"text\": \"caf\u{e9}\"\n}}\n")
        .into_bytes()
}

/// Runs `webhook-listener replay ARGS` to its end (bounded), with stderr not a terminal.
async fn replay(config: &Path, args: &[&str]) -> Output {
    let run = tokio::process::Command::new(bin())
        .arg("replay")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(CATCH_UP, run)
        .await
        .expect("replay ended within its bound")
        .expect("replay ran")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit code, stdout, stderr, for assertion messages and checks.
fn outcome(o: &Output) -> (Option<i32>, String, String) {
    (o.status.code(), text(&o.stdout), text(&o.stderr))
}

fn log_records(path: &Path) -> Vec<(String, serde_json::Value)> {
    read_lines(path)
        .into_iter()
        .map(|l| {
            let v = serde_json::from_str(&l).expect("JSON log line");
            (l, v)
        })
        .collect()
}

/// The `payload` of a JSON log line, spelled exactly as the line holds it (the last field).
fn logged_payload(line: &str) -> Vec<u8> {
    let start = line.find(",\"payload\":").expect("payload field") + ",\"payload\":".len();
    line.as_bytes()[start..line.len() - 1].to_vec()
}

fn header(m: &async_nats::jetstream::Message, name: &str) -> Option<String> {
    m.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.as_str().to_owned())
}

/// Polls `/healthz` until sink `name` has dead-lettered `n` events.
async fn wait_dead_lettered(s: &Server, name: &str, n: u64) {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let h = health(s).await;
        let sink = h["sinks"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["name"] == name).cloned());
        if sink.as_ref().and_then(|x| x["dead_lettered"].as_u64()) == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter: {h}\n{}",
            s.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

type Entry = (String, Vec<(String, Vec<u8>)>);

async fn xrange(redis: &Redis, stream: &str) -> Vec<Entry> {
    let mut c = redis::Client::open(redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .expect("XRANGE")
}

fn field<'a>(e: &'a Entry, name: &str) -> Option<&'a [u8]> {
    e.1.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

#[tokio::test]
async fn dead_letters_are_replayed_once_the_broker_takes_them_and_then_nothing_more() {
    let mut nats = Nats::start_with_config("max_payload: 4096\n");
    let sink = format!(
        "[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"{}\"\nstream = \"{STREAM}\"\n",
        nats.url()
    );
    let s = server(&sink, "json");
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(8000)).into_bytes();
    assert_eq!(
        post_github(&s, "big-1", &big, "application/json").await,
        200
    );
    assert_eq!(
        post_github(&s, "small-1", b"{}", "application/json").await,
        200
    );
    wait_dead_lettered(&s, "bus", 1).await;
    let letters_path = s
        .dir
        .path()
        .join("webhook-listener.spool/dead-letter/bus.jsonl");
    let letter = |path: &Path| -> Vec<serde_json::Value> {
        read_lines(path)
            .iter()
            .map(|l| serde_json::from_str(l).expect("letter"))
            .collect()
    };
    let before = letter(&letters_path);
    assert_eq!(before.len(), 1, "{before:?}");
    let attempts = before[0]["attempts"].as_u64().expect("attempts");

    // The broker still refuses it: the letter stays, with the new attempt and error; exit 1.
    let o = replay(&s.config_path, &["--sink", "bus", "--dead-letters"]).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("0 sent, 1 failed"), "{out}\n{err}");
    let kept = letter(&letters_path);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["event"]["id"], before[0]["event"]["id"]);
    assert_eq!(kept[0]["attempts"].as_u64(), Some(attempts + 1));
    assert_ne!(kept[0]["dead_lettered_at"], before[0]["dead_lettered_at"]);

    nats.set_config("max_payload: 65536\n");
    nats.restart();
    let o = replay(&s.config_path, &["--sink", "bus", "--dead-letters"]).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("1 sent, 0 failed, 0 skipped, 0 unparsable"),
        "{out}"
    );
    let msgs = nats.messages(STREAM).await;
    let bigs: Vec<_> = msgs
        .iter()
        .filter(|m| header(m, "Webhook-Delivery-Id").as_deref() == Some("big-1"))
        .collect();
    assert_eq!(bigs.len(), 1, "exactly once");
    assert_eq!(bigs[0].payload.as_ref(), big.as_slice(), "body identical");
    assert_eq!(
        header(bigs[0], "Webhook-Event-Id"),
        before[0]["event"]["id"].as_str().map(str::to_owned),
        "the service's event id"
    );
    assert_eq!(
        header(bigs[0], "Nats-Msg-Id").as_deref(),
        Some("/github:big-1"),
        "the service's dedupe key"
    );
    assert!(letters_path.exists());
    assert!(read_lines(&letters_path).is_empty(), "file emptied");

    let o = replay(&s.config_path, &["--sink", "bus", "--dead-letters"]).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("0 sent, 0 failed"), "{out}");
    assert_eq!(nats.messages(STREAM).await.len(), msgs.len(), "nothing new");
}

#[tokio::test]
async fn from_log_sends_exactly_the_window_keeps_ids_and_is_safe_to_run_twice() {
    let redis = Redis::start();
    let s = server("", "json");
    // 0 github, 1 netbox, 2 github (charset), 3 github, 4 netbox, 5 github.
    for n in 0..6 {
        let status = match n {
            1 | 4 => post_netbox(&s, &uuid::Uuid::new_v4().to_string()).await,
            2 => {
                let ct = "application/json; charset=utf-8";
                post_github(&s, &format!("d-{n}"), &github_body(n), ct).await
            }
            _ => post_github(&s, &format!("d-{n}"), &github_body(n), "application/json").await,
        };
        assert_eq!(status, 200, "event {n}");
    }
    let logged = log_records(&s.log_path);
    assert_eq!(logged.len(), 6);
    let at = |i: usize| logged[i].1["received_at"].as_str().unwrap().to_owned();
    let id = |i: usize| logged[i].1["event_id"].as_str().unwrap().to_owned();
    assert!(at(1) < at(4), "times increase: {} {}", at(1), at(4));
    let config = config_with(
        &s,
        &format!(
            "{}{}",
            redis_sink("cache", &redis.url(), "webhooks"),
            redis_sink("nb", &redis.url(), "netbox")
        ),
    );
    let log = s.log_path.display().to_string();
    // --since inclusive, --until exclusive: events 1, 2 and 3.
    let window = [
        "--sink",
        "cache",
        "--from-log",
        &log,
        "--since",
        &at(1),
        "--until",
        &at(4),
    ];
    for run in 0..2 {
        let o = replay(&config, &window).await;
        let (code, out, err) = outcome(&o);
        assert_eq!(code, Some(0), "run {run}: {out}\n{err}");
        assert!(
            out.contains("3 sent, 0 failed, 3 skipped, 0 unparsable"),
            "run {run}: {out}\n{err}"
        );
        let got = xrange(&redis, "webhooks").await;
        let ids: Vec<String> = got
            .iter()
            .map(|e| text(field(e, "event_id").unwrap()))
            .collect();
        assert_eq!(ids, [id(1), id(2), id(3)], "run {run}: once each (dedupe)");
        for (e, i) in got.iter().zip(1..) {
            let (line, rec) = &logged[i];
            assert_eq!(field(e, "body"), Some(logged_payload(line).as_slice()));
            assert_eq!(field(e, "hook"), rec["hook"].as_str().map(str::as_bytes));
            let received = rec["received_at"].as_str().unwrap().as_bytes();
            assert_eq!(field(e, "received_at"), Some(received));
        }
        assert_eq!(
            field(&got[0], "event"),
            Some(&b"dcim.site.created"[..]),
            "NetBox's <model>.<event>, as intake builds it"
        );
        assert_eq!(field(&got[1], "event"), Some(&b"push"[..]));
        assert_eq!(field(&got[1], "delivery_id"), Some(&b"d-2"[..]));
        assert_eq!(
            field(&got[1], "content_type"),
            Some(&b"application/json; charset=utf-8"[..]),
            "the logged content type"
        );
        // The log folds line breaks: the body replayed is the body as logged, each line break a
        // space (so as long as the one sent).
        let folded: Vec<u8> = github_body(2)
            .iter()
            .map(|&b| if b == b'\n' { b' ' } else { b })
            .collect();
        assert_eq!(field(&got[1], "body"), Some(folded.as_slice()));
    }

    let o = replay(
        &config,
        &["--sink", "nb", "--from-log", &log, "--hook", "/webhook/"],
    )
    .await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("2 sent, 0 failed, 4 skipped"), "{out}");
    let ids: Vec<String> = xrange(&redis, "netbox")
        .await
        .iter()
        .map(|e| text(field(e, "event_id").unwrap()))
        .collect();
    assert_eq!(ids, [id(1), id(4)]);
}

#[tokio::test]
async fn unparsable_lines_are_counted_by_number_and_a_text_log_is_refused() {
    let redis = Redis::start();
    let s = server("", "json");
    for n in 0..2 {
        let id = format!("u-{n}");
        assert_eq!(
            post_github(&s, &id, &github_body(n), "application/json").await,
            200
        );
    }
    let lines = read_lines(&s.log_path);
    assert_eq!(lines.len(), 2);
    let torn = &lines[1][..lines[1].len() / 2];
    let damaged = s.dir.path().join("damaged.log");
    std::fs::write(
        &damaged,
        format!(
            "{}\nnot json: s3cret-content\n{}\n{torn}\n",
            lines[0], lines[1]
        ),
    )
    .unwrap();
    let config = config_with(&s, &redis_sink("cache", &redis.url(), "webhooks"));
    let path = damaged.display().to_string();
    let o = replay(&config, &["--sink", "cache", "--from-log", &path]).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains("2 sent, 0 failed, 0 skipped, 2 unparsable"),
        "{out}\n{err}"
    );
    assert!(err.contains("line 2: not JSON"), "{err}");
    assert!(err.contains("line 4: "), "{err}");
    assert!(!err.contains("s3cret") && !out.contains("s3cret"), "{err}");
    assert!(!err.contains(torn), "no line content in: {err}");
    assert_eq!(xrange(&redis, "webhooks").await.len(), 2);

    let t = server("", "text");
    assert_eq!(
        post_github(&t, "t-1", &github_body(1), "application/json").await,
        200
    );
    let config = config_with(&t, &redis_sink("cache", &redis.url(), "text"));
    let log = t.log_path.display().to_string();
    let o = replay(&config, &["--sink", "cache", "--from-log", &log]).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("is a text-format event log") && err.contains("format = \"json\""),
        "{err}"
    );
    assert!(xrange(&redis, "text").await.is_empty(), "nothing sent");

    let o = replay(&config, &["--sink", "nope", "--from-log", &log]).await;
    let (code, _, err) = outcome(&o);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no sink named \"nope\"") && err.contains("configured: cache"),
        "{err}"
    );
}

#[tokio::test]
async fn a_destination_that_stays_down_ends_the_replay_early_without_showing_credentials() {
    let s = server("", "json");
    for n in 0..2 {
        let id = format!("down-{n}");
        assert_eq!(
            post_github(&s, &id, &github_body(n), "application/json").await,
            200
        );
    }
    let port = crate::common::brokers::free_port();
    let sink = format!(
        "[[sinks]]\nname = \"cache\"\nkind = \"redis\"\nurl = \"redis://u:hunter2@127.0.0.1:{port}/0\"\nstream = \"w\"\n"
    );
    let config = config_with(&s, &sink);
    let log = s.log_path.display().to_string();
    let args = ["--sink", "cache", "--from-log", &log, "--max-attempts", "2"];
    let o = replay(&config, &args).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains("0 sent, 1 failed") && out.contains("stopped early"),
        "the second event is not tried: {out}\n{err}"
    );
    assert!(err.contains("retrying in"), "{err}");
    assert!(err.contains("not delivered after 2 attempt(s)"), "{err}");
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "{out}\n{err}"
    );
}
