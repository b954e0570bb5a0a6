//! Issue #6: what operators touch. CLI subcommands, health and metrics, proxies and allowlists, reload.

use std::process::Command;
use std::time::Duration;

use crate::common::*;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("WEBHOOK_LISTENER_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_good_bad_and_unresolvable() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, format!("{}{}", netbox_hook("/netbox/"), "[[hooks]]\npath = \"/gh\"\nprovider = \"github\"\nsecrets = [\"env:GH_SECRET_FOR_TEST\"]\n")).unwrap();
    let (ok, out, err) = run(
        &["check-config", good.to_str().unwrap()],
        &[("GH_SECRET_FOR_TEST", "x")],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("/netbox/") && out.contains("provider=github"),
        "{out}"
    );
    assert!(!out.contains(NETBOX_SECRET), "summary never shows secrets");

    let (ok, _, err) = run(&["check-config", good.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(
        err.contains("GH_SECRET_FOR_TEST"),
        "names the variable: {err}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, netbox_hook("/netbox/").replace("secrets", "secretz")).unwrap();
    let (ok, _, err) = run(&["check-config", bad.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("secretz"), "names the key: {err}");

    let missing_file = dir.path().join("hook.toml");
    std::fs::write(
        &missing_file,
        netbox_hook("/n").replace(NETBOX_SECRET, "file:/nonexistent/secret"),
    )
    .unwrap();
    let (ok, _, err) = run(&["check-config", missing_file.to_str().unwrap()], &[]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/secret"), "{err}");
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        vec!["--help"],
        vec!["check-config", "--help"],
        vec!["sign", "--help"],
        vec!["healthcheck", "--help"],
        vec!["serve", "--help"],
    ] {
        let (ok, out, err) = run(&sub, &[]);
        assert!(ok, "{sub:?}: {err}");
        assert!(out.contains("Usage"), "{sub:?}: {out}");
    }
}

/// The `sign` arguments and the hook each provider's signed request goes to (the generic one as
/// SHA-1, base64, `sha1=`, to exercise every generic flag).
fn sign_case(p: Provider) -> (String, String, Vec<String>) {
    let secret = match p {
        Provider::StandardWebhooks => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
        p => format!("s3cret-{}", p.name()),
    };
    let mut args = vec!["--provider".to_string(), p.name().to_string()];
    let mut hook = format!(
        "[[hooks]]\npath = \"/{}\"\nprovider = \"{}\"\nsecrets = [\"{secret}\"]\n",
        p.name(),
        p.name()
    );
    match p {
        Provider::Netbox => hook.push_str("payload = \"json\"\n"),
        // The JSON body goes to a URL with its bodySHA256, which is what Twilio signs.
        Provider::Twilio => {
            hook.push_str("public_url = \"https://hooks.example.com/twilio\"\n");
            let url = format!("https://hooks.example.com/twilio?{}", body_sha256_query());
            args.extend(["--public-url".to_string(), url]);
        }
        Provider::Hmac => {
            let flags = [
                ("header", "X-Signature"),
                ("algorithm", "sha1"),
                ("encoding", "base64"),
                ("prefix", "sha1="),
            ];
            for (key, value) in flags {
                hook.push_str(&format!("{key} = \"{value}\"\n"));
                args.extend([format!("--{key}"), value.to_string()]);
            }
        }
        _ => {}
    }
    (hook, secret, args)
}

/// The body every `sign` case signs; it carries Linear's signed stamp (fresh for a minute).
fn sign_body() -> &'static [u8] {
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BODY.get_or_init(|| {
        format!(
            r#"{{"id": "evt_123", "event_id": "Ev123", "hello": "world", "webhookTimestamp": {}}}"#,
            chrono::Utc::now().timestamp_millis()
        )
        .into_bytes()
    })
}

fn body_sha256_query() -> String {
    use sha2::Digest;
    format!(
        "bodySHA256={}",
        hex::encode(sha2::Sha256::digest(sign_body()))
    )
}

#[tokio::test]
async fn sign_output_is_accepted_by_the_running_server_for_every_provider() {
    // Discord verifies with a public key: nothing to sign with (see the next test).
    let cases: Vec<_> = Provider::iter()
        .filter(|p| *p != Provider::Discord)
        .map(|p| (p, sign_case(p)))
        .collect();
    let hooks: String = cases
        .iter()
        .map(|(_, (hook, _, _))| hook.as_str())
        .collect();
    let server = Server::start(&hooks);
    let body_file = server.dir.path().join("body.json");
    let body = sign_body();
    std::fs::write(&body_file, body).unwrap();
    for (p, (_, secret, args)) in &cases {
        let path = format!("/{}", p.name());
        let mut argv = vec!["sign", "--secret", secret];
        argv.extend(args.iter().map(String::as_str));
        argv.push(body_file.to_str().unwrap());
        let (ok, out, err) = run(&argv, &[]);
        assert!(ok, "{path}: {err}");
        let headers: Vec<(&str, String)> = out
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(": ").expect("Header: value");
                (k, v.to_string())
            })
            .collect();
        assert!(!headers.is_empty());
        let url = match p {
            Provider::Twilio => format!("{}?{}", server.url(&path), body_sha256_query()),
            _ => server.url(&path),
        };
        let (status, json) = post(&url, &headers, body.to_vec()).await;
        assert_eq!(status, 200, "{path}: {json} with {headers:?}");
    }
    assert_eq!(server.log_lines().len(), cases.len());
}

