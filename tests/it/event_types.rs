//! The event type of every provider in both log formats, through the real binary: what an operator
//! greps for to tell a `push` from a `ping` (issue 13), and the one value sinks route on.

use crate::common::*;

/// One delivery per provider: the body, extra headers beside the signature, and the event type
/// the log must show. NetBox logs its own `event` and `model` fields instead.
/// A provider, the body, extra headers beside the signature, the event type expected.
type Delivery = (
    Provider,
    Vec<u8>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// The providers whose test hook [`hooks`] configures (Twilio sends no event type).
const PROVIDERS: [Provider; 14] = [
    Provider::Github,
    Provider::Gitlab,
    Provider::Shopify,
    Provider::Stripe,
    Provider::StandardWebhooks,
    Provider::Slack,
    Provider::Hmac,
    Provider::Gitea,
    Provider::Bitbucket,
    Provider::Pagerduty,
    Provider::Linear,
    Provider::Twitch,
    Provider::Zoom,
    Provider::Discord,
];

fn deliveries() -> Vec<Delivery> {
    vec![
        (
            Provider::Github,
            br#"{"action":"opened","number":7,"pull_request":{"action":"inner"}}"#.to_vec(),
            vec![("x-github-event", "pull_request")],
            "pull_request.opened",
        ),
        (
            Provider::Github,
            br#"{"ref":"refs/heads/main"}"#.to_vec(),
            vec![("x-github-event", "push")],
            "push",
        ),
        (
            Provider::Gitlab,
            br#"{"object_kind":"push"}"#.to_vec(),
            vec![("x-gitlab-event", "Push Hook")],
            "Push Hook",
        ),
        (
            Provider::Shopify,
            br#"{"id":1}"#.to_vec(),
            vec![("x-shopify-topic", "orders/create")],
            "orders/create",
        ),
        (
            Provider::Stripe,
            br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#.to_vec(),
            vec![],
            "invoice.paid",
        ),
        (
            Provider::StandardWebhooks,
            br#"{"type":"user.created","data":{"type":"inner"}}"#.to_vec(),
            vec![],
            "user.created",
        ),
        (
            Provider::Slack,
            br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"app_mention"}}"#
                .to_vec(),
            vec![],
            "app_mention",
        ),
        (
            Provider::Hmac,
            br#"{"n":1}"#.to_vec(),
            vec![("x-event-type", "build.finished")],
            "build.finished",
        ),
        // Forgejo alone: its own header family.
        (
            Provider::Gitea,
            br#"{"ref":"refs/heads/main"}"#.to_vec(),
            vec![("x-forgejo-event", "push")],
            "push",
        ),
        (
            Provider::Bitbucket,
            br#"{"push":{"changes":[]}}"#.to_vec(),
            vec![("x-event-key", "repo:push")],
            "repo:push",
        ),
        (
            Provider::Pagerduty,
            br#"{"event":{"id":"01PD","event_type":"incident.triggered"}}"#.to_vec(),
            vec![],
            "incident.triggered",
        ),
        (
            Provider::Linear,
            format!(
                r#"{{"type":"Issue","action":"create","webhookTimestamp":{}}}"#,
                chrono::Utc::now().timestamp_millis()
            )
            .into_bytes(),
            vec![("linear-event", "Issue")],
            "Issue",
        ),
        (
            Provider::Twitch,
            br#"{"subscription":{"type":"channel.follow"},"event":{"user_id":"1"}}"#.to_vec(),
            vec![("twitch-eventsub-subscription-type", "channel.follow")],
            "channel.follow",
        ),
        (
            Provider::Zoom,
            br#"{"event":"meeting.started","payload":{"object":{"id":"1"}}}"#.to_vec(),
            vec![],
            "meeting.started",
        ),
        (
            Provider::Discord,
            br#"{"type":3,"id":"int_7","data":{"custom_id":"b"}}"#.to_vec(),
            vec![],
            "MESSAGE_COMPONENT",
        ),
        // A header value that would break `key=value` parsing if written raw.
        (
            Provider::Hmac,
            br#"{"n":2}"#.to_vec(),
            vec![("x-event-type", "a b=\"c\" client=192.0.2.1")],
            "a b=\"c\" client=192.0.2.1",
        ),
    ]
}

