//! The providers of issue 17 end to end through the real binary: the common contract (valid → 200,
//! wrong key, tampered body, each missing header → 401, redelivery de-duplicated) for those with
//! a delivery id, the replay windows as each sender documents them, every handshake answered
//! byte for byte as the sender expects (and not logged), Twilio behind a proxy, and Standard
//! Webhooks `v1a`. HMACs come from the independent signer (`tests/common/sign.rs`), Ed25519
//! signatures from `ring` (`tests/common/ed25519.rs`), never from the crate's own `sign`.

use std::time::Duration;

use sha2::Digest;

use super::providers::{body_of, contract, expect_200, expect_401, replace, tampered, without};
use crate::common::*;

macro_rules! contract_tests {
    ($($name:ident: $p:expr,)*) => {$(
        #[tokio::test]
        async fn $name() {
            contract($p).await;
        }
    )*};
}

contract_tests! {
    gitea_contract: Provider::Gitea,
    bitbucket_contract: Provider::Bitbucket,
    pagerduty_contract: Provider::Pagerduty,
    linear_contract: Provider::Linear,
    twitch_contract: Provider::Twitch,
    discord_contract: Provider::Discord,
}

/// A raw answer: status, content type and body bytes, for handshakes that are not `{"result"}`.
async fn post_raw(url: &str, headers: &Headers, body: Vec<u8>, ct: &str) -> (u16, String, Vec<u8>) {
    let mut req = client().post(url).header("content-type", ct);
    for (k, v) in headers {
        req = req.header(k.as_str(), v);
    }
    let resp = req.body(body).send().await.expect("request");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, resp.bytes().await.unwrap().to_vec())
}

fn hmac256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    sign::mac(Algorithm::Sha256, key, parts)
}

// ---------------------------------------------------------------------------------------------
// Replay windows
// ---------------------------------------------------------------------------------------------

/// Twitch: 600 s by default (Twitch documents 10 minutes), applied to the signed header timestamp.
#[tokio::test]
async fn twitch_window_is_ten_minutes_by_default() {
    let p = Provider::Twitch;
    let s = secret(p, 1);
    let server = Server::start(&hook(p, "/twitch", std::slice::from_ref(&s), ""));
    let url = server.url("/twitch");
    for (skew, ok) in [(-660, false), (660, false), (-540, true), (540, true)] {
        let body = body_of(p, "");
        let h = signed(p, &s, &body, now() + skew, &new_id("m"));
        if ok {
            expect_200(&url, &h, body, &format!("{skew} s")).await;
        } else {
            expect_401(&url, &h, body, &format!("{skew} s")).await;
        }
    }
    assert_eq!(server.log_lines().len(), 2);
    assert!(server.wait_for_stderr("timestamp outside tolerance", Duration::from_secs(5)));
}

