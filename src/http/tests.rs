//! The router in process, through `tower::ServiceExt::oneshot`: what needs no socket (routing, the
//! Slack handshake, duplicates, the one place an outcome is counted).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{router, AppState};
use crate::config::{reserved, Config};
use crate::event_log::{EventLog, WriterThread};
use crate::metrics::Metrics;

/// A router over `hooks` (unsigned, so no signer is needed), logging into a temp dir.
struct Harness {
    state: Arc<AppState>,
    _writer: WriterThread,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new(hooks: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("events.log");
        let config = Config::from_toml(&format!("[log]\nfile = {log:?}\n{hooks}"), "t").unwrap();
        let metrics = Arc::new(Metrics::new());
        let (event_log, writer) = EventLog::start(
            &log,
            false,
            Duration::from_secs(5),
            metrics.clone(),
            None,
            None,
        )
        .unwrap();
        let state = Arc::new(AppState::new(&config, event_log, metrics));
        Harness {
            state,
            _writer: writer,
            log,
            _dir: dir,
        }
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = router(self.state.clone())
            .oneshot(req.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let allow = resp
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            allow,
            json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        }
    }

    fn log_lines(&self) -> usize {
        std::fs::read_to_string(&self.log).map_or(0, |s| s.lines().count())
    }

    fn counted(&self, hook: &str, outcome: &str) -> String {
        let needle = format!("webhook_requests_total{{hook=\"{hook}\",outcome=\"{outcome}\"}} ");
        self.state
            .metrics
            .encode()
            .lines()
            .find_map(|l| l.strip_prefix(&needle).map(str::to_owned))
            .unwrap_or_else(|| "absent".into())
    }
}

struct Answer {
    status: StatusCode,
    allow: Option<String>,
    json: serde_json::Value,
}

const UNSIGNED: &str = r#"
[[hooks]]
path = "/json"
provider = "github"
allow_unsigned = true

[[hooks]]
path = "/slack"
provider = "slack"
allow_unsigned = true
"#;

#[tokio::test]
async fn reserved_paths_are_what_the_router_serves_itself() {
    let h = Harness::new(&format!("[admin]\npublic_metrics = true\n{UNSIGNED}"));
    for path in reserved::ALL {
        let get = h.send("GET", path, &[], "").await;
        assert_eq!(get.status, StatusCode::OK, "{path}");
        // Any other method is the reserved route's 405, never the hook fallback's answer.
        let post = h.send("POST", path, &[], "{}").await;
        assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(post.allow.as_deref(), Some("GET, HEAD"), "{path}");
    }
    let other = h.send("POST", "/healthz/", &[], "{}").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.json["result"], "no hook at this path");
    assert_eq!(h.counted("none", "not_found"), "1");
}

#[tokio::test]
async fn metrics_are_not_public_by_default() {
    let h = Harness::new(UNSIGNED);
    let get = h.send("GET", reserved::METRICS, &[], "").await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert_eq!(get.json["result"], "no hook at this path");
}

#[tokio::test]
async fn slack_handshake_is_answered_apart_and_not_logged() {
    let h = Harness::new(UNSIGNED);
    let body = r#"{"type": "url_verification", "challenge": "3eZbrw1aB"}"#;
    let a = h.send("POST", "/slack", &[], body).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["challenge"], "3eZbrw1aB");
    assert_eq!(h.log_lines(), 0);
    assert_eq!(h.counted("/slack", "accepted"), "1");
    // The same body to a non-Slack hook is an ordinary event.
    let a = h.send("POST", "/json", &[], body).await;
    assert_eq!(a.json, serde_json::json!({ "result": "ok" }));
    assert_eq!(h.log_lines(), 1);
}

#[tokio::test]
async fn a_duplicate_is_answered_ok_logged_once_and_counted_as_duplicate() {
    let h = Harness::new(UNSIGNED);
    let id = [("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")];
    let first = h.send("POST", "/json", &id, r#"{"a": 1}"#).await;
    assert_eq!(first.json, serde_json::json!({ "result": "ok" }));
    let again = h.send("POST", "/json", &id, r#"{"a": 1}"#).await;
    assert_eq!(
        again.json,
        serde_json::json!({ "result": "ok", "duplicate": true })
    );
    assert_eq!(h.log_lines(), 1);
    assert_eq!(h.counted("/json", "accepted"), "1");
    assert_eq!(h.counted("/json", "duplicate"), "1");
}

#[tokio::test]
async fn each_refusal_is_counted_once_under_its_outcome() {
    let h = Harness::new(UNSIGNED);
    let bad = h.send("POST", "/json", &[], "{").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let get = h.send("GET", "/json", &[], "").await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.allow.as_deref(), Some("POST"));
    assert_eq!(h.counted("/json", "invalid_payload"), "1");
    assert_eq!(h.counted("/json", "method_not_allowed"), "1");
    assert_eq!(h.counted("/json", "accepted"), "0");
    assert_eq!(h.log_lines(), 0);
}