fn hooks() -> String {
    let mut hooks = String::new();
    for p in PROVIDERS {
        hooks += &hook(p, &format!("/{}", p.name()), &[secret(p, 1)], "");
    }
    hooks += &netbox_hook("/netbox");
    hooks
}

/// Posts every delivery (and one NetBox event) to `server`; returns the expected event per path
/// in the order sent.
async fn send_all(server: &Server) -> Vec<(String, &'static str)> {
    let mut expected = Vec::new();
    for (p, body, extra, event) in deliveries() {
        let path = format!("/{}", p.name());
        let mut headers = signed(p, &secret(p, 1), &body, now(), &new_id("d"));
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let (status, answer) = post(&server.url(&path), &headers, body).await;
        assert_eq!(status, 200, "{path} {event}: {answer}");
        expected.push((path, event));
    }
    let (status, _) = post_netbox(&server.url("/netbox"), &netbox_body(&uuid())).await;
    assert_eq!(status, 200);
    expected
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn every_provider_logs_its_event_type_in_json() {
    let server = Server::start_with(Options {
        log: "format = \"json\"",
        hooks: &hooks(),
        ..Default::default()
    });
    let expected = send_all(&server).await;
    let lines = server.log_lines();
    assert_eq!(lines.len(), expected.len() + 1, "{lines:#?}");
    for (line, (path, event)) in lines.iter().zip(&expected) {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(v["hook"], *path, "{line}");
        assert_eq!(v["event"], *event, "{line}");
    }
    let netbox: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(netbox["hook"], "/netbox");
    assert_eq!(
        netbox["event"], "created",
        "NetBox keeps its own event field"
    );
    assert!(netbox["model"].is_string(), "{netbox}");
}

#[tokio::test]
async fn every_provider_logs_its_event_type_in_text() {
    let server = Server::start(&hooks());
    let expected = send_all(&server).await;
    let lines = server.log_lines();
    assert_eq!(lines.len(), expected.len() + 1, "{lines:#?}");
    for (line, (path, event)) in lines.iter().zip(&expected) {
        let fields = text_fields(line);
        assert_eq!(field(&fields, "hook"), Some(path.clone()), "{line}");
        assert_eq!(field(&fields, "event"), Some(event.to_string()), "{line}");
        // The forged `client=` inside the event type stays inside its quoted value.
        assert_eq!(field(&fields, "client"), Some("127.0.0.1".into()), "{line}");
    }
    let netbox = text_fields(lines.last().unwrap());
    assert_eq!(field(&netbox, "event"), Some("created".into()));
}

fn field(fields: &[(String, String)], key: &str) -> Option<String> {
    let mut found = fields.iter().filter(|(k, _)| k == key);
    let first = found.next().map(|(_, v)| v.clone());
    assert!(found.next().is_none(), "{key} appears twice in {fields:?}");
    first
}

/// The `key=value` fields of a text line, after the timestamp and before the payload; a quoted
/// value is a JSON string.
fn text_fields(line: &str) -> Vec<(String, String)> {
    let mut rest = &line[line.find(' ').expect("timestamp then fields")..];
    let mut fields = Vec::new();
    while let Some(r) = rest.strip_prefix(' ') {
        rest = r;
        let Some(eq) = rest
            .find('=')
            .filter(|&eq| !rest[..eq].contains([' ', '"', '{']))
        else {
            break;
        };
        let key = rest[..eq].to_string();
        rest = &rest[eq + 1..];
        let value = if rest.starts_with('"') {
            let mut it = serde_json::Deserializer::from_str(rest).into_iter::<String>();
            let v = it
                .next()
                .expect("a value")
                .expect("quoted values are JSON strings");
            rest = &rest[it.byte_offset()..];
            v
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            let v = rest[..end].to_string();
            rest = &rest[end..];
            v
        };
        fields.push((key, value));
    }
    fields
}
