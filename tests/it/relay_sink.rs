//! The http relay sink through the running service: the real binary with a `kind = "http"` sink
//! relaying to a downstream service in this test (an axum app on 127.0.0.1:0) that verifies every
//! request with the `standardwebhooks` crate, an implementation independent of ours.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use nix::sys::signal::Signal;

use crate::common::{admin_sinks, health, metrics, netbox_body, read_lines, Server};
use crate::forwarding::{
    github_body, log_records, post_github, post_netbox, server, sink, wait_caught_up,
};

/// 32 key bytes, as the reference libraries generate.
const SECRET: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const CATCH_UP: Duration = Duration::from_secs(60);

/// One request as the downstream service saw it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    /// The independent verifier's verdict on the signature.
    verified: bool,
    at: Instant,
    /// What we answered.
    status: u16,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    }
    fn id(&self) -> String {
        self.header("webhook-id").expect("webhook-id")
    }
}

/// How the downstream answers: given the index of the request's `webhook-id` in first-seen order
/// and the attempt number for that id (1 for the first).
type Answer = dyn Fn(usize, usize) -> Response + Send + Sync;

struct Downstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Clone)]
struct DownState {
    seen: Arc<Mutex<Vec<Seen>>>,
    order: Arc<Mutex<Vec<String>>>,
    answer: Arc<Answer>,
    verifier: Arc<standardwebhooks::Webhook>,
}

async fn receive(
    State(st): State<DownState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verified = st.verifier.verify(&body, &headers).is_ok();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (index, attempt) = {
        let mut order = st.order.lock().unwrap();
        let index = match order.iter().position(|i| *i == id) {
            Some(i) => i,
            None => {
                order.push(id.clone());
                order.len() - 1
            }
        };
        let seen = st.seen.lock().unwrap();
        let attempt = 1 + seen.iter().filter(|s| s.id() == id).count();
        (index, attempt)
    };
    let resp = (st.answer)(index, attempt);
    st.seen.lock().unwrap().push(Seen {
        path: uri.path().to_owned(),
        headers,
        body,
        verified,
        at: Instant::now(),
        status: resp.status().as_u16(),
    });
    resp
}

impl Downstream {
    async fn start(answer: impl Fn(usize, usize) -> Response + Send + Sync + 'static) -> Self {
        Self::start_with(answer, None).await
    }

    /// With `tls`, it speaks https (hyper over tokio-rustls) with that server config.
    async fn start_with(
        answer: impl Fn(usize, usize) -> Response + Send + Sync + 'static,
        tls: Option<rustls::ServerConfig>,
    ) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = DownState {
            seen: seen.clone(),
            order: Arc::new(Mutex::new(Vec::new())),
            answer: Arc::new(answer),
            verifier: Arc::new(standardwebhooks::Webhook::new(SECRET).expect("secret")),
        };
        let app = axum::Router::new().fallback(receive).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        match tls {
            None => {
                tokio::spawn(async move { axum::serve(listener, app).await });
            }
            Some(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
                tokio::spawn(async move {
                    while let Ok((tcp, _)) = listener.accept().await {
                        let (acceptor, app) = (acceptor.clone(), app.clone());
                        tokio::spawn(async move {
                            // A client that does not trust us ends its handshake here.
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let service = hyper_util::service::TowerToHyperService::new(app);
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                                .await;
                        });
                    }
                });
            }
        }
        Downstream { addr, seen }
    }

    fn ok() -> impl Fn(usize, usize) -> Response + Send + Sync + 'static {
        |_, _| StatusCode::OK.into_response()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The ids answered 2xx, in the order they were.
    fn delivered(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|s| (200..300).contains(&s.status))
            .map(Seen::id)
            .collect()
    }
}

fn relay(url: &str, extra: &str) -> String {
    format!("[[sinks]]\nname = \"relay\"\nkind = \"http\"\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n{extra}\n")
}

