//! Issue 11, hole 6: replay protection cannot be flushed by another hook's traffic, and an id's
//! length never turns de-duplication off.

use std::process::Command;

use crate::common::*;
use webhook_listener::signature::Provider;

/// A Standard Webhooks hook `/A` and a GitLab hook `/B`, 50 ids remembered at most.
fn two_hooks() -> (Server, String, String) {
    let a = secret(Provider::StandardWebhooks, 1);
    let b = secret(Provider::Gitlab, 1);
    let hooks = format!(
        "{}{}",
        hook(
            Provider::StandardWebhooks,
            "/A",
            std::slice::from_ref(&a),
            ""
        ),
        hook(Provider::Gitlab, "/B", std::slice::from_ref(&b), "")
    );
    let server = Server::start_with(Options {
        top: "dedupe_max_entries = 50\ndedupe_window_secs = 3600",
        hooks: &hooks,
        ..Default::default()
    });
    (server, a, b)
}

#[tokio::test]
async fn another_hooks_flood_does_not_evict_ids() {
    let (server, a, b) = two_hooks();
    let body = br#"{"type":"invoice.paid"}"#.to_vec();
    let x = signed(Provider::StandardWebhooks, &a, &body, now(), "msg_X");
    let (status, _) = post(&server.url("/A"), &x, body.clone()).await;
    assert_eq!(status, 200);

    // GitLab's token is static: whoever holds one captured request chooses Idempotency-Key freely.
    for i in 0..200 {
        let mut h = signed(Provider::Gitlab, &b, b"{}", now(), &format!("flood-{i}"));
        h.push(("idempotency-key".into(), format!("flood-{i}")));
        let (status, _) = post(&server.url("/B"), &h, b"{}".to_vec()).await;
        assert_eq!(status, 200);
    }

    let (status, json) = post(&server.url("/A"), &x, body).await;
    assert_eq!(status, 200);
    assert_eq!(
        json["duplicate"], true,
        "replay of X after the flood: {json}"
    );
    let a_lines = server
        .log_lines()
        .into_iter()
        .filter(|l| l.contains("msg_X"))
        .count();
    assert_eq!(a_lines, 1, "X logged once");

    // B's own table is bounded: its flood evicted its own ids early, and that is counted.
    let m = metrics(&server).await;
    let line = m
        .lines()
        .find(|l| l.starts_with("webhook_listener_dedupe_evictions_total{hook=\"/B\"}"))
        .unwrap_or_else(|| panic!("no eviction metric for /B in\n{m}"));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 150, "{line}");
    assert!(
        !m.contains("webhook_listener_dedupe_evictions_total{hook=\"/A\"} 1"),
        "{m}"
    );
    assert!(
        server.wait_for_stderr("evicted before", std::time::Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    let warnings = server.stderr().matches("evicted before").count();
    assert_eq!(warnings, 1, "one warning per interval: {}", server.stderr());
}

#[tokio::test]
async fn ids_survive_a_reload() {
    let (server, a, _) = two_hooks();
    let body = br#"{"n":1}"#.to_vec();
    let x = signed(Provider::StandardWebhooks, &a, &body, now(), "msg_reload");
    assert_eq!(post(&server.url("/A"), &x, body.clone()).await.0, 200);
    server.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(server.wait_for_stderr("config reloaded", std::time::Duration::from_secs(10)));
    let (status, json) = post(&server.url("/A"), &x, body).await;
    assert_eq!(status, 200);
    assert_eq!(json["duplicate"], true, "{json}");
}

#[tokio::test]
async fn long_ids_are_still_deduplicated() {
    let sw = secret(Provider::StandardWebhooks, 1);
    let st = secret(Provider::Stripe, 1);
    let hooks = format!(
        "{}{}",
        hook(
            Provider::StandardWebhooks,
            "/sw",
            std::slice::from_ref(&sw),
            ""
        ),
        hook(Provider::Stripe, "/stripe", std::slice::from_ref(&st), "")
    );
    let server = Server::start(&hooks);

    let id = "m".repeat(300);
    let body = br#"{"k":1}"#.to_vec();
    let h = signed(Provider::StandardWebhooks, &sw, &body, now(), &id);
    assert_eq!(post(&server.url("/sw"), &h, body.clone()).await.0, 200);
    let (status, json) = post(&server.url("/sw"), &h, body).await;
    assert_eq!(
        (status, &json["duplicate"]),
        (200, &serde_json::json!(true))
    );

    let body = format!(
        r#"{{"id":"evt_{}","type":"charge.succeeded"}}"#,
        "e".repeat(10_000)
    );
    let body = body.into_bytes();
    let h = signed(Provider::Stripe, &st, &body, now(), "");
    assert_eq!(post(&server.url("/stripe"), &h, body.clone()).await.0, 200);
    let (status, json) = post(&server.url("/stripe"), &h, body).await;
    assert_eq!(
        (status, &json["duplicate"]),
        (200, &serde_json::json!(true))
    );

    let lines = server.log_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    // The log records the hashed key, not the over-long id (the payload keeps the body as sent).
    assert!(!lines[0].contains(&id), "{}", lines[0]);
    assert!(lines.iter().all(|l| l.contains("sha256:")), "{lines:?}");
}

#[test]
fn check_config_warns_when_the_window_is_shorter_than_the_replay_window() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "dedupe_window_secs = 100\n{}",
            hook(
                Provider::Stripe,
                "/stripe",
                &[secret(Provider::Stripe, 1)],
                "tolerance_secs = 300"
            )
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check-config", file.to_str().unwrap()])
        .env_remove("WEBHOOK_LISTENER_CONFIG")
        .output()
        .unwrap();
    // check-config's warnings are part of its summary, on stdout, once each.
    let err = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("/stripe") && err.contains("dedupe_window_secs") && err.contains("600"),
        "{err}"
    );
}

#[test]
fn start_up_warns_when_the_window_is_shorter_than_the_replay_window() {
    let server = Server::start_with(Options {
        top: "dedupe_window_secs = 100",
        hooks: &hook(
            Provider::Stripe,
            "/stripe",
            &[secret(Provider::Stripe, 1)],
            "",
        ),
        ..Default::default()
    });
    assert!(
        server.wait_for_stderr("at least 600", std::time::Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
}