/// `sign` refuses, saying why, what it cannot sign: Discord (a public key cannot sign) and Twilio
/// without the URL it signs.
#[test]
fn sign_refuses_public_key_schemes_and_twilio_without_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("b.json");
    std::fs::write(&body, b"{}").unwrap();
    let file = body.to_str().unwrap();
    let (ok, out, err) = run(
        &["sign", "--provider", "discord", "--secret", "x", file],
        &[],
    );
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("public keys"), "{err}");
    let (ok, out, err) = run(
        &["sign", "--provider", "twilio", "--secret", "x", file],
        &[],
    );
    assert!(!ok && out.is_empty(), "{out}");
    assert!(err.contains("public URL"), "{err}");
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn healthz_and_metrics_move_with_requests() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let resp = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let health: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(health["result"], "ok");
    assert_eq!(health["event_log"], "ok");

    let accepted = r#"webhook_requests_total{hook="/webhook/",outcome="accepted"}"#;
    let rejected = r#"webhook_requests_total{hook="/webhook/",outcome="rejected_signature"}"#;
    let not_found = r#"webhook_requests_total{hook="none",outcome="not_found"}"#;
    let before = metrics(&server).await;
    assert_eq!(metric(&before, accepted), 0.0);
    post_netbox(
        &server.url("/webhook/"),
        &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10"),
    )
    .await;
    post_netbox(
        &server.url("/webhook/"),
        &netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a11"),
    )
    .await;
    post(
        &server.url("/webhook/"),
        &[("x-hook-signature", "00".into())],
        b"{}".to_vec(),
    )
    .await;
    post_netbox(&server.url("/elsewhere"), b"{}").await;
    let after = metrics(&server).await;
    assert_eq!(metric(&after, accepted), 2.0, "{after}");
    assert_eq!(metric(&after, rejected), 1.0, "{after}");
    assert_eq!(metric(&after, not_found), 1.0, "{after}");
    assert!(
        metric(
            &after,
            r#"webhook_request_duration_seconds_count{hook="/webhook/"}"#
        ) >= 3.0,
        "{after}"
    );
    assert!(
        metric(&after, "webhook_event_log_sync_seconds_count") >= 1.0,
        "{after}"
    );
    assert!(after.contains("webhook_requests_in_flight"), "{after}");
    assert!(!after.contains(NETBOX_SECRET));
}

#[test]
fn healthcheck_subcommand_reports_the_server() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let (ok, out, err) = run(&["healthcheck", "--url", &server.url("/healthz")], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("\"ok\""), "{out}");
    drop(server);
    let (ok, _, _) = run(&["healthcheck", "--url", "http://127.0.0.1:1/healthz"], &[]);
    assert!(!ok, "nothing listening: unhealthy");
}

#[tokio::test]
async fn client_address_from_trusted_proxy_only() {
    let proxied = Server::netbox("trusted_proxies = [\"127.0.0.1/32\"]", "");
    let body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");
    let (status, _) = post_netbox_forwarded(
        &proxied.url("/webhook/"),
        &body,
        "203.0.113.66, 198.51.100.7",
    )
    .await;
    assert_eq!(status, 200);
    let line = proxied.log_lines().remove(0);
    assert!(
        line.contains(" client=198.51.100.7 "),
        "right-most untrusted entry: {line}"
    );

    let direct = Server::start(&netbox_hook("/webhook/"));
    let (status, _) = post_netbox_forwarded(&direct.url("/webhook/"), &body, "198.51.100.7").await;
    assert_eq!(status, 200);
    let line = direct.log_lines().remove(0);
    assert!(
        line.contains(" client=127.0.0.1 "),
        "untrusted peer's header ignored: {line}"
    );
}

#[tokio::test]
async fn allow_ips_refuses_others_with_403_before_the_body() {
    let hooks = format!("{}allow_ips = [\"192.0.2.10\"]\n", netbox_hook("/webhook/"));
    let server = Server::start_with(Options {
        top: "trusted_proxies = [\"127.0.0.1\"]",
        hooks: &hooks,
        ..Default::default()
    });
    let body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &body);
    let (status, json) = post(
        &server.url("/webhook/"),
        &[("x-hook-signature", sig.clone())],
        body.clone(),
    )
    .await;
    assert_eq!(status, 403, "{json}");
    assert_eq!(json["result"], "client address not allowed");
    let (status, _) = post_netbox_forwarded(&server.url("/webhook/"), &body, "192.0.2.10").await;
    assert_eq!(status, 200, "allowed client behind the trusted proxy");
    // Refused before the body: headers alone get the answer.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /webhook/ HTTP/1.1\r\nHost: x\r\nContent-Length: 999\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 403"));
    assert_eq!(server.log_lines().len(), 1);
}