/// The event ids of the log, in log order.
fn logged_ids(s: &Server) -> Vec<String> {
    log_records(&s.log_path)
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `/healthz` until `cond` holds for it.
async fn wait_health(s: &Server, what: &str, cond: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let h = health(s).await;
        if cond(&h) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen: {h}\n{}",
            s.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn dead_letters(s: &Server) -> Vec<serde_json::Value> {
    read_lines(
        &s.dir
            .path()
            .join("webhook-listener.spool/dead-letter/relay.jsonl"),
    )
    .iter()
    .map(|l| serde_json::from_str(l).expect("JSON dead letter"))
    .collect()
}

/// Posts `n` events, GitHub pushes and NetBox changes alternately; returns each one's body by its
/// delivery id (GitHub) or request id (NetBox).
async fn post_mix(s: &Server, n: usize, tag: &str) -> HashMap<String, Vec<u8>> {
    let mut sent = HashMap::new();
    for i in 0..n {
        if i % 2 == 0 {
            let id = format!("{tag}-gh-{i}-{}", uuid::Uuid::new_v4());
            let body = github_body(i);
            assert_eq!(post_github(s, &id, &body).await.0, 200);
            sent.insert(id, body);
        } else {
            let rid = uuid::Uuid::new_v4().to_string();
            assert_eq!(post_netbox(s, &rid).await.0, 200);
            sent.insert(rid.clone(), netbox_body(&rid));
        }
    }
    sent
}

#[tokio::test]
async fn every_event_is_relayed_once_signed_byte_identical_with_the_documented_headers() {
    let down = Downstream::start(Downstream::ok()).await;
    let s = server(&relay(&down.url("/hooks?tenant=a"), ""), None);
    let sent = post_mix(&s, 10, "all").await;
    let h = wait_caught_up(&s, 10).await;
    assert_eq!(h["result"], "ok", "{h}");
    let r = sink(&h, "relay");
    assert_eq!(
        (r["kind"].as_str(), r["state"].as_str()),
        (Some("http"), Some("connected")),
        "{h}"
    );
    assert_eq!(r["connected"], true, "{h}");

    let seen = down.seen();
    assert_eq!(seen.len(), 10, "one request per event: {seen:#?}");
    assert!(seen.iter().all(|x| x.verified), "every signature verifies");
    // concurrency = 1: in the log's order.
    assert_eq!(down.delivered(), logged_ids(&s));
    let records = log_records(&s.log_path);
    let now = chrono::Utc::now().timestamp();
    for (x, rec) in seen.iter().zip(&records) {
        assert_eq!(x.path, "/hooks");
        assert_eq!(
            x.headers.get("webhook-id").unwrap(),
            rec["event_id"].as_str().unwrap()
        );
        let key = rec["delivery_id"]
            .as_str()
            .or(rec["request_id"].as_str())
            .unwrap();
        assert_eq!(&x.body[..], &sent[key][..], "body byte-identical");
        let ts: i64 = x.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!((now - ts).abs() < 120, "timestamp is the send time: {ts}");
        assert!(x.header("webhook-signature").unwrap().starts_with("v1,"));
        assert_eq!(
            x.header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(x.header("webhook-hook").as_deref(), rec["hook"].as_str());
        assert_eq!(
            x.header("webhook-provider").as_deref(),
            rec["provider"].as_str()
        );
        assert_eq!(
            x.header("webhook-delivery-id").as_deref(),
            rec["delivery_id"].as_str()
        );
        let event = if rec["provider"] == "netbox" {
            "dcim.site.created"
        } else {
            "push"
        };
        assert_eq!(x.header("webhook-event").as_deref(), Some(event));
        assert!(x
            .header("user-agent")
            .unwrap()
            .starts_with("webhook-listener/"));
    }
    let m = metrics(&s).await;
    assert!(
        m.contains("webhook_sink_delivered_total{sink=\"relay\"} 10"),
        "{m}"
    );
    assert!(
        m.contains("webhook_sink_connected{sink=\"relay\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn a_503_with_retry_after_then_200_delivers_each_event_once_after_the_hint() {
    // Each event's first attempt: 503 with Retry-After in seconds (3), as an HTTP date (3 s
    // ahead), and 1; the second attempt: 200.
    let down = Downstream::start(|index, attempt| {
        if attempt > 1 {
            return StatusCode::OK.into_response();
        }
        let hint = match index {
            0 => "3".to_owned(),
            1 => httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3)),
            _ => "1".to_owned(),
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", hint)],
            "busy",
        )
            .into_response()
    })
    .await;
    let s = server(&relay(&down.url("/"), ""), None);
    post_mix(&s, 3, "retry").await;
    wait_caught_up(&s, 3).await;
    let ids = logged_ids(&s);
    assert_eq!(down.delivered(), ids, "each event once, in order");
    let seen = down.seen();
    assert_eq!(seen.len(), 6, "two attempts each: {seen:#?}");
    assert!(seen.iter().all(|x| x.verified));
    let gap = |id: &str| {
        let at: Vec<Instant> = seen.iter().filter(|x| x.id() == id).map(|x| x.at).collect();
        at[1] - at[0]
    };
    assert!(
        gap(&ids[0]) >= Duration::from_millis(2900),
        "Retry-After: 3 honoured: {:?}",
        gap(&ids[0])
    );
    assert!(
        gap(&ids[1]) >= Duration::from_millis(1900),
        "Retry-After date honoured: {:?}",
        gap(&ids[1])
    );
    // Each retry re-signs with a fresh timestamp.
    let first = seen.iter().find(|x| x.id() == ids[0]).unwrap();
    let second = seen.iter().rfind(|x| x.id() == ids[0]).unwrap();
    assert_ne!(
        first.header("webhook-timestamp"),
        second.header("webhook-timestamp")
    );
    let m = metrics(&s).await;
    assert!(
        m.contains("webhook_sink_retried_total{sink=\"relay\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("webhook_sink_dead_lettered_total{sink=\"relay\"} 0"),
        "{m}"
    );
}

#[tokio::test]
async fn a_400_is_dead_lettered_at_once_with_a_bounded_escaped_reason_and_later_events_flow() {
    let down = Downstream::start(|index, _| {
        if index == 0 {
            let reason = format!("bad \u{1b}[31mrequest\n{}", "x".repeat(500));
            (StatusCode::BAD_REQUEST, reason).into_response()
        } else {
            StatusCode::NO_CONTENT.into_response()
        }
    })
    .await;
    let s = server(&relay(&down.url("/"), ""), None);
    post_mix(&s, 4, "bad").await;
    let h = wait_caught_up(&s, 4).await;
    assert_eq!(sink(&h, "relay")["dead_lettered"], 1, "{h}");
    assert_eq!(
        h["result"], "ok",
        "a dead letter alone does not degrade: {h}"
    );
    let ids = logged_ids(&s);
    assert_eq!(
        down.delivered(),
        ids[1..],
        "the events after it flow, in order"
    );
    assert_eq!(down.seen().len(), 4, "the 400 is not retried");

    let letters = dead_letters(&s);
    assert_eq!(letters.len(), 1, "{letters:?}");
    let l = &letters[0];
    assert_eq!(l["event"]["id"], ids[0].as_str());
    assert_eq!(l["attempts"], 1);
    let error = l["error"].as_str().unwrap();
    assert!(
        error.starts_with("HTTP 400 Bad Request: bad \\x1b[31mrequest\\nxxx"),
        "{error}"
    );
    assert!(error.len() < 300, "bounded: {} bytes", error.len());
    assert!(!error.chars().any(char::is_control), "{error:?}");
    assert!(s.wait_for_stderr("event dead-lettered", Duration::from_secs(5)));
}

#[tokio::test]
async fn a_410_pauses_the_sink_degrades_healthz_keeps_every_event_and_sighup_resumes() {
    let gone = Arc::new(AtomicBool::new(true));
    let g = gone.clone();
    let down = Downstream::start(move |_, _| {
        if g.load(Ordering::SeqCst) {
            (StatusCode::GONE, "endpoint retired").into_response()
        } else {
            StatusCode::OK.into_response()
        }
    })
    .await;
    let s = server(&relay(&down.url("/"), ""), None);
    post_mix(&s, 3, "gone").await;
    wait_health(&s, "paused and degraded", |h| {
        h["result"] == "degraded" && sink(h, "relay")["state"] == "paused"
    })
    .await;
    // Intake goes on while paused; nothing more is sent.
    post_mix(&s, 2, "gone2").await;
    let h = health(&s).await;
    let r = sink(&h, "relay");
    assert_eq!(r["lag_events"], 5, "{h}");
    assert_eq!(r["dead_lettered"], 0, "{h}");
    // The reason (with the destination's own answer) is the operator's, on the admin listener.
    assert!(
        r.get("paused_reason").is_none() && r.get("last_error").is_none(),
        "{h}"
    );
    assert!(!h.to_string().contains("endpoint retired"), "{h}");
    let a = admin_sinks(&s).await;
    assert!(
        sink(&a, "relay")["paused_reason"]
            .as_str()
            .unwrap()
            .contains("410 Gone"),
        "{a}"
    );
    assert_eq!(
        down.seen().len(),
        1,
        "one request, then paused: {:#?}",
        down.seen()
    );
    assert!(s.wait_for_stderr("sink paused by its destination", Duration::from_secs(5)));
    let m = metrics(&s).await;
    assert!(m.contains("webhook_sink_paused{sink=\"relay\"} 1"), "{m}");
    assert!(
        m.contains("webhook_sink_in_flight{sink=\"relay\"} 0"),
        "{m}"
    );
    // Still paused a moment later: a pause is not a backoff.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(down.seen().len(), 1);

    gone.store(false, Ordering::SeqCst);
    s.signal(Signal::SIGHUP);
    let h = wait_caught_up(&s, 5).await;
    assert_eq!(h["result"], "ok", "{h}");
    assert_eq!(sink(&h, "relay")["state"], "connected", "{h}");
    assert_eq!(
        down.delivered(),
        logged_ids(&s),
        "nothing dropped, each once, in order"
    );
    let m = metrics(&s).await;
    assert!(m.contains("webhook_sink_paused{sink=\"relay\"} 0"), "{m}");
    assert!(dead_letters(&s).is_empty());
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_dead_lettered_with_its_location() {
    let trap = Downstream::start(Downstream::ok()).await;
    let target = trap.url("/trap");
    let down = Downstream::start(move |index, _| {
        if index == 0 {
            (StatusCode::FOUND, [("location", target.clone())]).into_response()
        } else {
            StatusCode::OK.into_response()
        }
    })
    .await;
    let s = server(&relay(&down.url("/"), ""), None);
    post_mix(&s, 3, "moved").await;
    wait_caught_up(&s, 3).await;
    assert!(trap.seen().is_empty(), "the Location target got nothing");
    let ids = logged_ids(&s);
    assert_eq!(down.delivered(), ids[1..]);
    let letters = dead_letters(&s);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["event"]["id"], ids[0].as_str());
    let error = letters[0]["error"].as_str().unwrap();
    assert_eq!(
        error,
        format!(
            "HTTP 302 Found (redirect not followed) Location: {}",
            trap.url("/trap")
        )
    );
}

#[tokio::test]
async fn an_event_that_keeps_failing_is_dead_lettered_after_max_attempts_or_max_age() {
    let down = Downstream::start(|_, _| StatusCode::BAD_GATEWAY.into_response()).await;
    let sinks = format!(
        "{}{}",
        relay(&down.url("/attempts"), "max_attempts = 2"),
        relay(&down.url("/age"), "max_age_secs = 1\nmax_attempts = 1000")
            .replace("\"relay\"", "\"aged\"")
    );
    let s = server(&sinks, None);
    post_mix(&s, 1, "fail").await;
    let h = wait_caught_up(&s, 1).await;
    assert_eq!(sink(&h, "relay")["dead_lettered"], 1, "{h}");
    assert_eq!(sink(&h, "aged")["dead_lettered"], 1, "{h}");
    let seen = down.seen();
    assert_eq!(seen.iter().filter(|x| x.path == "/attempts").count(), 2);
    let aged = seen.iter().filter(|x| x.path == "/age").count();
    assert!(
        (2..=3).contains(&aged),
        "about one second of 1 s-doubling retries: {aged}"
    );
    let letter = &dead_letters(&s)[0];
    assert_eq!(letter["attempts"], 2);
    assert_eq!(letter["error"], "HTTP 502 Bad Gateway");
    let aged_letter: serde_json::Value = serde_json::from_str(
        &read_lines(
            &s.dir
                .path()
                .join("webhook-listener.spool/dead-letter/aged.jsonl"),
        )[0],
    )
    .unwrap();
    assert!(
        aged_letter["error"]
            .as_str()
            .unwrap()
            .ends_with("(given up: the event is older than max_age_secs = 1)"),
        "{aged_letter}"
    );
}

/// A service that accepts the connection and never answers: the request times out and is
/// retried (the sink itself, over a real socket).
#[tokio::test]
async fn a_service_that_never_answers_times_out_into_a_retry() {
    use webhook_listener::forward::http::{parse_url, signing_key, HttpConfig, HttpSink};
    use webhook_listener::forward::{DeliveryError, Sink};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    let sink = HttpSink::new(&HttpConfig {
        name: "relay".into(),
        url: parse_url(&format!("http://{addr}/")).unwrap(),
        key: signing_key(&webhook_listener::signature::Secret::new(SECRET)).unwrap(),
        timeout: Duration::from_secs(1),
        ca_file: None,
        ca_certs: Vec::new(),
    })
    .unwrap();
    let event = webhook_listener::forward::Event {
        id: uuid::Uuid::now_v7(),
        hook: "/github".into(),
        provider: "github".into(),
        event_type: Some("push".into()),
        delivery_id: Some("d\u{7f}with a control".into()),
        received_at: chrono::Utc::now(),
        content_type: None,
        client: None,
        body: Bytes::from_static(b"{}"),
    };
    let t = Instant::now();
    let r = sink.deliver(&event).await;
    let took = t.elapsed();
    match r {
        Err(DeliveryError::Retry {
            error,
            retry_after: None,
        }) => {
            assert!(error.contains("timed out"), "{error}");
            assert!(!error.contains("127.0.0.1"), "no URL in the error: {error}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(!sink.is_connected());
    held.abort();
}

#[tokio::test]
async fn check_config_connect_reaches_the_service_without_sending_anything_or_showing_the_secret() {
    let down = Downstream::start(Downstream::ok()).await;
    let closed = format!("http://127.0.0.1:{}/", crate::common::brokers::free_port());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    let config = format!(
        "{}{}{}",
        crate::forwarding::hooks(),
        relay(&down.url("/hooks?token=abc"), ""),
        relay(&closed, "").replace("\"relay\"", "\"down\"")
    );
    std::fs::write(&file, config).unwrap();
    let out = std::process::Command::new(crate::common::bin())
        .args(["check-config", "--connect"])
        .arg(&file)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "one service is down: {text}");
    assert!(text.contains("kind=http"), "{text}");
    let ok = format!(
        "connect relay: OK: http://{}/hooks?…: 127.0.0.1 resolved to 127.0.0.1; TCP connected",
        down.addr
    );
    assert!(text.contains(&ok), "{text}");
    assert!(text.contains("connect down: FAILED"), "{text}");
    assert!(
        !text.contains("MDEyMzQ1") && !text.contains("token=abc"),
        "{text}"
    );
    assert!(down.seen().is_empty(), "--connect sends no request");
}

/// A private CA (made here with rcgen) and a server certificate for 127.0.0.1 it signed.
fn private_ca() -> (String, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    (ca_cert.pem(), config)
}

#[tokio::test]
async fn https_is_verified_against_the_system_roots_plus_ca_file() {
    let (ca_pem, tls) = private_ca();
    let down = Downstream::start_with(Downstream::ok(), Some(tls)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("internal-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = format!("https://{}/hooks", down.addr);
    let sinks = format!(
        "{}{}",
        relay(
            &url,
            &format!("ca_file = {:?}", ca_file.display().to_string())
        ),
        relay(&url, "").replace("\"relay\"", "\"untrusted\"")
    );
    let s = server(&sinks, None);
    post_mix(&s, 2, "tls").await;
    // The sink with the private CA delivers; the one without it never gets past the handshake.
    wait_health(&s, "relay delivered", |h| {
        sink(h, "relay")["delivered"] == 2
    })
    .await;
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let a = admin_sinks(&s).await;
        let refused = sink(&a, "untrusted")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("certificate"));
        if refused {
            break;
        }
        assert!(Instant::now() < deadline, "untrusted refused not seen: {a}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(down.delivered(), logged_ids(&s));
    assert!(down.seen().iter().all(|x| x.verified));
    let h = health(&s).await;
    assert_eq!(sink(&h, "untrusted")["delivered"], 0, "{h}");
    assert_eq!(sink(&h, "untrusted")["state"], "retrying", "{h}");

    // Off the runtime: the downstream answering the handshake runs on this test's thread.
    let config = s.config_path.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(crate::common::bin())
            .args(["check-config", "--connect"])
            .arg(config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("connect relay: OK:") && text.contains("certificate verified against"),
        "{text}"
    );
    assert!(
        text.contains("connect untrusted: FAILED:") && text.contains("TLS:"),
        "{text}"
    );

    // A ca_file that is not PEM is a config error naming it.
    std::fs::write(&ca_file, "not a certificate\n").unwrap();
    let out = std::process::Command::new(crate::common::bin())
        .arg("check-config")
        .arg(&s.config_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        text.contains("ca_file")
            && text.contains("internal-ca.pem")
            && text.contains("no PEM certificate"),
        "{text}"
    );
}
