//! Every provider end to end: the per-provider contract through the real binary, real sockets and
//! the real event log, plus what only a running server shows (delivery ids across retries, the
//! replay window as configured, the shipped example configs).
//!
//! Every request is signed by the independent signer (`tests/common/sign.rs`), never with
//! `webhook_listener::signature::sign`: a bug shared by signer and verifier cannot pass. What the
//! verifier alone decides (published vectors, malformed and undecodable entries, every generic
//! algorithm and encoding, key formats) is proven by the unit tests in `src/signature/tests.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;

use crate::common::*;

/// The 401 body for every signature failure, whatever the reason.
fn invalid_signature() -> serde_json::Value {
    serde_json::json!({ "result": "invalid signature" })
}

pub(crate) fn path_of(p: Provider) -> String {
    format!("/{}", p.name())
}

/// The headers whose absence alone must be refused.
pub(crate) fn required_headers(p: Provider) -> &'static [&'static str] {
    match p {
        Provider::Netbox => &["x-hook-signature"],
        Provider::Github => &["x-hub-signature-256"],
        Provider::Gitlab => &["x-gitlab-token"],
        Provider::StandardWebhooks => &["webhook-id", "webhook-timestamp", "webhook-signature"],
        Provider::Stripe => &["stripe-signature"],
        Provider::Slack => &["x-slack-request-timestamp", "x-slack-signature"],
        Provider::Shopify => &["x-shopify-hmac-sha256"],
        Provider::Hmac => &["x-signature"],
        Provider::Gitea => &["x-gitea-signature"],
        Provider::Bitbucket => &["x-hub-signature"],
        Provider::Pagerduty => &["x-pagerduty-signature"],
        Provider::Linear => &["linear-signature"],
        Provider::Twitch => &[
            "twitch-eventsub-message-id",
            "twitch-eventsub-message-timestamp",
            "twitch-eventsub-message-signature",
            "twitch-eventsub-message-type",
        ],
        Provider::Zoom => &["x-zm-request-timestamp", "x-zm-signature"],
        Provider::Twilio => &["x-twilio-signature"],
        Provider::Discord => &["x-signature-ed25519", "x-signature-timestamp"],
    }
}