/// Linear: the body's signed `webhookTimestamp` (ms) within 60 s by default; the unsigned
/// `Linear-Timestamp` header plays no part.
#[tokio::test]
async fn linear_window_is_the_signed_body_stamp() {
    let p = Provider::Linear;
    let s = secret(p, 1);
    let server = Server::start(&hook(p, "/linear", std::slice::from_ref(&s), ""));
    let url = server.url("/linear");
    let stamped = |ms: i64| {
        format!(r#"{{"type":"Issue","action":"update","webhookTimestamp":{ms}}}"#).into_bytes()
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (skew_ms, ok) in [(-90_000, false), (90_000, false), (-30_000, true)] {
        let body = stamped(now_ms + skew_ms);
        let mut h = signed(p, &s, &body, now(), &new_id("d"));
        // A fresh unsigned header must not rescue an old body.
        h.push(("linear-timestamp".into(), now_ms.to_string()));
        if ok {
            expect_200(&url, &h, body, &format!("{skew_ms} ms")).await;
        } else {
            expect_401(&url, &h, body, &format!("{skew_ms} ms")).await;
        }
    }
    // Signed, but without the stamp: refused.
    let body = br#"{"type":"Issue"}"#.to_vec();
    let h = signed(p, &s, &body, now(), &new_id("d"));
    expect_401(&url, &h, body, "no webhookTimestamp").await;
    assert_eq!(server.log_lines().len(), 1);
    assert!(server.wait_for_stderr("webhookTimestamp", Duration::from_secs(5)));
}

// ---------------------------------------------------------------------------------------------
// Twitch handshakes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn twitch_callback_verification_and_revocation() {
    let p = Provider::Twitch;
    let s = secret(p, 1);
    let server = Server::start(&hook(p, "/twitch", std::slice::from_ref(&s), ""));
    let url = server.url("/twitch");

    // Twitch's documented verification body; answered 200 text/plain with the challenge, exactly.
    let challenge = "pogchamp-kappa-360noscope-vohiyo";
    let body = format!(
        r#"{{"challenge":"{challenge}","subscription":{{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow","version":"2"}}}}"#
    )
    .into_bytes();
    let mut h = signed(p, &s, &body, now(), &new_id("m"));
    h = replace(
        &h,
        "twitch-eventsub-message-type",
        "webhook_callback_verification".into(),
    );
    let (status, ctype, answer) = post_raw(&url, &h, body.clone(), "application/json").await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/plain");
    assert_eq!(answer, challenge.as_bytes());
    // Signed like any message: a wrong secret gets no challenge back.
    let bad = replace(
        &signed(p, &secret(p, 2), &body, now(), &new_id("m")),
        "twitch-eventsub-message-type",
        "webhook_callback_verification".into(),
    );
    expect_401(&url, &bad, body, "verification, wrong secret").await;
    assert!(server.log_lines().is_empty(), "a handshake is not an event");

    // Revocation: acknowledged and logged as event=revocation.
    let body = br#"{"subscription":{"id":"f1c2","status":"authorization_revoked","type":"channel.follow"}}"#.to_vec();
    let id = new_id("m");
    let h = replace(
        &signed(p, &s, &body, now(), &id),
        "twitch-eventsub-message-type",
        "revocation".into(),
    );
    expect_200(&url, &h, body, "revocation").await;
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(" event=revocation "), "{}", lines[0]);
    assert!(
        lines[0].contains(&format!(" delivery_id={id} ")),
        "{}",
        lines[0]
    );
    assert!(server.wait_for_stderr("revoked", Duration::from_secs(5)));
}

// ---------------------------------------------------------------------------------------------
// Zoom
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn zoom_events_window_and_url_validation() {
    let p = Provider::Zoom;
    let (a, b) = (secret(p, 1), secret(p, 2));
    let server = Server::start(&hook(p, "/zoom", &[a.clone(), b.clone()], ""));
    let url = server.url("/zoom");

    let body =
        br#"{"event":"meeting.started","event_ts":1,"payload":{"object":{"id":"1"}}}"#.to_vec();
    let h = signed(p, &a, &body, now(), "");
    expect_200(&url, &h, body.clone(), "valid").await;
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(" event=meeting.started "), "{}", lines[0]);
    assert!(
        !lines[0].contains("delivery_id="),
        "Zoom sends no id: {}",
        lines[0]
    );

    expect_401(
        &url,
        &signed(p, &secret(p, 3), &body, now(), ""),
        body.clone(),
        "wrong",
    )
    .await;
    expect_401(&url, &h, tampered(&body), "tampered").await;
    for name in ["x-zm-signature", "x-zm-request-timestamp"] {
        expect_401(&url, &without(&h, name), body.clone(), name).await;
    }
    let old = signed(p, &a, &body, now() - 600, "");
    expect_401(&url, &old, body.clone(), "10 minutes old, 300 s allowed").await;

    // endpoint.url_validation signed with the second secret: the answer is made with that one.
    let plain = "qgg8vlvZRS6UYooatFL8Aw";
    let body = format!(
        r#"{{"payload":{{"plainToken":"{plain}"}},"event_ts":1654503849680,"event":"endpoint.url_validation"}}"#
    )
    .into_bytes();
    let h = signed(p, &b, &body, now(), "");
    let (status, ctype, answer) = post_raw(&url, &h, body.clone(), "application/json").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(ctype, "application/json");
    let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    let expected = hex::encode(hmac256(b.as_bytes(), &[plain.as_bytes()]));
    assert_eq!(
        answer,
        serde_json::json!({ "plainToken": plain, "encryptedToken": expected })
    );
    expect_401(
        &url,
        &signed(p, &secret(p, 3), &body, now(), ""),
        body,
        "validation, wrong",
    )
    .await;
    assert_eq!(
        server.log_lines().len(),
        1,
        "the validation is not an event"
    );
}

