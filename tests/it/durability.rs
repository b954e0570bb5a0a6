//! Issue #4: nothing acknowledged is ever lost. Real server, real files, real signals, 16 clients.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Ids acknowledged (200) by the server, and every id sent.
#[derive(Default)]
struct Load {
    acked: Mutex<Vec<String>>,
    sent: Mutex<Vec<String>>,
    ack_count: AtomicUsize,
    stop: AtomicBool,
}

/// 16 clients sending unique signed NetBox events until `stop` (or the server goes away).
fn start_load(url: String) -> (Arc<Load>, Vec<tokio::task::JoinHandle<()>>) {
    let load = Arc::new(Load::default());
    let tasks = (0..16)
        .map(|_| {
            let load = load.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let client = client();
                let mut failures = 0;
                while !load.stop.load(Ordering::Relaxed) && failures < 50 {
                    let id = uuid::Uuid::new_v4().to_string();
                    let body = netbox_body(&id);
                    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &body);
                    load.sent.lock().unwrap().push(id.clone());
                    let resp = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hook-signature", sig)
                        .body(body)
                        .send()
                        .await;
                    match resp {
                        Ok(r) if r.status() == 200 => {
                            load.acked.lock().unwrap().push(id);
                            load.ack_count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => {
                            failures += 1;
                            tokio::task::yield_now().await;
                        }
                    }
                }
            })
        })
        .collect();
    (load, tasks)
}

/// A NetBox hook at /webhook/ with these `[log]` settings.
fn netbox_server(log: &str) -> Server {
    Server::netbox("", log)
}

/// Waits until `n` events were acknowledged (the trigger for the fault, instead of a sleep).
async fn until_acked(load: &Load, n: usize) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while load.ack_count.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("load makes progress");
}

fn ids_in(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| line_payload(l)["request_id"].as_str().unwrap().to_string())
        .collect()
}

async fn finish(load: &Load, tasks: Vec<tokio::task::JoinHandle<()>>) {
    load.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_event() {
    kill_9("fsync = true").await;
}

/// Without fsync a 200 still means the line reached the kernel, which a killed process cannot undo.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_without_fsync_loses_no_acknowledged_event_either() {
    kill_9("fsync = false").await;
}