/// A body of the shape the provider sends; `id` is its event id where the body carries one.
pub(crate) fn body_of(p: Provider, id: &str) -> Vec<u8> {
    match p {
        Provider::Netbox => netbox_body(&uuid::Uuid::new_v4().to_string()),
        Provider::Stripe => format!(
            r#"{{"id":"{id}","object":"event","type":"invoice.paid","data":{{"object":{{"amount_paid":1}}}}}}"#
        )
        .into_bytes(),
        Provider::Slack => format!(
            r#"{{"type":"event_callback","team_id":"T0001","event_id":"{id}","event":{{"type":"app_mention","text":"hi 1"}}}}"#
        )
        .into_bytes(),
        // PagerDuty V3: the event's id and type inside `event`.
        Provider::Pagerduty => format!(
            r#"{{"event":{{"id":"{id}","event_type":"incident.triggered","resource_type":"incident","data":{{"n":1}}}}}}"#
        )
        .into_bytes(),
        // Linear: the signed replay stamp, in milliseconds, as of now.
        Provider::Linear => format!(
            r#"{{"action":"create","type":"Issue","data":{{"n":1}},"webhookTimestamp":{}}}"#,
            chrono::Utc::now().timestamp_millis()
        )
        .into_bytes(),
        // Discord: an APPLICATION_COMMAND interaction; its id is the delivery id.
        Provider::Discord => {
            format!(r#"{{"type":2,"id":"{id}","data":{{"name":"ping","n":1}}}}"#).into_bytes()
        }
        _ => br#"{"type":"test.event","data":{"n":1}}"#.to_vec(),
    }
}

pub(crate) fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn without(headers: &Headers, name: &str) -> Headers {
    let out: Headers = headers.iter().filter(|(k, _)| k != name).cloned().collect();
    assert_eq!(out.len() + 1, headers.len(), "{name} was sent");
    out
}

pub(crate) fn replace(headers: &Headers, name: &str, value: String) -> Headers {
    let mut out = without(headers, name);
    out.push((name.to_string(), value));
    out
}

/// The body with its last `1` turned into a `2` (still valid JSON, so only the signature can refuse
/// it), or with its first byte changed when it has no `1`.
pub(crate) fn tampered(body: &[u8]) -> Vec<u8> {
    let mut t = body.to_vec();
    match t.iter().rposition(|&b| b == b'1') {
        Some(i) => t[i] = b'2',
        None => t[0] ^= 1,
    }
    assert_ne!(t, body);
    t
}

pub(crate) async fn expect_401(url: &str, headers: &Headers, body: Vec<u8>, what: &str) {
    let (status, json) = post(url, headers, body).await;
    assert_eq!(status, 401, "{what}: {json}");
    assert_eq!(json, invalid_signature(), "{what}: generic message");
}

pub(crate) async fn expect_200(
    url: &str,
    headers: &Headers,
    body: Vec<u8>,
    what: &str,
) -> serde_json::Value {
    let (status, json) = post(url, headers, body).await;
    assert_eq!(status, 200, "{what}: {json}");
    assert_eq!(json["result"], "ok", "{what}");
    json
}

// ---------------------------------------------------------------------------------------------
// The contract every provider meets
// ---------------------------------------------------------------------------------------------

/// One server with one hook of `p` holding two secrets (rotation). Checks: valid with either secret
/// → 200 and one line naming hook and delivery id; a third secret, a tampered body and each missing
/// header → 401 with the generic body and no line; the same delivery again → 200, no second line.
pub(crate) async fn contract(p: Provider) {
    let path = path_of(p);
    let (a, b, c) = (secret(p, 1), secret(p, 2), secret(p, 3));
    let server = Server::start(&hook(p, &path, &[a.clone(), b.clone()], ""));
    let url = server.url(&path);
    let mut expected_lines = 0;

    // Valid, signed with the first secret: 200, one line naming the hook and the delivery id.
    let id = new_id("evt");
    let body = body_of(p, &id);
    let headers = signed(p, &a, &body, now(), &id);
    expect_200(&url, &headers, body.clone(), "valid, first secret").await;
    expected_lines += 1;
    let lines = server.log_lines();
    assert_eq!(lines.len(), expected_lines, "{lines:#?}");
    let line = &lines[0];
    assert!(line.contains(&format!(" hook={path} ")), "{line}");
    if p == Provider::Netbox {
        assert!(!line.contains("delivery_id="), "{line}");
    } else {
        assert!(line.contains(&format!(" delivery_id={id} ")), "{line}");
    }
    let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(line_payload(line), sent, "the whole body is logged");
    for s in [&a, &b] {
        assert!(!line.contains(s.as_str()), "no secret in the log");
    }

    // Rotation: the second secret is accepted too.
    let id2 = new_id("evt");
    let body2 = body_of(p, &id2);
    expect_200(
        &url,
        &signed(p, &b, &body2, now(), &id2),
        body2,
        "valid, second secret",
    )
    .await;
    expected_lines += 1;

    // A third secret is not.
    let id3 = new_id("evt");
    let body3 = body_of(p, &id3);
    expect_401(
        &url,
        &signed(p, &c, &body3, now(), &id3),
        body3.clone(),
        "wrong secret",
    )
    .await;

    // Tampered body under a valid signature of the original.
    let fresh = signed(p, &a, &body3, now(), &id3);
    if p == Provider::Gitlab {
        // GitLab sends the token itself and signs nothing: the body is not covered, so a changed
        // body with the right token passes. Documented in config/examples/gitlab.toml (use HTTPS).
        expect_200(&url, &fresh, tampered(&body3), "gitlab: token only").await;
        expected_lines += 1;
    } else {
        expect_401(&url, &fresh, tampered(&body3), "tampered body").await;
    }

    // Each required header missing.
    for name in required_headers(p) {
        let id = new_id("evt");
        let body = body_of(p, &id);
        let headers = without(&signed(p, &a, &body, now(), &id), name);
        expect_401(&url, &headers, body, &format!("missing {name}")).await;
    }
    assert_eq!(
        server.log_lines().len(),
        expected_lines,
        "no refused request is logged"
    );

    // The first delivery again, exactly as sent: acknowledged, not logged twice.
    let json = expect_200(&url, &headers, body.clone(), "redelivery").await;
    if p == Provider::Netbox {
        // NetBox sends no delivery id, so nothing identifies a redelivery.
        expected_lines += 1;
    } else {
        assert_eq!(json["duplicate"], true, "{json}");
    }
    let lines = server.log_lines();
    assert_eq!(lines.len(), expected_lines, "{lines:#?}");
    let with_id = lines
        .iter()
        .filter(|l| l.contains(&format!(" delivery_id={id} ")))
        .count();
    assert_eq!(with_id, usize::from(p != Provider::Netbox), "{lines:#?}");

    // The diagnostics name the reasons, never a secret.
    for reason in ["mismatch", "missing header"] {
        assert!(
            server.wait_for_stderr(reason, Duration::from_secs(5)),
            "{reason}: {}",
            server.stderr()
        );
    }
    let err = server.stderr();
    for s in [&a, &b, &c] {
        assert!(!err.contains(s.as_str()), "secret in diagnostics: {err}");
    }
}

/// The contract table: one test per provider, so they run in parallel and fail by name.
macro_rules! contract_tests {
    ($($name:ident: $p:expr,)*) => {$(
        #[tokio::test]
        async fn $name() {
            contract($p).await;
        }
    )*};
}

contract_tests! {
    netbox_contract: Provider::Netbox,
    github_contract: Provider::Github,
    gitlab_contract: Provider::Gitlab,
    standard_webhooks_contract: Provider::StandardWebhooks,
    stripe_contract: Provider::Stripe,
    slack_contract: Provider::Slack,
    shopify_contract: Provider::Shopify,
    generic_hmac_contract: Provider::Hmac,
}

#[test]
fn the_contract_table_has_every_provider() {
    // Zoom (no delivery id), Twilio (a form body) and Discord (Ed25519) have tests of their own.
    let table = [
        include_str!("providers.rs"),
        include_str!("providers_more.rs"),
    ]
    .concat();
    let own = [Provider::Zoom, Provider::Twilio, Provider::Discord];
    for p in Provider::iter().filter(|p| !own.contains(p)) {
        let name = format!("{}_contract: Provider::{p:?},", p.name().replace('-', "_"));
        let name = name.replace("hmac_contract", "generic_hmac_contract");
        assert!(table.contains(&name), "{name} missing from contract_tests!");
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamped schemes: the replay window as configured
// ---------------------------------------------------------------------------------------------

/// Ten minutes old or ahead → 401 (a correct signature, refused for its timestamp alone); four
/// minutes either way → 200 under the default 300 s; a hook with `tolerance_secs = 30` refuses two minutes.
async fn replay_window(p: Provider) {
    let secret = secret(p, 1);
    let short = format!("{}-short", path_of(p));
    let hooks = format!(
        "{}{}",
        hook(p, &path_of(p), std::slice::from_ref(&secret), ""),
        hook(
            p,
            &short,
            std::slice::from_ref(&secret),
            "tolerance_secs = 30"
        )
    );
    let server = Server::start(&hooks);
    let url = server.url(&path_of(p));

    for (skew, what) in [(-600, "10 minutes old"), (600, "10 minutes in the future")] {
        let id = new_id("evt");
        let body = body_of(p, &id);
        let headers = signed(p, &secret, &body, now() + skew, &id);
        expect_401(&url, &headers, body, what).await;
    }
    assert!(server.log_lines().is_empty());
    assert!(
        server.wait_for_stderr("timestamp outside tolerance", Duration::from_secs(5)),
        "{}",
        server.stderr()
    );
    let err = server.stderr();
    assert!(
        !err.contains("mismatch"),
        "refused for the timestamp, not the signature: {err}"
    );

    for (skew, what) in [(-240, "4 minutes old"), (240, "4 minutes ahead")] {
        let id = new_id("evt");
        let body = body_of(p, &id);
        let headers = signed(p, &secret, &body, now() + skew, &id);
        expect_200(&url, &headers, body, what).await;
    }
    assert_eq!(server.log_lines().len(), 2);

    let short_url = server.url(&short);
    let id = new_id("evt");
    let body = body_of(p, &id);
    let old = signed(p, &secret, &body, now() - 120, &id);
    expect_401(
        &short_url,
        &old,
        body.clone(),
        "2 minutes old, 30 s allowed",
    )
    .await;
    let fresh = signed(p, &secret, &body, now(), &id);
    expect_200(&short_url, &fresh, body, "fresh, 30 s allowed").await;
    assert_eq!(server.log_lines().len(), 3);
}

#[tokio::test]
async fn standard_webhooks_replay_window() {
    replay_window(Provider::StandardWebhooks).await;
}

#[tokio::test]
async fn stripe_replay_window() {
    replay_window(Provider::Stripe).await;
}

#[tokio::test]
async fn slack_replay_window() {
    replay_window(Provider::Slack).await;
}

// ---------------------------------------------------------------------------------------------
// Delivery ids a running server keys its dedupe on
// ---------------------------------------------------------------------------------------------

/// The `svix-*` header names (Svix-powered senders) work like `webhook-*`, and a message is the same
/// delivery under either spelling.
#[tokio::test]
async fn standard_webhooks_svix_headers_are_the_same_delivery() {
    let p = Provider::StandardWebhooks;
    let secret = secret(p, 1);
    let server = Server::start(&hook(p, "/sw", std::slice::from_ref(&secret), ""));
    let url = server.url("/sw");
    let id = new_id("msg");
    let body = body_of(p, &id);
    let webhook = signed(p, &secret, &body, now(), &id);
    let svix: Headers = webhook
        .iter()
        .map(|(k, v)| (k.replace("webhook-", "svix-"), v.clone()))
        .collect();
    expect_200(&url, &svix, body.clone(), "svix-* headers").await;
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains(&format!(" delivery_id={id} ")),
        "{}",
        lines[0]
    );
    let json = expect_200(&url, &webhook, body, "same message, webhook-*").await;
    assert_eq!(json["duplicate"], true);
    assert_eq!(server.log_lines().len(), 1);
}

/// Stripe's delivery id is the event id in the body: a retry of the same event, with a new
/// timestamp and signature, is still a duplicate.
#[tokio::test]
async fn stripe_retry_with_a_new_signature_is_a_duplicate() {
    let p = Provider::Stripe;
    let secret = secret(p, 1);
    let server = Server::start(&hook(p, "/stripe", std::slice::from_ref(&secret), ""));
    let url = server.url("/stripe");
    let id = new_id("evt");
    let body = body_of(p, &id);
    expect_200(
        &url,
        &signed(p, &secret, &body, now(), &id),
        body.clone(),
        "first",
    )
    .await;
    let lines = server.log_lines();
    assert!(
        lines[0].contains(&format!(" delivery_id={id} ")),
        "{}",
        lines[0]
    );
    let retry = signed(p, &secret, &body, now() + 1, "");
    let json = expect_200(&url, &retry, body, "retry, re-signed").await;
    assert_eq!(json["duplicate"], true, "{json}");
    assert_eq!(server.log_lines().len(), 1);
}

#[tokio::test]
async fn gitlab_idempotency_key_and_shopify_unpadded_base64() {
    let (gitlab, shopify) = (Provider::Gitlab, Provider::Shopify);
    let hooks = format!(
        "{}{}",
        hook(gitlab, "/gitlab", &[secret(gitlab, 1)], ""),
        hook(shopify, "/shopify", &[secret(shopify, 1)], "")
    );
    let server = Server::start(&hooks);

    // GitLab: Idempotency-Key (kept across retries) is the delivery id.
    let url = server.url("/gitlab");
    let key = uuid::Uuid::new_v4().to_string();
    let body = body_of(gitlab, "");
    let token = secret(gitlab, 1);
    let first_uuid = uuid::Uuid::new_v4().to_string();
    let mut sent = headers(&[
        ("x-gitlab-token", &token),
        ("idempotency-key", &key),
        ("x-gitlab-event-uuid", &first_uuid),
    ]);
    expect_200(&url, &sent, body.clone(), "gitlab").await;
    sent = replace(
        &sent,
        "x-gitlab-event-uuid",
        uuid::Uuid::new_v4().to_string(),
    );
    let json = expect_200(&url, &sent, body, "gitlab retry").await;
    assert_eq!(json["duplicate"], true, "{json}");
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains(&format!(" delivery_id={key} ")),
        "{}",
        lines[0]
    );

    // Shopify: base64 without padding is the same signature; hex of it is not.
    let url = server.url("/shopify");
    let id = new_id("wh");
    let body = body_of(shopify, &id);
    let tag = sign::mac(Algorithm::Sha256, secret(shopify, 1).as_bytes(), &[&body]);
    let hex_sig = headers(&[
        ("x-shopify-hmac-sha256", &hex::encode(&tag)),
        ("x-shopify-webhook-id", &id),
    ]);
    expect_401(&url, &hex_sig, body.clone(), "shopify hex").await;
    let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&tag);
    let unpadded = headers(&[
        ("x-shopify-hmac-sha256", &unpadded),
        ("x-shopify-webhook-id", &id),
    ]);
    expect_200(&url, &unpadded, body, "shopify unpadded base64").await;
    assert_eq!(server.log_lines().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// The example configurations
// ---------------------------------------------------------------------------------------------

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples")
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Every `env:NAME` a config text refers to (comments included, so commented rotation lines too).
fn env_references(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .match_indices("env:")
        .map(|(i, m)| {
            text[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_example_config_passes_check_config() {
    let files = example_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for p in Provider::iter() {
        assert!(
            names.iter().any(|n| n == p.name()),
            "config/examples/{}.toml exists",
            p.name()
        );
    }
    assert!(names.iter().any(|n| n == "all-providers"), "{names:?}");

    // A whsec_<base64> value is a valid secret for every provider; a variable named *PUBLIC_KEY
    // holds a public key (Discord's hex).
    let value = |name: &str| {
        if name.contains("PUBLIC_KEY") {
            ed25519::Signer::numbered(1).public_hex()
        } else {
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()
        }
    };
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let refs = env_references(&text);
        assert!(
            !refs.is_empty(),
            "{}: secrets come from env: references",
            file.display()
        );
        let mut cmd = Command::new(bin());
        cmd.arg("check-config").arg(file);
        for name in &refs {
            cmd.env(name, value(name));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));

        // And without the variables, check-config fails naming the first one it needs.
        let mut cmd = Command::new(bin());
        cmd.arg("check-config").arg(file);
        for name in &refs {
            cmd.env_remove(name);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{}", file.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not set"), "{}: {err}", file.display());
    }
}

/// The secret the all-providers test gives each provider's environment variable.
fn example_secret(p: Provider) -> String {
    secret(p, 7)
}

#[tokio::test]
async fn all_providers_example_serves_every_hook() {
    let text = std::fs::read_to_string(examples_dir().join("all-providers.toml")).unwrap();
    let mut config: toml::Table = text.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("events.log");
    config.insert("listen".into(), "127.0.0.1:0".into());
    config
        .get_mut("log")
        .and_then(|l| l.as_table_mut())
        .expect("[log] table")
        .insert("file".into(), log_path.display().to_string().into());
    // A free port, not the admin default, so other servers can run beside it.
    let mut admin = toml::Table::new();
    admin.insert("listen".into(), "127.0.0.1:0".into());
    config.insert("admin".into(), admin.into());

    // Which provider each hook is, and the env var its secret comes from.
    let hooks = config["hooks"].as_array().unwrap().clone();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut seen = Vec::new();
    for h in &hooks {
        let p: Provider = h["provider"].as_str().unwrap().parse().unwrap();
        seen.push(p);
        if p == Provider::Discord {
            let key = h["public_keys"][0]
                .as_str()
                .unwrap()
                .strip_prefix("env:")
                .unwrap();
            env.insert(key.to_string(), ed25519::Signer::numbered(7).public_hex());
            continue;
        }
        let secrets = h["secrets"].as_array().unwrap();
        assert_eq!(secrets.len(), 1, "{h}");
        let name = secrets[0]
            .as_str()
            .unwrap()
            .strip_prefix("env:")
            .expect("env: reference")
            .to_string();
        assert!(
            env.insert(name.clone(), example_secret(p)).is_none(),
            "{name} used by one hook only"
        );
    }
    for p in Provider::iter() {
        assert_eq!(
            seen.iter().filter(|s| **s == p).count(),
            1,
            "one {} hook",
            p.name()
        );
    }

    let config_path = dir.path().join("all-providers.toml");
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(&config_path)
        .current_dir(dir.path());
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let server = Server::spawn(cmd, dir, log_path, config_path);

    for h in &hooks {
        let p: Provider = h["provider"].as_str().unwrap().parse().unwrap();
        let path = h["path"].as_str().unwrap();
        let id = new_id("evt");
        let body = body_of(p, &id);
        if p == Provider::Discord {
            // Ed25519, signed with the private key of the public key configured above.
            let body = br#"{"type":2,"id":"int_1","data":{"name":"ping"}}"#.to_vec();
            let good = ed25519::Signer::numbered(7).discord_headers(&body, now());
            expect_200(&server.url(path), &good, body.clone(), path).await;
            let bad = ed25519::Signer::numbered(8).discord_headers(&body, now());
            expect_401(&server.url(path), &bad, body, path).await;
            continue;
        }
        let good = example_secret(p);
        let scheme = example_scheme(p, h);
        let headers = sign::request_headers(&scheme, good.as_bytes(), &body, now(), &id);
        let headers = if p == Provider::Twilio {
            // A JSON body: Twilio signs the URL with its bodySHA256 (see providers_more.rs).
            let q = format!(
                "bodySHA256={}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body))
            );
            let url = format!("{}?{q}", h["public_url"].as_str().unwrap());
            let sig = sign::twilio_signature(good.as_bytes(), &url, b"");
            let mut hs = replace(&headers, "x-twilio-signature", sig);
            hs.push(("x-test-query".into(), q));
            hs
        } else {
            headers
        };
        let url = match headers.iter().find(|(k, _)| k == "x-test-query") {
            Some((_, q)) => format!("{}?{q}", server.url(path)),
            None => server.url(path),
        };
        expect_200(&url, &headers, body.clone(), path).await;
        let lines = server.log_lines();
        let line = lines.last().unwrap();
        assert!(line.contains(&format!(" hook={path} ")), "{line}");
        if p != Provider::Netbox && p != Provider::Zoom {
            assert!(line.contains(&format!(" delivery_id={id} ")), "{line}");
        }
        // And any other secret is refused.
        let other = secret(p, 8);
        let headers = sign::request_headers(&scheme, other.as_bytes(), &body, now(), &id);
        expect_401(&url, &headers, body, path).await;
    }
    assert_eq!(server.log_lines().len(), hooks.len());
}

/// The scheme an example hook describes: the provider's, or for `hmac` the table's own keys.
fn example_scheme(p: Provider, h: &toml::Value) -> Scheme {
    if p == Provider::Twilio {
        let public_url = h["public_url"].as_str().expect("public_url").to_string();
        return Scheme::Twilio { public_url };
    }
    if p != Provider::Hmac {
        return Scheme::from_provider(p);
    }
    let key = |k: &str| h.get(k).and_then(|v| v.as_str());
    Scheme::Hmac {
        header: key("header").expect("header").to_ascii_lowercase(),
        algorithm: key("algorithm").unwrap_or("sha256").parse().unwrap(),
        encoding: key("encoding").unwrap_or("hex").parse().unwrap(),
        prefix: key("prefix").unwrap_or("").to_string(),
        delivery_id_header: key("delivery_id_header").map(str::to_ascii_lowercase),
        event_header: key("event_header").map(str::to_ascii_lowercase),
    }
}
