//! Issue #2 end to end: the real binary, real NetBox bodies, real sockets and the real event log.

use std::time::Duration;

use crate::common::*;
use futures_util::stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn every_real_netbox_body_from_every_version_is_accepted_and_logged_whole() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let fixtures = netbox_fixtures();
    assert!(fixtures.len() >= 8);
    for (name, body, sig) in &fixtures {
        let (status, json) = post(
            &server.url("/webhook/"),
            &[("x-hook-signature", sig.clone())],
            body.clone(),
        )
        .await;
        assert_eq!(status, 200, "{name}: {json}");
        assert_eq!(json["result"], "ok");
    }
    let lines = server.log_lines();
    assert_eq!(lines.len(), fixtures.len());
    for ((name, body, _), line) in fixtures.iter().zip(&lines) {
        let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(line_payload(line), sent, "{name}: nothing sent is dropped");
        assert!(line.contains(" hook=/webhook/ "), "{line}");
        assert!(
            line.contains(&format!(" event={} ", sent["event"].as_str().unwrap())),
            "{line}"
        );
        let model = sent
            .get("object_type")
            .or(sent.get("model"))
            .unwrap()
            .as_str()
            .unwrap();
        assert!(line.contains(&format!(" model={model} ")), "{line}");
        assert!(
            line.contains(&format!(
                " request_id={} ",
                sent["request_id"].as_str().unwrap()
            )),
            "{line}"
        );
        assert!(line.contains(" username=admin "), "{line}");
        assert!(
            line.contains(&format!(" url={} ", sent["data"]["url"].as_str().unwrap())),
            "{line}"
        );
        assert!(!line.contains(NETBOX_SECRET));
    }
    // The bulk pair shares one request_id and both are kept: it is not a delivery id.
    let ids: Vec<String> = fixtures
        .iter()
        .filter(|(n, _, _)| n.contains("bulk"))
        .map(|(_, b, _)| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["request_id"].to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "fixture bulk pair shares a request_id");
}

#[tokio::test]
async fn signature_failures_are_401_with_generic_message_and_leave_no_line() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let url = server.url("/webhook/");
    let body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");
    let good = netbox_signature(NETBOX_SECRET.as_bytes(), &body);
    let sha256 = hex::encode(sign::mac(
        Algorithm::Sha256,
        NETBOX_SECRET.as_bytes(),
        &[&body],
    ));
    let cases: Vec<(&str, Option<String>)> = vec![
        (
            "wrong secret",
            Some(netbox_signature(b"not-the-secret", &body)),
        ),
        ("sha256 where sha512 is due", Some(sha256)),
        ("odd-length hex", Some(good[..127].to_string())),
        ("non-hex", Some(format!("zz{}", &good[2..]))),
        ("empty", Some(String::new())),
        ("no header", None),
        ("prefixed", Some(format!("sha512={good}"))),
    ];
    for (what, sig) in cases {
        let headers: Vec<(&str, String)> = sig
            .map(|s| vec![("x-hook-signature", s)])
            .unwrap_or_default();
        let (status, json) = post(&url, &headers, body.clone()).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(
            json["result"], "invalid signature",
            "{what}: generic message"
        );
    }
    // A tampered body with a signature of the original.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let (status, _) = post(&url, &[("x-hook-signature", good.clone())], tampered).await;
    assert_eq!(status, 401);
    assert!(
        server.log_lines().is_empty(),
        "no rejected request is logged"
    );
    // Upper-case hex of the right signature is fine, and the service still answers.
    let (status, _) = post(
        &url,
        &[("x-hook-signature", good.to_ascii_uppercase())],
        body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(server.log_lines().len(), 1);
    // The diagnostics say which check failed.
    let err = server.stderr();
    assert!(err.contains("odd-length"), "{err}");
    assert!(err.contains("missing header x-hook-signature"), "{err}");
    assert!(err.contains("mismatch"), "{err}");
    assert!(!err.contains(NETBOX_SECRET), "secret never in diagnostics");
}

fn big_json(total: usize) -> Vec<u8> {
    let head = br#"{"event": "created", "timestamp": "2026-11-23T15:20:42+00:00", "object_type": "dcim.site", "data": {"id": 7, "comments": ""#;
    let tail = br#""}}"#;
    let mut v = head.to_vec();
    v.resize(total - tail.len(), b'x');
    v.extend_from_slice(tail);
    assert_eq!(v.len(), total);
    v
}

fn chunked(body: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(stream::iter(chunks))
}