/// A client outside `allow_ips` cannot tell a hook path from any other: every method gets the same
/// 403 a POST gets, never the 405 that only a hook path answers.
#[tokio::test]
async fn allow_ips_is_checked_before_the_method_so_hook_paths_are_not_enumerable() {
    let hooks = format!(
        "{}allow_ips = [\"192.0.2.10\"]\n{}allow_ips = [\"127.0.0.1\"]\n",
        netbox_hook("/closed/"),
        netbox_hook("/open/")
    );
    let server = Server::start(&hooks);
    let c = client();
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let resp = c
            .request(method.clone(), server.url("/closed/"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            403,
            "{method} from outside the list"
        );
        let json: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(json["result"], "client address not allowed");
        let unknown = c.request(method.clone(), server.url("/nothing-here/"));
        assert_eq!(unknown.send().await.unwrap().status().as_u16(), 404);
    }
    // A client in the list still learns the method is wrong.
    let resp = c.get(server.url("/open/")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
}

#[tokio::test]
async fn sighup_adds_a_hook_live_and_an_invalid_edit_keeps_the_old_config() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &body);
    let request = format!(
        "POST {{}} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Hook-Signature: {sig}\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        String::from_utf8_lossy(&body)
    );
    // One keep-alive connection, kept across the reload.
    let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let send = |path: &str| request.replace("{}", path);
    async fn status_of(conn: &mut tokio::net::TcpStream, req: String) -> String {
        conn.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = conn.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }
    assert!(status_of(&mut conn, send("/second")).await.contains("404"));

    let config = std::fs::read_to_string(&server.config_path).unwrap();
    std::fs::write(
        &server.config_path,
        format!("{config}\n{}", netbox_hook("/second")),
    )
    .unwrap();
    server.signal(Signal::SIGHUP);
    assert!(
        server.wait_for_stderr("config reloaded", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    assert!(
        status_of(&mut conn, send("/second")).await.contains("200"),
        "new hook live on the same connection"
    );

    std::fs::write(&server.config_path, format!("{config}\nbogus_key = 1\n")).unwrap();
    server.signal(Signal::SIGHUP);
    assert!(server.wait_for_stderr("config reload refused", Duration::from_secs(10)));
    assert!(
        server.stderr().contains("bogus_key"),
        "the diagnostic names the key"
    );
    assert!(
        status_of(&mut conn, send("/second")).await.contains("200"),
        "old config still serving"
    );
    assert!(status_of(&mut conn, send("/webhook/"))
        .await
        .contains("200"));
}

#[tokio::test]
async fn secret_rotation_through_a_secret_file_and_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("netbox-secret");
    std::fs::write(&secret_file, "old-secret\n").unwrap();
    let hooks = format!(
        "[[hooks]]\npath = \"/webhook/\"\nprovider = \"netbox\"\nsecrets = [\"file:{}\"]\n",
        secret_file.display()
    );
    let server = Server::start(&hooks);
    let body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");
    let url = server.url("/webhook/");
    let signed_status = |secret: &'static str| {
        let headers = [(
            "x-hook-signature",
            netbox_signature(secret.as_bytes(), &body),
        )];
        let (url, body) = (url.clone(), body.clone());
        async move { post(&url, &headers, body).await.0 }
    };
    assert_eq!(signed_status("old-secret").await, 200);
    std::fs::write(&secret_file, "new-secret\n").unwrap();
    server.signal(Signal::SIGHUP);
    assert!(server.wait_for_stderr("config reloaded", Duration::from_secs(10)));
    assert_eq!(signed_status("new-secret").await, 200);
    assert_eq!(signed_status("old-secret").await, 401);
}

#[tokio::test]
async fn slack_url_verification_gets_its_challenge_back_and_is_not_logged() {
    let server = Server::start(
        "[[hooks]]\npath = \"/slack\"\nprovider = \"slack\"\nsecrets = [\"slack-secret\"]\n",
    );
    let body = br#"{"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sig = sign::mac(
        Algorithm::Sha256,
        b"slack-secret",
        &[b"v0:", ts.as_bytes(), b":", body],
    );
    let headers = [
        ("x-slack-request-timestamp", ts.clone()),
        ("x-slack-signature", format!("v0={}", hex::encode(sig))),
    ];
    let (status, json) = post(&server.url("/slack"), &headers, body.to_vec()).await;
    assert_eq!(status, 200);
    assert_eq!(
        json["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert!(server.log_lines().is_empty(), "a handshake is not an event");
    // Unsigned, it is refused like anything else.
    let (status, _) = post(
        &server.url("/slack"),
        &[("x-slack-request-timestamp", ts)],
        body.to_vec(),
    )
    .await;
    assert_eq!(status, 401);
}

#[test]
fn check_config_into_a_closed_pipe_does_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, netbox_hook("/n")).unwrap();
    let mut child = Command::new(bin())
        .args(["check-config", f.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}
