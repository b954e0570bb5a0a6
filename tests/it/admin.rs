//! The operator's listener (issue 16) through the real binary: every refusal reason in the JSON
//! API and the rendered HTML, masking and escaping, the live stream's resume, `/metrics` moved off
//! the public port, and the token.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use crate::common::*;

/// Every kept delivery of `hook` with `outcome`, newest first, from the JSON API.
async fn api_list(server: &Server, hook: &str, outcome: &str) -> Vec<Value> {
    let url = server.admin_url("/api/deliveries");
    let resp = client()
        .get(url)
        .query(&[("hook", hook), ("outcome", outcome)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json::<Vec<Value>>().await.unwrap()
}

async fn admin_get(server: &Server, path: &str) -> (u16, String) {
    let resp = client().get(server.admin_url(path)).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// What maud writes for `s`.
fn html_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The newest record of `hook` must have `outcome` and a reason containing `reason`, in the API,
/// on its detail page and on the list page.
async fn assert_recorded(server: &Server, hook: &str, outcome: &str, reason: &str) -> Value {
    let rows = api_list(server, hook, outcome).await;
    let r = rows
        .first()
        .unwrap_or_else(|| panic!("no {outcome} record for {hook}"))
        .clone();
    let text = r["reason"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains(reason), "{hook} {outcome}: {r}");
    for key in ["id", "received_at", "hook", "provider", "client", "outcome"] {
        assert!(!r[key].is_null(), "{key} in {r}");
    }
    assert!(r["latency_ms"].as_f64().unwrap() >= 0.0);
    let one: Value = client()
        .get(server.admin_url(&format!("/api/deliveries/{}", r["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["reason"], r["reason"]);
    let (status, page) = admin_get(server, &format!("/deliveries/{}", r["id"])).await;
    assert_eq!(status, 200);
    let shown = html_escaped(&text);
    assert!(page.contains(&shown), "detail page lacks {shown:?}");
    let (_, list) = admin_get(
        server,
        &format!("/?hook={}&outcome={outcome}", hook.replace('/', "%2F")),
    )
    .await;
    assert!(list.contains(&shown), "list page lacks {shown:?}");
    r
}

#[tokio::test]
async fn every_refusal_reason_is_in_the_api_and_the_page() {
    let stripe = secret(Provider::Stripe, 1);
    let github = secret(Provider::Github, 1);
    let hooks = format!(
        "{}{}{}{}allow_ips = [\"192.0.2.1\"]\n",
        netbox_hook("/webhook/"),
        hook(
            Provider::Stripe,
            "/stripe",
            std::slice::from_ref(&stripe),
            ""
        ),
        hook(
            Provider::Github,
            "/github",
            std::slice::from_ref(&github),
            ""
        ),
        netbox_hook("/allowed"),
    );
    let server = Server::start_with(Options {
        top: "max_body_bytes = 2000",
        hooks: &hooks,
        ..Default::default()
    });
    let url = |p: &str| server.url(p);
    let body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");

    // No signature header.
    let (status, _) = post(
        &url("/webhook/"),
        &Vec::<(&str, String)>::new(),
        body.clone(),
    )
    .await;
    assert_eq!(status, 401);
    assert_recorded(
        &server,
        "/webhook/",
        "rejected_signature",
        "no signature header (x-hook-signature)",
    )
    .await;

    // Signature mismatch.
    let forged = [("x-hook-signature", "ab".repeat(64))];
    assert_eq!(post(&url("/webhook/"), &forged, body.clone()).await.0, 401);
    assert_recorded(
        &server,
        "/webhook/",
        "rejected_signature",
        "signature mismatch",
    )
    .await;

    // A timestamp 912 s old against the 300 s window.
    let event = br#"{"id":"evt_1","type":"invoice.paid"}"#.to_vec();
    let old = signed(Provider::Stripe, &stripe, &event, now() - 912, "");
    assert_eq!(post(&url("/stripe"), &old, event.clone()).await.0, 401);
    let r = assert_recorded(
        &server,
        "/stripe",
        "rejected_signature",
        "outside the 300 s window",
    )
    .await;
    let reason = r["reason"].as_str().unwrap();
    // The clock may tick between signing and checking.
    assert!(
        reason.contains("912 s in the past") || reason.contains("913 s in the past"),
        "{reason}"
    );
    let detail: Value = client()
        .get(server.admin_url(&format!("/api/deliveries/{}", r["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["expected"]["tolerance_secs"], 300, "{detail}");
    assert_eq!(detail["expected"]["headers"][0], "Stripe-Signature");

    // Larger than the cap (declared Content-Length: refused before the body is read).
    let big = vec![b'x'; 3000];
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &big);
    assert_eq!(
        post(&url("/webhook/"), &[("x-hook-signature", sig)], big)
            .await
            .0,
        413
    );
    let r = assert_recorded(
        &server,
        "/webhook/",
        "too_large",
        "body larger than the cap (2000 bytes)",
    )
    .await;
    assert!(r["size"].is_null(), "never read: {r}");

    // Not JSON, with where parsing stopped.
    let broken = br#"{"event": "created", "timestamp": }"#.to_vec();
    assert_eq!(post_netbox(&url("/webhook/"), &broken).await.0, 400);
    assert_recorded(&server, "/webhook/", "invalid_payload", "not JSON").await;
    assert_recorded(
        &server,
        "/webhook/",
        "invalid_payload",
        "at line 1 column 35",
    )
    .await;

    // A field that is not what NetBox sends.
    let not_uuid = netbox_body("not-a-uuid");
    assert_eq!(post_netbox(&url("/webhook/"), &not_uuid).await.0, 422);
    assert_recorded(&server, "/webhook/", "invalid_payload", "request_id").await;

    // A client outside allow_ips.
    assert_eq!(post_netbox(&url("/allowed"), &body).await.0, 403);
    assert_recorded(&server, "/allowed", "forbidden", "client not allowed").await;

    // The same delivery id twice.
    let push = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let mut headers = signed(Provider::Github, &github, &push, now(), "delivery-42");
    headers.push(("x-github-event".into(), "push".into()));
    assert_eq!(post(&url("/github"), &headers, push.clone()).await.0, 200);
    let first = assert_recorded(&server, "/github", "accepted", "").await;
    assert_eq!(first["event"], "push");
    assert_eq!(first["delivery_id"], "delivery-42");
    assert!(first["reason"].is_null());
    let (status, json) = post(&url("/github"), &headers, push).await;
    assert_eq!((status, json["duplicate"].as_bool()), (200, Some(true)));
    assert_recorded(
        &server,
        "/github",
        "duplicate",
        "duplicate of an accepted delivery",
    )
    .await;

    // An accepted event carries the event id its log line has (the one every sink gets too).
    assert_eq!(post_netbox(&url("/webhook/"), &body).await.0, 200);
    let ok = assert_recorded(&server, "/webhook/", "accepted", "").await;
    let lines = server.log_lines();
    let logged = lines
        .last()
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("event_id="))
        })
        .expect("event_id in the log line");
    assert_eq!(ok["event_id"], logged.trim_matches('"'));
    let id = uuid::Uuid::parse_str(ok["event_id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7, "UUIDv7: {ok}");
    assert_eq!(ok["event"], "dcim.site.created");
    assert_eq!(ok["size"], body.len());

    // The per-hook panel counts what happened since start.
    let (_, page) = admin_get(&server, "/").await;
    assert!(page.contains("rejected_signature 2"), "per-hook counts");
    assert!(page.contains("webhook-listener sign --provider netbox"));

    // The event log cannot be written: a server whose log is /dev/full.
    let full = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        log: "fsync = false\n",
        log_file: Some("/dev/full"),
        ..Default::default()
    });
    assert_eq!(post_netbox(&full.url("/webhook/"), &body).await.0, 503);
    assert_recorded(&full, "/webhook/", "unavailable", "event log unavailable").await;
}

#[tokio::test]
async fn signatures_are_masked_and_hostile_text_is_escaped() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let body = br#"{"event": "<img src=x onerror=alert(1)>"}"#.to_vec();
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), &body);
    let headers = [
        ("x-hook-signature", sig.clone()),
        ("x-note", "<script>alert(2)</script>".to_string()),
        ("authorization", "Bearer hunter2-very-secret".to_string()),
    ];
    // Signed, but not a NetBox event: 422, recorded with its body.
    assert_eq!(post(&server.url("/webhook/"), &headers, body).await.0, 422);
    let r = &api_list(&server, "/webhook/", "invalid_payload").await[0];
    let one: Value = client()
        .get(server.admin_url(&format!("/api/deliveries/{}", r["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = one.to_string();
    assert!(!text.contains(&sig), "signature value in the API");
    assert!(!text.contains("hunter2"), "credential in the API");
    let masked: Vec<_> = one["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0] == "x-hook-signature" || h[0] == "authorization")
        .map(|h| h[1].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        masked,
        ["‹masked, 128 bytes›", "Bearer ‹masked, 26 bytes›"],
        "{one}"
    );
    let (status, page) = admin_get(&server, &format!("/deliveries/{}", r["id"])).await;
    assert_eq!(status, 200);
    assert!(!page.contains(&sig) && !page.contains("hunter2"));
    assert!(
        !page.contains("<img") && !page.contains("<script>alert"),
        "{page}"
    );
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_load_nothing_from_elsewhere() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let resp = client().get(server.admin_url("/")).send().await.unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"));
    let page = resp.text().await.unwrap();
    // Nothing loaded from elsewhere: every src and href is a path on this listener.
    for attr in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attr) {
            let value = &page[at + attr.len()..];
            assert!(
                value.starts_with('/'),
                "{attr}{}",
                &value[..value.len().min(40)]
            );
        }
    }
    assert!(page.contains("<script src=\"/assets/app.js\" integrity=\"sha256-"));
    let js = client()
        .get(server.admin_url("/assets/app.js"))
        .send()
        .await
        .unwrap();
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(!js.text().await.unwrap().contains("innerHTML"));
}

#[tokio::test]
async fn metrics_move_to_the_admin_listener_unless_kept_public() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let public = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    assert!(!public.text().await.unwrap().contains("/webhook/"));
    assert!(metrics(&server).await.contains("webhook_requests_total"));

    let both = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        admin: "listen = \"127.0.0.1:0\"\npublic_metrics = true",
        ..Default::default()
    });
    let public = client().get(both.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 200);
    let (status, _) = admin_get(&both, "/metrics").await;
    assert_eq!(status, 200);

    let off = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        admin: "listen = \"\"",
        ..Default::default()
    });
    assert!(off.admin.is_none());
    // stderr is read by a thread: wait for the line rather than race it.
    assert!(
        off.wait_for_stderr("admin=off", std::time::Duration::from_secs(10)),
        "{}",
        off.stderr()
    );
}

/// The ids of the first `n` `delivery` events of an SSE response.
async fn read_ids(resp: reqwest::Response, n: usize) -> Vec<u64> {
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    let mut ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ids.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, body.next())
            .await
            .expect("stream events in time")
            .expect("stream open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if event.contains("event: delivery") {
                let id = event
                    .lines()
                    .find_map(|l| l.strip_prefix("id: "))
                    .expect("id line");
                ids.push(id.parse().unwrap());
            }
        }
    }
    ids
}