#[tokio::test]
async fn body_cap_applies_to_declared_and_streamed_bodies() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let url = server.url("/webhook/");

    // Declared Content-Length above the cap: 413 before the body is read.
    let big = big_json(1_200_000);
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &big);
    let (status, json) = post(&url, &[("x-hook-signature", sig.clone())], big.clone()).await;
    assert_eq!(status, 413);
    assert!(
        json["result"].as_str().unwrap().contains("1000000"),
        "{json}"
    );

    // Chunked (no Content-Length) growing past the cap: 413 too.
    let resp = client()
        .post(&url)
        .header("x-hook-signature", sig)
        .body(chunked(big))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let json: serde_json::Value = resp.json().await.unwrap();
    assert!(json["result"].as_str().unwrap().contains("larger than"));

    // 900 kB chunked and signed: accepted.
    let ok = big_json(900_000);
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &ok);
    let resp = client()
        .post(&url)
        .header("x-hook-signature", sig)
        .body(chunked(ok))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].len() > 900_000);
}

#[tokio::test]
async fn declared_oversize_is_refused_without_reading_the_body() {
    let server = Server::start(&netbox_hook("/webhook/"));
    // Send only the headers: the answer must come although no body byte was sent.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /webhook/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Hook-Signature: 00\r\nContent-Length: 5000000\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answered before the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains(r#"{"result":"#), "{text}");
}

#[tokio::test]
async fn bad_json_is_400_and_bad_shapes_are_422_naming_the_field() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let url = server.url("/webhook/");
    let (status, json) = post_netbox(&url, br#"{"event": "created", "timestamp": "#).await;
    assert_eq!(status, 400);
    assert!(
        json["result"].as_str().unwrap().contains("line 1 column"),
        "{json}"
    );
    let (status, _) = post_netbox(&url, b"not json at all").await;
    assert_eq!(status, 400);

    let valid: serde_json::Value =
        serde_json::from_slice(&netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10")).unwrap();
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "event",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("event");
            }),
        ),
        (
            "timestamp",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("timestamp");
            }),
        ),
        ("username", Box::new(|v| v["username"] = 42.into())),
        (
            "request_id",
            Box::new(|v| v["request_id"] = "not-a-uuid".into()),
        ),
        (
            "timestamp",
            Box::new(|v| v["timestamp"] = "23/11/2026 15:20".into()),
        ),
        (
            "timestamp",
            Box::new(|v| v["timestamp"] = "2026-11-23 15:20:42".into()),
        ),
        (
            "event",
            Box::new(|v| v["event"] = serde_json::json!(["created"])),
        ),
        ("data", Box::new(|v| v["data"] = "a string".into())),
    ];
    for (field, mutate) in cases {
        let mut v = valid.clone();
        mutate(&mut v);
        let (status, json) = post_netbox(&url, &serde_json::to_vec(&v).unwrap()).await;
        assert_eq!(status, 422, "{field}: {json}");
        assert!(
            json["result"].as_str().unwrap().contains(field),
            "message names {field}: {json}"
        );
    }
    // Job events: null username/request_id, no snapshots; unknown extra fields are kept.
    let job = br#"{"event": "job_ended", "timestamp": "2026-11-23T15:20:42+00:00", "object_type": "core.job", "username": null, "request_id": null, "data": {"id": 3, "status": "completed"}, "plugin_extra": {"x": 1}}"#;
    let (status, _) = post_netbox(&url, job).await;
    assert_eq!(status, 200);
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1, "only the valid event is logged");
    assert_eq!(line_payload(&lines[0])["plugin_extra"]["x"], 1);
    assert!(lines[0].contains(" event=job_ended "));
}