// ---------------------------------------------------------------------------------------------
// Discord
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn discord_pings_per_endpoint_kind() {
    let key = ed25519::Signer::numbered(1);
    let keys = [key.public_hex()];
    let hooks = format!(
        "{}{}",
        hook(Provider::Discord, "/interactions", &keys, ""),
        hook(
            Provider::Discord,
            "/events",
            &keys,
            "discord_endpoint = \"webhook-events\""
        )
    );
    let server = Server::start(&hooks);

    // Interactions: PING (type 1) → 200 {"type":1}.
    let ping = br#"{"type":1,"id":"int_ping","application_id":"1"}"#.to_vec();
    let h = key.discord_headers(&ping, now());
    let (status, ctype, answer) = post_raw(
        &server.url("/interactions"),
        &h,
        ping.clone(),
        "application/json",
    )
    .await;
    assert_eq!((status, ctype.as_str()), (200, "application/json"));
    assert_eq!(answer, br#"{"type":1}"#);
    // Discord's probe: the same PING with a bad signature must get 401.
    let mut forged = h.clone();
    forged[0].1 = hex::encode([0u8; 64]);
    expect_401(&server.url("/interactions"), &forged, ping.clone(), "probe").await;
    let other = ed25519::Signer::numbered(2).discord_headers(&ping, now());
    expect_401(
        &server.url("/interactions"),
        &other,
        ping.clone(),
        "other key",
    )
    .await;

    // Webhook Events: PING (type 0) → 204, empty body.
    let ping0 = br#"{"version":1,"application_id":"1","type":0}"#.to_vec();
    let h = key.discord_headers(&ping0, now());
    let (status, _, answer) = post_raw(
        &server.url("/events"),
        &h,
        ping0.clone(),
        "application/json",
    )
    .await;
    assert_eq!(status, 204);
    assert!(answer.is_empty());
    expect_401(&server.url("/events"), &forged, ping0, "probe on events").await;
    assert!(server.log_lines().is_empty(), "PINGs are not events");

    // There, type 1 is a real event, logged with its event.type.
    let event = br#"{"version":1,"application_id":"1","type":1,"event":{"type":"APPLICATION_AUTHORIZED","timestamp":"2024-10-18T14:42:53.064834","data":{}}}"#.to_vec();
    let h = key.discord_headers(&event, now());
    expect_200(&server.url("/events"), &h, event, "webhook event").await;
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains(" event=APPLICATION_AUTHORIZED "),
        "{}",
        lines[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------------------------

/// A form body as Twilio posts an incoming SMS.
const TWILIO_FORM: &str = "AccountSid=AC0000000000000000000000000000000a&Body=hello+world+%26+more&From=%2B15005550006&MessageSid=SM1&To=%2B15005550001&NumMedia=0";

async fn twilio_post(url: &str, headers: &Headers, body: &[u8], ct: &str) -> u16 {
    let (status, _, _) = post_raw(url, headers, body.to_vec(), ct).await;
    status
}

/// Twilio signs the public URL (what the proxy exposes), never what the listener sees; the URL is
/// accepted with and without its default port, as twilio-python does.
#[tokio::test]
async fn twilio_form_and_json_behind_a_proxy() {
    let p = Provider::Twilio;
    let token = secret(p, 1);
    let hooks = format!(
        "{}{}",
        hook(p, "/twilio", std::slice::from_ref(&token), ""),
        hook(
            p,
            "/twilio-port",
            std::slice::from_ref(&token),
            "public_url = \"https://hooks.example.com:443/twilio-port\""
        )
    );
    let server = Server::start(&hooks);
    let url = server.url("/twilio");
    let form = "application/x-www-form-urlencoded";
    let body = TWILIO_FORM.as_bytes();
    let sig = |u: &str, b: &[u8]| {
        vec![
            (
                "x-twilio-signature".to_string(),
                sign::twilio_signature(token.as_bytes(), u, b),
            ),
            ("i-twilio-idempotency-token".to_string(), new_id("tw")),
        ]
    };

    // Form, signed over the public URL: 200, logged as sent with its idempotency token.
    let h = sig(TWILIO_PUBLIC_URL, body);
    assert_eq!(twilio_post(&url, &h, body, form).await, 200);
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains(&format!(" delivery_id={} ", h[1].1)),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("AccountSid=AC"), "{}", lines[0]);
    // The same again: a retry, acknowledged and not logged twice.
    assert_eq!(twilio_post(&url, &h, body, form).await, 200);
    assert_eq!(server.log_lines().len(), 1);
    // With the default port written out: the same URL to Twilio.
    let with_port = TWILIO_PUBLIC_URL.replace(".com/", ".com:443/");
    assert_eq!(
        twilio_post(&url, &sig(&with_port, body), body, form).await,
        200
    );
    // And the reverse: configured with :443, signed without.
    assert_eq!(
        twilio_post(
            &server.url("/twilio-port"),
            &sig("https://hooks.example.com/twilio-port", body),
            body,
            form
        )
        .await,
        200
    );
    // Refused: the URL the listener itself sees, a wrong token, a changed parameter, no header.
    assert_eq!(twilio_post(&url, &sig(&url, body), body, form).await, 401);
    let wrong = vec![(
        "x-twilio-signature".to_string(),
        sign::twilio_signature(secret(p, 2).as_bytes(), TWILIO_PUBLIC_URL, body),
    )];
    assert_eq!(twilio_post(&url, &wrong, body, form).await, 401);
    let changed = TWILIO_FORM.replace("hello", "jello");
    assert_eq!(twilio_post(&url, &h, changed.as_bytes(), form).await, 401);
    assert_eq!(twilio_post(&url, &Vec::new(), body, form).await, 401);
    let other_port = TWILIO_PUBLIC_URL.replace(".com/", ".com:8443/");
    assert_eq!(
        twilio_post(&url, &sig(&other_port, body), body, form).await,
        401
    );
    assert_eq!(server.log_lines().len(), 3);

    // JSON: the URL carries bodySHA256 and is signed alone; the body must match that hash.
    let json = br#"{"event":"message.delivered","sid":"SM1"}"#.to_vec();
    let q = format!("bodySHA256={}", hex::encode(sha2::Sha256::digest(&json)));
    let signed_url = format!("{TWILIO_PUBLIC_URL}?{q}");
    let h = sig(&signed_url, b"");
    let json_url = format!("{url}?{q}");
    assert_eq!(
        twilio_post(&json_url, &h, &json, "application/json").await,
        200
    );
    let mut other = json.clone();
    other[3] = b'E';
    assert_eq!(
        twilio_post(&json_url, &h, &other, "application/json").await,
        401
    );
    // Without the query the listener cannot know what was signed.
    assert_eq!(twilio_post(&url, &h, &json, "application/json").await, 401);
    assert_eq!(server.log_lines().len(), 4);
    assert!(server.wait_for_stderr("bodySHA256", Duration::from_secs(5)));
    assert!(!server.stderr().contains(&token), "no token in diagnostics");
}

/// twilio-python's own vectors (`tests/unit/test_request_validator.py`): auth token `12345`, URL
/// `https://mycompany.com/myapp.php?foo=1&bar=2`; the form of `setUp` gives
/// `RSOYDt4T1cUTdK1PDd93/VVr8B8=`, the same URL with `:443` `kvajT1Ptam85bY51eRf/AJRuM3w=`
/// (`test_validation_adds_port_on_https`), and the JSON body with its `bodySHA256`
/// `a9nBmqA0ju/hNViExpshrM61xv4=` (`test_validation_of_body_succeeds`). Here through the real
/// server, the URL being `public_url` plus the request's query; the independent signer agrees.
#[tokio::test]
async fn twilio_helper_library_vectors() {
    let hooks = "[[hooks]]\npath = \"/myapp.php\"\nprovider = \"twilio\"\nsecrets = [\"12345\"]\npublic_url = \"https://mycompany.com/myapp.php\"\n";
    let server = Server::start(hooks);
    let form_body = b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
    let uri = "https://mycompany.com/myapp.php?foo=1&bar=2";
    let url = format!("{}?foo=1&bar=2", server.url("/myapp.php"));
    let form = "application/x-www-form-urlencoded";
    let h = |sig: &str| vec![("x-twilio-signature".to_string(), sig.to_string())];
    assert_eq!(
        sign::twilio_signature(b"12345", uri, form_body),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    assert_eq!(
        twilio_post(&url, &h("RSOYDt4T1cUTdK1PDd93/VVr8B8="), form_body, form).await,
        200
    );
    assert_eq!(
        twilio_post(&url, &h("kvajT1Ptam85bY51eRf/AJRuM3w="), form_body, form).await,
        200
    );

    let json = br#"{"property": "value", "boolean": true}"#;
    let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    assert_eq!(hex::encode(sha2::Sha256::digest(json)), hash);
    let json_url = format!("{url}&bodySHA256={hash}");
    assert_eq!(
        sign::twilio_signature(b"12345", &format!("{uri}&bodySHA256={hash}"), b""),
        "a9nBmqA0ju/hNViExpshrM61xv4="
    );
    let sig = h("a9nBmqA0ju/hNViExpshrM61xv4=");
    assert_eq!(
        twilio_post(&json_url, &sig, json, "application/json").await,
        200
    );
    let changed = br#"{"property": "value", "boolean": false}"#;
    assert_eq!(
        twilio_post(&json_url, &sig, changed, "application/json").await,
        401
    );
    assert_eq!(server.log_lines().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Gitea form deliveries and Standard Webhooks v1a
// ---------------------------------------------------------------------------------------------

/// Gitea's "form" content type: the signature covers the JSON inside `payload=`, which is what is
/// verified and logged.
#[tokio::test]
async fn gitea_form_delivery_is_logged_as_its_json() {
    let p = Provider::Gitea;
    let s = secret(p, 1);
    let server = Server::start(&hook(p, "/gitea", std::slice::from_ref(&s), ""));
    let json = br#"{"ref":"refs/heads/main","after":"abc","n":1}"#;
    let form = format!(
        "payload={}",
        form_urlencoded::byte_serialize(json).collect::<String>()
    );
    let id = new_id("g");
    let h = vec![
        (
            "x-gitea-signature".to_string(),
            hex::encode(hmac256(s.as_bytes(), &[json])),
        ),
        ("x-gitea-delivery".to_string(), id.clone()),
        ("x-gitea-event".to_string(), "push".to_string()),
    ];
    let ct = "application/x-www-form-urlencoded";
    let (status, _, _) = post_raw(&server.url("/gitea"), &h, form.clone().into_bytes(), ct).await;
    assert_eq!(status, 200);
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        line_payload(&lines[0]),
        serde_json::from_slice::<serde_json::Value>(json).unwrap()
    );
    assert!(lines[0].contains(" event=push "), "{}", lines[0]);
    // The form bytes themselves are not what Gitea signed.
    let h2 = vec![(
        "x-gitea-signature".to_string(),
        hex::encode(hmac256(s.as_bytes(), &[form.as_bytes()])),
    )];
    let (status, _, _) = post_raw(&server.url("/gitea"), &h2, form.into_bytes(), ct).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn standard_webhooks_v1a_beside_v1() {
    let p = Provider::StandardWebhooks;
    let s = secret(p, 1);
    let key = ed25519::Signer::numbered(3);
    let server = Server::start(&hook(
        p,
        "/sw",
        std::slice::from_ref(&s),
        &format!("public_keys = [\"{}\"]", key.whpk()),
    ));
    let url = server.url("/sw");
    let body = br#"{"type":"user.created","data":{"n":1}}"#.to_vec();
    let sw = |id: &str, ts: i64, sig: String| {
        vec![
            ("webhook-id".to_string(), id.to_string()),
            ("webhook-timestamp".to_string(), ts.to_string()),
            ("webhook-signature".to_string(), sig),
        ]
    };
    // v1a alone.
    let id = new_id("msg");
    let t = now();
    expect_200(
        &url,
        &sw(&id, t, key.standard_webhooks_v1a(&id, t, &body)),
        body.clone(),
        "v1a",
    )
    .await;
    // A wrong v1 entry beside a right v1a one: any valid entry is enough.
    let id2 = new_id("msg");
    let both = format!(
        "v1,{} {}",
        sign::b64(&[7u8; 32]),
        key.standard_webhooks_v1a(&id2, t, &body)
    );
    expect_200(&url, &sw(&id2, t, both), body.clone(), "v1 + v1a").await;
    // v1 (HMAC) still works on the same hook.
    let id3 = new_id("msg");
    expect_200(&url, &signed(p, &s, &body, t, &id3), body.clone(), "v1").await;
    // Refused: another key, a tampered body, outside the window.
    let id4 = new_id("msg");
    let other = ed25519::Signer::numbered(4).standard_webhooks_v1a(&id4, t, &body);
    expect_401(&url, &sw(&id4, t, other), body.clone(), "other key").await;
    let good = key.standard_webhooks_v1a(&id4, t, &body);
    expect_401(&url, &sw(&id4, t, good), tampered(&body), "tampered").await;
    let old = t - 600;
    let stale = key.standard_webhooks_v1a(&id4, old, &body);
    expect_401(&url, &sw(&id4, old, stale), body.clone(), "10 minutes old").await;
    // Redelivery of the first message: a duplicate.
    let again = key.standard_webhooks_v1a(&id, t, &body);
    let json = expect_200(&url, &sw(&id, t, again), body, "again").await;
    assert_eq!(json["duplicate"], true);
    assert_eq!(server.log_lines().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Configuration refusals that protect a hook
// ---------------------------------------------------------------------------------------------

fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(bin())
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn check_config_refuses_what_would_leave_a_hook_open_or_broken() {
    let h = |body: &str| format!("[[hooks]]\npath = \"/x\"\n{body}\n");
    let weak = "0".repeat(64); // the identity point: small order
    for (text, needle) in [
        (h("provider = \"twilio\"\nsecrets = [\"t\"]"), "public_url"),
        (
            h("provider = \"twilio\"\nsecrets = [\"t\"]\npublic_url = \"https://h/x?a=1\""),
            "public_url",
        ),
        (h("provider = \"discord\"\ndiscord_endpoint = \"interactions\""), "public_keys"),
        (
            h(&format!("provider = \"discord\"\npublic_keys = [\"{}\"]", ed25519::Signer::numbered(1).public_hex())),
            "discord_endpoint",
        ),
        (
            h(&format!("provider = \"discord\"\ndiscord_endpoint = \"interactions\"\npublic_keys = [\"{weak}\"]")),
            "small-order",
        ),
        (
            h(&format!("provider = \"discord\"\ndiscord_endpoint = \"interactions\"\nsecrets = [\"s\"]\npublic_keys = [\"{}\"]", ed25519::Signer::numbered(1).public_hex())),
            "secrets",
        ),
        (h("provider = \"github\"\nsecrets = [\"s\"]\npublic_keys = [\"whpk_AAAA\"]"), "public_keys"),
        (h("provider = \"github\"\nsecrets = [\"s\"]\npublic_url = \"https://h/x\""), "public_url"),
        (h("provider = \"standard-webhooks\"\npublic_keys = [\"whsk_AAAA\"]"), "whsk_"),
        (h("provider = \"pagerduty\"\nsecrets = [\"s\"]\ntolerance_secs = 5"), "tolerance_secs"),
    ] {
        let (ok, out) = check_config(&text);
        assert!(!ok, "{text}: accepted:\n{out}");
        assert!(out.contains(needle), "{text}: {out}");
    }
    // Loaded: Discord with a key; Standard Webhooks with public keys only.
    let key = ed25519::Signer::numbered(1);
    for text in [
        h(&format!(
            "provider = \"discord\"\ndiscord_endpoint = \"webhook-events\"\npublic_keys = [\"{}\"]",
            key.public_hex()
        )),
        h(&format!(
            "provider = \"standard-webhooks\"\npublic_keys = [\"{}\"]",
            key.whpk()
        )),
    ] {
        let (ok, out) = check_config(&text);
        assert!(ok, "{text}: {out}");
    }
}

/// Discord documents no replay window, so none applies by default; a hook that sets
/// `tolerance_secs` refuses an `X-Signature-Timestamp` outside it.
#[tokio::test]
async fn discord_window_only_when_configured() {
    let p = Provider::Discord;
    let keys = [secret(p, 1)];
    let hooks = format!(
        "{}{}",
        hook(p, "/open", &keys, ""),
        hook(p, "/windowed", &keys, "tolerance_secs = 60")
    );
    let server = Server::start(&hooks);
    let old = now() - 3600;
    let body = body_of(p, &new_id("int"));
    let h = signed(p, &keys[0], &body, old, "");
    expect_200(&server.url("/open"), &h, body.clone(), "no window").await;
    let body = body_of(p, &new_id("int"));
    let h = signed(p, &keys[0], &body, old, "");
    expect_401(
        &server.url("/windowed"),
        &h,
        body.clone(),
        "an hour old, 60 s",
    )
    .await;
    let h = signed(p, &keys[0], &body, now(), "");
    expect_200(&server.url("/windowed"), &h, body, "fresh").await;
    assert_eq!(server.log_lines().len(), 2);
    assert!(server.wait_for_stderr("timestamp outside tolerance", Duration::from_secs(5)));
}