#[tokio::test]
async fn a_stream_resumes_after_last_event_id_without_losing_or_repeating() {
    let server = Server::start(&netbox_hook("/webhook/"));
    for i in 0..3 {
        let id = format!("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a1{i}");
        assert_eq!(netbox_status(&server.url("/webhook/"), &id).await, 200);
    }
    let resp = client()
        .get(server.admin_url("/api/stream"))
        .header("last-event-id", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let url = server.url("/webhook/");
    let later = tokio::spawn(async move {
        // Sent while the stream is open: it must arrive once, after the backlog.
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a19").await
    });
    let ids = read_ids(resp, 3).await;
    assert_eq!(later.await.unwrap(), 200);
    assert_eq!(ids, [2, 3, 4]);

    // Without an id, a stream starts with what comes next.
    let resp = client()
        .get(server.admin_url("/api/stream"))
        .send()
        .await
        .unwrap();
    let url = server.url("/webhook/");
    tokio::spawn(async move { netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a20").await });
    assert_eq!(read_ids(resp, 1).await, [5]);
}

/// Starts the binary on `config` (plus one NetBox hook) and waits (bounded) for it to exit.
fn refused_at_start(config: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("config.toml");
    let log = dir.path().join("events.log");
    let text = format!(
        "listen = \"127.0.0.1:0\"\n[log]\nfile = {:?}\n{config}\n{}",
        log.display().to_string(),
        netbox_hook("/webhook/")
    );
    std::fs::write(&f, text).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(&f)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (status, err)
}

const TOKEN: &str = "admin-token-0123456789abcdef";

#[tokio::test]
async fn a_non_loopback_admin_needs_a_token_and_checks_it() {
    let (status, err) = refused_at_start("[admin]\nlisten = \"0.0.0.0:0\"\n", &[]);
    assert!(matches!(status, Some(c) if c != 0), "{status:?}: {err}");
    assert!(err.contains("admin.token: required"), "{err}");
    let (status, err) = refused_at_start(
        "[admin]\nlisten = \"0.0.0.0:0\"\ntoken = \"not-a-reference-0123456789\"\n",
        &[],
    );
    assert!(matches!(status, Some(c) if c != 0), "{err}");
    assert!(
        !err.contains("not-a-reference"),
        "a literal token is never echoed: {err}"
    );

    let server = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        admin: "listen = \"0.0.0.0:0\"\ntoken = \"env:TEST_ADMIN_TOKEN\"",
        env: &[("TEST_ADMIN_TOKEN", TOKEN)],
        ..Default::default()
    });
    let c = client();
    for path in [
        "/",
        "/api/deliveries",
        "/api/deliveries/1",
        "/api/stream",
        "/metrics",
        "/deliveries/1",
    ] {
        let url = server.admin_url(path);
        let none = c.get(&url).send().await.unwrap();
        assert_eq!(none.status(), 401, "{path} without a token");
        assert!(none.headers().contains_key("www-authenticate"));
        let wrong = c
            .get(&url)
            .bearer_auth("admin-token-0123456789abcdeX")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
    }
    for path in ["/", "/api/deliveries", "/metrics"] {
        let right = c
            .get(server.admin_url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), 200, "{path} with the token");
    }

    // The login form: a wrong token is refused, the right one sets a strict session cookie.
    let nofollow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let wrong = nofollow
        .post(server.admin_url("/login"))
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = nofollow
        .post(server.admin_url("/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(TOKEN), "the cookie is not the token");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let page = c
        .get(server.admin_url("/"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let forged = c
        .get(server.admin_url("/"))
        .header("cookie", "wl_admin=00")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
}

/// A loop guessing the admin token gets ten tries, then 429s with `Retry-After` and no token is
/// checked at all, not even the right one (else the answer would still tell a right guess);
/// a browser signed in before keeps its page.
#[tokio::test]
async fn guessing_the_admin_token_is_paused_after_ten_wrong_tries() {
    let server = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        admin: "listen = \"127.0.0.1:0\"\ntoken = \"env:TEST_ADMIN_TOKEN\"",
        env: &[("TEST_ADMIN_TOKEN", TOKEN)],
        ..Default::default()
    });
    let nofollow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = |token: &'static str| {
        nofollow
            .post(server.admin_url("/login"))
            .form(&[("token", token)])
            .send()
    };
    let bearer = |token: String| {
        client()
            .get(server.admin_url("/api/deliveries"))
            .bearer_auth(token)
            .send()
    };
    let ok = login(TOKEN).await.unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    // The right token, however often, costs nothing.
    for _ in 0..20 {
        assert_eq!(bearer(TOKEN.into()).await.unwrap().status(), 200);
    }
    for i in 0..11 {
        let wrong = if i % 2 == 0 {
            bearer(format!("guess-{i}")).await.unwrap()
        } else {
            login("a-guess").await.unwrap()
        };
        assert_eq!(wrong.status(), 401, "guess {i}");
    }
    let right = bearer(TOKEN.into()).await.unwrap();
    assert_eq!(right.status(), 429, "no token is checked while paused");
    let retry: u64 = right.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let form = login(TOKEN).await.unwrap();
    assert_eq!(form.status(), 429);
    assert!(form.headers().contains_key("retry-after"));
    assert!(form.text().await.unwrap().contains("Too many wrong tokens"));
    let page = client()
        .get(server.admin_url("/"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the session cookie is never held back");
    assert!(server.wait_for_stderr("too many wrong tokens", Duration::from_secs(10)));
}

/// `check-config` on `[admin]` keys `admin` (plus `rest` and one NetBox hook).
fn check_admin(args: &[&str], admin: &str, rest: &str) -> crate::config_errors::CliOut {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("config.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\n[log]\nfile = {:?}\n[admin]\n{admin}\n{}{rest}",
        dir.path().join("events.log").display().to_string(),
        netbox_hook("/webhook/")
    );
    std::fs::write(&f, text).unwrap();
    let mut all = args.to_vec();
    all.push(f.to_str().unwrap());
    crate::config_errors::cli(&all)
}

#[test]
fn admin_problems_are_listed_with_the_others_and_syntax_only_leaves_the_token_alone() {
    let unset = "listen = \"0.0.0.0:0\"\ntoken = \"env:WL_ADMIN_TOKEN_UNSET\"";
    // Every problem in one run: the token's reference, `recent`, and a hook's.
    let out = check_admin(
        &["check-config"],
        &format!("{unset}\nrecent = 0"),
        "allow_ips = [\"x/99\"]\n",
    );
    assert!(out.failed(), "{}", out.all());
    for needle in [
        "admin.token: secret env:WL_ADMIN_TOKEN_UNSET",
        "admin.recent: must be greater than 0",
        "hooks[0].allow_ips[0]",
    ] {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.all());
    }

    // CI has not the machine's token: --syntax-only does not look it up, and counts it as set.
    let out = check_admin(&["check-config", "--syntax-only"], unset, "");
    assert!(out.ok(), "{}", out.all());
    let out = check_admin(&["check-config"], "listen = \"0.0.0.0:0\"", "");
    assert!(out.failed() && out.stderr.contains("admin.token: required"));
    let out = check_admin(
        &["check-config", "--syntax-only"],
        "listen = \"0.0.0.0:0\"",
        "",
    );
    assert!(out.failed() && out.stderr.contains("admin.token: required"));

    // Values are never echoed: not a literal token, not a mistyped address.
    let out = check_admin(
        &["check-config", "--syntax-only"],
        "listen = \"hunter2-address\"\ntoken = \"hunter2-literal-token-0123\"",
        "",
    );
    assert!(out.failed(), "{}", out.all());
    assert!(
        out.stderr.contains("admin.listen") && out.stderr.contains("admin.token: must be env:"),
        "{}",
        out.all()
    );
    assert!(!out.all().contains("hunter2"), "{}", out.all());

    // A token shorter than a key may be: refused by its reference, not shown.
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("token");
    std::fs::write(&short, "hunter2-short\n").unwrap();
    let admin = format!("token = \"file:{}\"", short.display());
    let out = check_admin(&["check-config"], &admin, "");
    assert!(
        out.failed()
            && out
                .stderr
                .contains("admin.token: the token is shorter than 16 bytes"),
        "{}",
        out.all()
    );
    assert!(!out.all().contains("hunter2"), "{}", out.all());
    std::fs::write(&short, "long-enough-token-0123456789\n").unwrap();
    assert!(check_admin(&["check-config"], &admin, "").ok());
}

/// A "Redis" that answers every command with an error carrying markup, as a hostile or broken
/// server could: what it says ends up as the sink's last error, which the page must show as text.
/// Parses RESP arrays so each pipelined command gets its own answer.
fn hostile_redis() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = conn.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(used) = resp_command_len(&buf) {
                        buf.drain(..used);
                        let reply = b"-ERR <img src=x onerror=alert(1)> denied\r\n";
                        if conn.write_all(reply).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

/// The length of the first complete RESP array of bulk strings in `buf`, if it is all there.
fn resp_command_len(buf: &[u8]) -> Option<usize> {
    fn line(buf: &[u8], at: usize) -> Option<(usize, usize)> {
        let end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
        Some((n, end + 2))
    }
    let (items, mut at) = line(buf, 0)?;
    for _ in 0..items {
        let (len, start) = line(buf, at)?;
        at = start + len + 2;
        if at > buf.len() {
            return None;
        }
    }
    Some(at)
}

/// Polls `/api/sinks` until `done` holds for it.
async fn wait_sinks(server: &Server, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, text) = admin_get(server, "/api/sinks").await;
        assert_eq!(status, 200, "{text}");
        let sinks: Vec<Value> = serde_json::from_str(&text).unwrap();
        if done(&sinks) {
            return sinks;
        }
        assert!(
            Instant::now() < deadline,
            "sinks not there in time: {text}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn named<'a>(sinks: &'a [Value], name: &str) -> &'a Value {
    sinks
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {sinks:?}"))
}

#[tokio::test]
async fn the_sinks_panel_and_each_delivery_say_which_sink_has_it_and_when() {
    let nats = crate::common::brokers::Nats::start();
    let redis_port = hostile_redis();
    let github = secret(Provider::Github, 1);
    // NATS takes the NetBox hook only (with credentials in its URL, which must never show);
    // the hostile Redis takes everything and never confirms anything.
    let nats_url = nats
        .url()
        .replace("nats://", "nats://watcher:hunter2-nats-pw@");
    let hooks = format!(
        "{}{}[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"{nats_url}\"\nstream = \"WEBHOOKS\"\nhooks = [\"/webhook/\"]\n\
         [[sinks]]\nname = \"cache\"\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{redis_port}/0\"\n",
        netbox_hook("/webhook/"),
        hook(Provider::Github, "/github", std::slice::from_ref(&github), ""),
    );
    let server = Server::start_with(Options {
        hooks: &hooks,
        ..Default::default()
    });

    let body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");
    assert_eq!(post_netbox(&server.url("/webhook/"), &body).await.0, 200);
    let push = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let mut headers = signed(Provider::Github, &github, &push, now(), "delivery-7");
    headers.push(("x-github-event".into(), "push".into()));
    assert_eq!(post(&server.url("/github"), &headers, push).await.0, 200);
    let forged = [("x-hook-signature", "ab".repeat(64))];
    assert_eq!(
        post(&server.url("/webhook/"), &forged, body.clone())
            .await
            .0,
        401
    );

    let sinks = wait_sinks(&server, |s| {
        s.len() == 2
            && named(s, "bus")["delivered"] == 1
            && named(s, "bus")["filtered"] == 1
            // Confirmed, not only delivered: the checkpoint passed both events.
            && named(s, "bus")["lag_events"] == 0
            && named(s, "cache")["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("onerror"))
    })
    .await;
    let (bus, cache) = (named(&sinks, "bus"), named(&sinks, "cache"));
    assert_eq!(
        (bus["kind"].as_str(), bus["state"].as_str()),
        (Some("nats"), Some("connected"))
    );
    assert_eq!(bus["connected"], true);
    assert_eq!(bus["lag_events"], 0, "{bus}");
    assert_eq!(bus["dead_lettered"], 0);
    assert!(
        bus["target"]
            .as_str()
            .unwrap()
            .contains(&format!("url=nats://127.0.0.1:{}", nats.port())),
        "{bus}"
    );
    assert_eq!(cache["kind"], "redis");
    assert_eq!(cache["state"], "retrying", "{cache}");
    assert_eq!(cache["delivered"], 0);
    assert!(cache["retried"].as_u64().unwrap() >= 1);
    assert!(cache["lag_events"].as_u64().unwrap() >= 1, "{cache}");
    for key in ["in_flight", "lag_seconds", "paused_reason", "lost"] {
        assert!(cache.get(key).is_some(), "{key} in {cache}");
    }
    let all = serde_json::to_string(&sinks).unwrap();
    assert!(
        !all.contains("hunter2") && !all.contains("watcher"),
        "{all}"
    );

    // The panel: every sink, its error as text, no credentials.
    let (status, page) = admin_get(&server, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("data-sink=\"bus\"") && page.contains("data-sink=\"cache\""));
    assert!(
        page.contains("&lt;img src=x onerror=alert(1)&gt; denied"),
        "{page}"
    );
    assert!(
        !page.contains("<img"),
        "markup from a sink's error became an element"
    );
    assert!(!page.contains("hunter2") && !page.contains("watcher@"));

    // Per delivery: NetBox is delivered to the bus (with when) and pending at the cache; the push
    // is not for the bus; a refusal has no sinks at all.
    let rows = api_list(&server, "", "").await;
    let id_of = |outcome: &str, hook: &str| {
        rows.iter()
            .find(|r| r["outcome"] == outcome && r["hook"] == hook)
            .unwrap_or_else(|| panic!("{outcome} {hook} in {rows:?}"))["id"]
            .clone()
    };
    let one = |id: Value| {
        let server = &server;
        async move {
            let url = server.admin_url(&format!("/api/deliveries/{id}"));
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let netbox = one(id_of("accepted", "/webhook/")).await;
    let by_name = |d: &Value, name: &str| {
        d["sinks"]
            .as_array()
            .unwrap_or_else(|| panic!("sinks in {d}"))
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {d}"))
            .clone()
    };
    let to_bus = by_name(&netbox, "bus");
    assert_eq!(
        (to_bus["delivered"].as_bool(), to_bus["state"].as_str()),
        (Some(true), Some("delivered"))
    );
    let at =
        chrono::DateTime::parse_from_rfc3339(to_bus["delivered_at"].as_str().unwrap()).unwrap();
    let received =
        chrono::DateTime::parse_from_rfc3339(netbox["received_at"].as_str().unwrap()).unwrap();
    assert!(at >= received, "delivered {at} before received {received}");
    let to_cache = by_name(&netbox, "cache");
    assert_eq!(
        (to_cache["delivered"].as_bool(), to_cache["state"].as_str()),
        (Some(false), Some("pending"))
    );
    assert!(to_cache["delivered_at"].is_null());

    let github_one = one(id_of("accepted", "/github")).await;
    assert_eq!(by_name(&github_one, "bus")["state"], "not_for_this_sink");
    assert_eq!(by_name(&github_one, "bus")["delivered"], false);
    let refused = one(id_of("rejected_signature", "/webhook/")).await;
    assert!(refused.get("sinks").is_none(), "{refused}");

    let (_, page) = admin_get(&server, &format!("/deliveries/{}", github_one["id"])).await;
    assert!(page.contains("not for this sink"), "{page}");
    let (_, page) = admin_get(&server, &format!("/deliveries/{}", netbox["id"])).await;
    assert!(
        page.contains("data-state=\"delivered\"") && page.contains("not yet delivered"),
        "{page}"
    );
}

#[tokio::test]
async fn without_sinks_the_panel_says_so_and_the_api_lists_none() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let (status, text) = admin_get(&server, "/api/sinks").await;
    assert_eq!((status, text.as_str()), (200, "[]"));
    let (_, page) = admin_get(&server, "/").await;
    assert!(page.contains("No sinks configured"), "{page}");
    let body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");
    assert_eq!(post_netbox(&server.url("/webhook/"), &body).await.0, 200);
    let r = &api_list(&server, "/webhook/", "accepted").await[0];
    let one: Value = client()
        .get(server.admin_url(&format!("/api/deliveries/{}", r["id"])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(one.get("sinks").is_none(), "{one}");
}

/// One GET over a fresh connection with exactly `host` as its `Host` header (none when `None`):
/// the status and the response head, read until the blank line (an event stream never ends).
async fn get_with_host(
    addr: std::net::SocketAddr,
    path: &str,
    host: Option<&str>,
    extra: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
        let req = format!("GET {path} HTTP/1.1\r\n{host}{extra}Connection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if tcp.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {head:?}"));
        (status, head)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("an answer")
}

/// The paths behind the Host check, each with what a good Host gets without a token.
const HOST_CHECKED: &[(&str, u16)] = &[
    ("/", 200),
    ("/api/deliveries", 200),
    // The delivery the test posts first.
    ("/api/deliveries/1", 200),
    ("/deliveries/1", 200),
    ("/api/sinks", 200),
    ("/api/stream", 200),
    ("/metrics", 200),
    ("/login", 200),
    ("/assets/app.js", 200),
    ("/nope", 404),
];

/// DNS rebinding: a web page that points `evil.example` at 127.0.0.1 reads the admin listener
/// same-origin, and the browser sends `Host: evil.example`. Every path, the live stream and
/// `/metrics` included, answers such a request 421 without running; loopback names and the
/// address itself, with any port, are served as before.
#[tokio::test]
async fn a_host_that_is_not_loopback_is_refused_on_every_admin_path() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let admin = server.admin.expect("admin listener");
    let port = admin.port();
    // Something to read, so a refusal that leaked rows would show.
    assert_eq!(
        netbox_status(
            &server.url("/webhook/"),
            "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a40"
        )
        .await,
        200
    );
    for &(path, served) in HOST_CHECKED {
        for host in [
            "evil.example".to_owned(),
            format!("evil.example:{port}"),
            format!("localhost.evil.example:{port}"),
            format!("127.0.0.1.evil.example:{port}"),
        ] {
            let (status, head) = get_with_host(admin, path, Some(&host), "").await;
            assert_eq!(status, 421, "{path} with Host {host}: {head}");
            assert!(head.contains("content-security-policy"), "{head}");
            assert!(!head.contains("text/event-stream"), "{head}");
        }
        for host in [
            format!("127.0.0.1:{port}"),
            "127.0.0.1".to_owned(),
            format!("localhost:{port}"),
            format!("LOCALHOST:{port}"),
            format!("[::1]:{port}"),
        ] {
            let (status, head) = get_with_host(admin, path, Some(&host), "").await;
            assert_eq!(status, served, "{path} with Host {host}: {head}");
        }
    }
    let (status, _) = get_with_host(admin, "/api/deliveries", None, "").await;
    assert_eq!(status, 421, "no Host at all");
    let (_, stream) =
        get_with_host(admin, "/api/stream", Some(&format!("127.0.0.1:{port}")), "").await;
    assert!(stream.contains("text/event-stream"), "{stream}");

    // The refusal's body names no host and holds no record.
    let resp = client()
        .get(server.admin_url("/api/deliveries"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 421);
    let body = resp.text().await.unwrap();
    assert!(!body.contains("evil") && !body.contains("7a40"), "{body}");
    assert!(
        server.wait_for_stderr("admin request refused", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
}

/// `allowed_hosts` adds names (for a tunnel or a proxy), any port, any case; other names stay
/// refused. With a token the check still holds, unless `allowed_hosts = ["*"]`.
#[tokio::test]
async fn allowed_hosts_and_the_token_each_keep_their_own_check() {
    let listed = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        admin: "listen = \"127.0.0.1:0\"\nallowed_hosts = [\"admin.example.com\", \"tunnel\"]",
        ..Default::default()
    });
    let addr = listed.admin.unwrap();
    for host in ["admin.example.com", "Admin.Example.COM:8443", "tunnel:9000"] {
        assert_eq!(
            get_with_host(addr, "/api/deliveries", Some(host), "")
                .await
                .0,
            200,
            "{host}"
        );
    }
    for host in [
        "evil.example",
        "admin.example.com.evil.example",
        "tunnel.evil",
    ] {
        assert_eq!(
            get_with_host(addr, "/api/deliveries", Some(host), "")
                .await
                .0,
            421,
            "{host}"
        );
    }

    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    let tokened = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        admin: "listen = \"0.0.0.0:0\"\ntoken = \"env:TEST_ADMIN_TOKEN\"",
        env: &[("TEST_ADMIN_TOKEN", TOKEN)],
        ..Default::default()
    });
    let addr = tokened.admin.unwrap();
    let port = addr.port();
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    for path in ["/api/deliveries", "/api/stream", "/metrics"] {
        let (status, _) = get_with_host(loopback, path, Some("evil.example"), &bearer).await;
        assert_eq!(
            status, 421,
            "{path}: the token does not lift the Host check"
        );
        let (status, _) =
            get_with_host(loopback, path, Some(&format!("127.0.0.1:{port}")), &bearer).await;
        assert_eq!(status, 200, "{path}");
        // Listening on 0.0.0.0: the address the client dialled is a name it may use.
        let (status, _) =
            get_with_host(loopback, path, Some(&format!("0.0.0.0:{port}")), &bearer).await;
        assert_eq!(status, 200, "{path}");
    }

    let star = Server::start_with(Options {
        hooks: &netbox_hook("/webhook/"),
        admin:
            "listen = \"127.0.0.1:0\"\ntoken = \"env:TEST_ADMIN_TOKEN\"\nallowed_hosts = [\"*\"]",
        env: &[("TEST_ADMIN_TOKEN", TOKEN)],
        ..Default::default()
    });
    let addr = star.admin.unwrap();
    let (status, _) = get_with_host(addr, "/api/deliveries", Some("evil.example"), &bearer).await;
    assert_eq!(status, 200, "[\"*\"] turns the Host check off");
    let (status, _) = get_with_host(addr, "/api/deliveries", Some("evil.example"), "").await;
    assert_eq!(status, 401, "the token still holds");
}

/// `["*"]` without a token would reopen DNS rebinding on loopback: start-up refuses it, naming
/// the key.
#[test]
fn a_star_in_allowed_hosts_without_a_token_is_refused() {
    let out = check_admin(
        &["check-config"],
        "listen = \"127.0.0.1:0\"\nallowed_hosts = [\"*\"]",
        "",
    );
    assert!(!out.ok(), "{}", out.all());
    assert!(
        out.all()
            .contains("admin.allowed_hosts[0]: \"*\" needs a token"),
        "{}",
        out.all()
    );
    let out = check_admin(
        &["check-config"],
        "listen = \"127.0.0.1:0\"\nallowed_hosts = [\"tunnel\"]",
        "",
    );
    assert!(out.ok(), "{}", out.all());
    assert!(
        out.stdout
            .contains("hosts localhost/loopback/listen address, tunnel)"),
        "{}",
        out.stdout
    );
}