/// The newest accepted delivery of `/webhook/` on the admin API.
async fn newest_accepted(server: &Server) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = client()
        .get(server.admin_url("/api/deliveries"))
        .query(&[("hook", "/webhook/"), ("outcome", "accepted")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    rows.into_iter().next().expect("an accepted delivery")
}

/// NetBox's `<model>.<event>` goes to the admin ring, exec argv/env and relay headers like every
/// other provider's event type: capped at 256 bytes, and dropped when it holds a control.
#[tokio::test]
async fn a_huge_or_control_netbox_event_type_is_capped_or_dropped() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let url = server.url("/webhook/");
    let mut v: serde_json::Value =
        serde_json::from_slice(&netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10")).unwrap();
    v["event"] = "e".repeat(900_000).into();
    let (status, json) = post_netbox(&url, &serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(status, 200, "{json}");
    let event = newest_accepted(&server).await["event"]
        .as_str()
        .expect("an event type")
        .to_owned();
    assert!(event.len() <= 256, "{} bytes", event.len());
    assert!(event.starts_with("dcim.site.eee"), "{event}");

    v["event"] = "created\u{1b}]0;owned\u{7}\n".into();
    let (status, json) = post_netbox(&url, &serde_json::to_vec(&v).unwrap()).await;
    assert_eq!(status, 200, "{json}");
    let r = newest_accepted(&server).await;
    assert!(r["event"].is_null(), "a control in the event type: {r}");
    // The log line keeps what was sent, escaped, as for every event.
    let line = server.log_lines().pop().unwrap();
    assert!(!line.contains('\u{1b}'), "{line}");
    assert_eq!(line_payload(&line)["event"], v["event"]);
}

/// A bad value is named, not echoed: a 1 MB one does not come back in the 422, the diagnostic or
/// the admin ring.
#[tokio::test]
async fn a_422_quotes_at_most_the_start_of_the_offending_value() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let url = server.url("/webhook/");
    let valid: serde_json::Value =
        serde_json::from_slice(&netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10")).unwrap();
    let huge = format!("2026-{}", "9".repeat(900_000));
    // A timestamp that is not one; strings where objects belong (serde's "invalid type" quotes).
    let cases: [(&str, serde_json::Value); 3] = [
        ("timestamp", huge.clone().into()),
        ("data", huge.clone().into()),
        ("snapshots", huge.clone().into()),
    ];
    for (field, value) in cases {
        let mut v = valid.clone();
        v[field] = value;
        let (status, json) = post_netbox(&url, &serde_json::to_vec(&v).unwrap()).await;
        assert_eq!(status, 422, "{field}: {json}");
        let reason = json["result"].as_str().unwrap();
        assert!(reason.contains(field), "names {field}: {reason}");
        assert!(
            reason.len() < 400,
            "{field}: {} bytes: {}",
            reason.len(),
            &reason[..400]
        );
        assert!(
            reason.contains("2026-9999"),
            "the start is quoted: {reason}"
        );
        assert!(reason.contains('…'), "and marked as cut: {reason}");
    }
    let stderr = server.stderr();
    assert!(
        stderr.contains("request refused"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(
        stderr.lines().all(|l| l.len() < 2000),
        "no diagnostic line carries the value"
    );
    let rows: Vec<serde_json::Value> = client()
        .get(server.admin_url("/api/deliveries"))
        .query(&[("hook", "/webhook/"), ("outcome", "invalid_payload")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert!(r["reason"].as_str().unwrap().len() < 400, "{}", r["reason"]);
    }
}

#[tokio::test]
async fn wrong_method_and_unknown_path_then_still_serving() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let resp = client().get(server.url("/webhook/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    let json: serde_json::Value = resp.json().await.unwrap();
    assert!(json["result"].is_string());
    let (status, json) = post_netbox(&server.url("/nope"), b"{}").await;
    assert_eq!(status, 404);
    assert_eq!(json["result"], "no hook at this path");
    let (status, _) = post_netbox(&server.url("/webhook"), b"{}").await;
    assert_eq!(status, 404, "paths match exactly");
    let (status, _) = post_netbox(
        &server.url("/webhook/"),
        &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unwritable_event_log_is_503_never_2xx_and_health_reports_it() {
    let server = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        log: "fsync = false\n",
        log_file: Some("/dev/full"),
        ..Default::default()
    });
    let (status, json) = post_netbox(
        &server.url("/webhook/"),
        &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10"),
    )
    .await;
    assert_eq!(status, 503, "{json}");
    let status_now = health(&server).await;
    assert_eq!(status_now["result"], "degraded");
    // The error itself (with the log's path) is in the diagnostics, not on the public port.
    assert_eq!(status_now["event_log"], "failing", "{status_now}");
    assert!(
        server.wait_for_stderr("No space", Duration::from_secs(30)),
        "{}",
        server.stderr()
    );
    let (status, _) = post_netbox(
        &server.url("/webhook/"),
        &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a11"),
    )
    .await;
    assert_eq!(status, 503, "still serving, still honest");
}

#[tokio::test]
async fn sigterm_stops_cleanly_with_exit_0() {
    let mut server = Server::start(&netbox_hook("/webhook/"));
    let (status, _) = post_netbox(
        &server.url("/webhook/"),
        &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10"),
    )
    .await;
    assert_eq!(status, 200);
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let st = server
        .wait_exit(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(st.success(), "{st:?}");
    assert_eq!(server.log_lines().len(), 1);
}

#[test]
fn embedded_default_serves_webhook_from_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("WEBHOOK_LISTENER_CONFIG")
        .env("WEBHOOK_SECRET", NETBOX_SECRET);
    let log = dir.path().join("webhook-listener.log");
    let server = Server::spawn(cmd, dir, log.clone(), Default::default());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (name, body, sig) = netbox_fixtures().remove(0);
    let (status, json) = rt.block_on(post(
        &server.url("/webhook/"),
        &[("x-hook-signature", sig)],
        body,
    ));
    assert_eq!(status, 200, "{name}: {json}");
    assert_eq!(
        read_lines(&log).len(),
        1,
        "./webhook-listener.log in the working directory"
    );
}

#[test]
fn unresolvable_secret_stops_startup_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env_remove("WEBHOOK_SECRET")
        .env_remove("WEBHOOK_LISTENER_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WEBHOOK_SECRET"), "{err}");
}