async fn kill_9(log: &str) {
    let server = netbox_server(log);
    let (load, tasks) = start_load(server.url("/webhook/"));
    until_acked(&load, 300).await;
    server.signal(Signal::SIGKILL);
    finish(&load, tasks).await;
    let logged: HashSet<String> = ids_in(&server.log_lines()).into_iter().collect();
    let acked = load.acked.lock().unwrap().clone();
    let missing: Vec<_> = acked.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(acked.len() >= 300);
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events missing",
        missing.len(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_nothing_and_exits_0() {
    let mut server = Server::start(&netbox_hook("/webhook/"));
    let (load, tasks) = start_load(server.url("/webhook/"));
    until_acked(&load, 300).await;
    server.signal(Signal::SIGTERM);
    let status =
        tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(15))).expect("exits");
    finish(&load, tasks).await;
    assert!(status.success(), "{status:?}");
    let logged = ids_in(&server.log_lines());
    let unique: HashSet<&String> = logged.iter().collect();
    assert_eq!(unique.len(), logged.len(), "no event logged twice");
    let acked = load.acked.lock().unwrap().clone();
    let missing = acked.iter().filter(|id| !unique.contains(id)).count();
    assert_eq!(missing, 0, "of {} acknowledged", acked.len());
    let sent: HashSet<String> = load.sent.lock().unwrap().iter().cloned().collect();
    assert!(
        unique.iter().all(|id| sent.contains(*id)),
        "nothing logged that was not sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rename_and_sighup_under_load_puts_each_event_in_exactly_one_file() {
    rename_and_sighup("fsync = true").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rename_and_sighup_without_fsync_too() {
    rename_and_sighup("fsync = false").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rename_without_sighup_is_noticed_and_loses_nothing() {
    for log in ["fsync = true", "fsync = false"] {
        rotate(log, false).await;
    }
}

async fn rename_and_sighup(log: &str) {
    rotate(log, true).await;
}

/// Renames the log under load, with or without a SIGHUP, and checks that every acknowledged event
/// is in exactly one of the two files. Without the signal the writer must notice the rename itself.
async fn rotate(log: &str, sighup: bool) {
    let server = netbox_server(log);
    let (load, tasks) = start_load(server.url("/webhook/"));
    until_acked(&load, 200).await;
    let rotated = server.dir.path().join("events.log.1");
    std::fs::rename(&server.log_path, &rotated).unwrap();
    if sighup {
        server.signal(Signal::SIGHUP);
    } else {
        // Readiness: the writer has opened a new file at the path and written to it.
        tokio::time::timeout(Duration::from_secs(10), async {
            while std::fs::metadata(&server.log_path).map_or(true, |m| m.len() == 0) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the renamed log is replaced by a new file without a SIGHUP");
    }
    let before = load.ack_count.load(Ordering::Relaxed);
    until_acked(&load, before + 200).await;
    finish(&load, tasks).await;

    let old = ids_in(&read_lines(&rotated));
    let new = ids_in(&server.log_lines());
    assert!(
        !old.is_empty() && !new.is_empty(),
        "old {} new {}",
        old.len(),
        new.len()
    );
    let mut seen = HashSet::new();
    for id in old.iter().chain(new.iter()) {
        assert!(
            seen.insert(id.clone()),
            "{id} logged twice across the rotation"
        );
    }
    let acked = load.acked.lock().unwrap().clone();
    let missing = acked.iter().filter(|id| !seen.contains(*id)).count();
    assert_eq!(missing, 0, "of {} acknowledged", acked.len());
    assert!(server.wait_for_stderr("event log reopened", Duration::from_secs(5)));
}

#[tokio::test]
async fn deleted_log_file_is_recreated_on_the_next_event() {
    for log in ["fsync = true", "fsync = false"] {
        deleted_log_file(log).await;
    }
}

async fn deleted_log_file(log: &str) {
    let server = netbox_server(log);
    let url = server.url("/webhook/");
    assert_eq!(
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10").await,
        200
    );
    std::fs::remove_file(&server.log_path).unwrap();
    assert_eq!(
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a11").await,
        200
    );
    let lines = server.log_lines();
    assert_eq!(
        lines.len(),
        1,
        "the new file holds the event acknowledged after the delete"
    );
    assert!(lines[0].contains("2f8d2d6f7a11"));
}

#[tokio::test]
async fn stalled_body_is_cut_off_while_others_are_served() {
    let server = Server::netbox("request_timeout_secs = 1", "");
    // Headers promise 100 bytes; 10 arrive; then nothing.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(b"POST /webhook/ HTTP/1.1\r\nHost: x\r\nX-Hook-Signature: 00\r\nContent-Length: 100\r\n\r\n{\"event\":")
        .await
        .unwrap();
    // Meanwhile, a normal client is served.
    let (status, _) = post_netbox(
        &server.url("/webhook/"),
        &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10"),
    )
    .await;
    assert_eq!(status, 200);
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
        .await
        .expect("cut off within the timeout")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");

    // A client that stalls in the middle of its headers is disconnected too.
    let mut slow_headers = TcpStream::connect(server.addr).await.unwrap();
    slow_headers
        .write_all(b"POST /webhook/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), slow_headers.read(&mut buf))
        .await
        .expect("header stall cut off within the timeout");
    assert!(
        matches!(r, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 408")
    );
    assert_eq!(server.log_lines().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_delay_a_new_request() {
    let _ = rlimit::increase_nofile_limit(8192);
    let server = Server::start(&netbox_hook("/webhook/"));
    let mut idle = Vec::with_capacity(1000);
    for _ in 0..1000 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect idle"));
    }
    // Some of them sent a complete request first, then sat idle on keep-alive.
    for s in idle.iter_mut().take(50) {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(5),
        post_netbox(
            &server.url("/webhook/"),
            &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10"),
        ),
    )
    .await
    .expect("served promptly despite 1,000 idle connections");
    assert_eq!(status, 200);
    drop(idle);
}

#[tokio::test]
async fn in_flight_cap_answers_503_with_retry_after() {
    // The global cap alone: the holders come from one address (no per-address share) and stall
    // on purpose (no body-rate cut, which would free their slots after a second).
    let server = Server::netbox(
        "max_concurrent_requests = 2\nrequest_timeout_secs = 5\nclient_share_divisor = 1\nmin_body_bytes_per_sec = 0",
        "",
    );
    let mut holders = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"POST /webhook/ HTTP/1.1\r\nHost: x\r\nX-Hook-Signature: 00\r\nContent-Length: 10\r\n\r\n{")
            .await
            .unwrap();
        holders.push(s);
    }
    // Readiness: both holders are in flight once the gauge says so.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let m = metrics(&server).await;
        if m.lines()
            .any(|l| l.starts_with("webhook_requests_in_flight") && l.ends_with(" 2"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "holders never in flight:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resp = client()
        .post(server.url("/webhook/"))
        .header("x-hook-signature", "00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    drop(holders);
}

#[tokio::test]
async fn json_log_format_has_the_fields_and_the_whole_payload() {
    let server = Server::netbox("", "format = \"json\"\nfsync = false");
    for (_, body, sig) in netbox_fixtures() {
        let (status, _) = post(&server.url("/webhook/"), &[("x-hook-signature", sig)], body).await;
        assert_eq!(status, 200);
    }
    let fixtures = netbox_fixtures();
    let lines = server.log_lines();
    assert_eq!(lines.len(), fixtures.len());
    for ((name, body, _), line) in fixtures.iter().zip(&lines) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
        let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["payload"], sent, "{name}");
        assert_eq!(v["hook"], "/webhook/");
        assert_eq!(v["provider"], "netbox");
        assert_eq!(v["client"], "127.0.0.1");
        assert_eq!(v["event"], sent["event"]);
        assert_eq!(v["request_id"], sent["request_id"]);
        assert!(v["received_at"].as_str().unwrap().ends_with('Z'));
        assert!(
            v["timestamp"].as_str().unwrap().contains('T'),
            "normalised: {}",
            v["timestamp"]
        );
    }
}

#[tokio::test]
async fn write_failure_is_503_and_the_writer_recovers_on_its_own() {
    for log in ["fsync = true", "fsync = false"] {
        write_failure_recovers(log).await;
    }
}

async fn write_failure_recovers(log_settings: &str) {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("logs");
    std::fs::create_dir(&sub).unwrap();
    let log = sub.join("events.log");
    let log_str = log.display().to_string();
    let server = Server::start_with(Options {
        log: log_settings,
        hooks: &netbox_hook("/webhook/"),
        log_file: Some(&log_str),
        ..Default::default()
    });
    let url = server.url("/webhook/");
    assert_eq!(
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10").await,
        200
    );
    // The log's directory disappears: the file cannot be reopened.
    std::fs::remove_dir_all(&sub).unwrap();
    let (status, json) =
        post_netbox(&url, &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a11")).await;
    assert_eq!(status, 503, "{json}");
    let status_now = health(&server).await;
    assert_eq!(status_now["result"], "degraded");
    // Writing works again: the next event is stored without a restart.
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a12").await,
        200
    );
    let lines = read_lines(&log);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("2f8d2d6f7a12"));
    let status_now = health(&server).await;
    assert_eq!(status_now["result"], "ok");
    // stderr is read by a thread: wait for the line rather than race it.
    assert!(
        server.wait_for_stderr("event log write failed", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
}
