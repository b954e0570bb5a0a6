//! Issue 13: refusals that are usually an operator's mistake say so in the diagnostics, and only
//! there (hook paths and config are not for strangers).

use std::time::Duration;

use crate::common::*;

const T: Duration = Duration::from_secs(5);

/// The diagnostic line of the request refused with `status` for `path`.
fn refusal(server: &Server, path: &str, status: u16) -> String {
    let needle = format!("path=\"{path}\"");
    let status = format!("status={status}");
    assert!(server.wait_for_stderr(&needle, T), "{}", server.stderr());
    server
        .stderr()
        .lines()
        .find(|l| l.contains("request refused") && l.contains(&needle) && l.contains(&status))
        .unwrap_or_else(|| panic!("no refusal of {path}: {}", server.stderr()))
        .to_string()
}

async fn post_raw(url: &str, body: &[u8]) -> (u16, String) {
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), body);
    let resp = client()
        .post(url)
        .header("content-type", "application/json")
        .header("x-hook-signature", sig)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_404_one_slash_away_from_a_hook_names_it_in_the_diagnostic_only() {
    let server = Server::start(&format!(
        "{}{}",
        netbox_hook("/webhook/"),
        netbox_hook("/bare")
    ));
    for (sent, hook) in [("/webhook", "/webhook/"), ("/bare/", "/bare")] {
        let (status, body) = post_raw(&server.url(sent), &netbox_body("x")).await;
        assert_eq!(status, 404);
        assert!(
            !body.contains(hook.trim_matches('/')),
            "the response names no hook: {body}"
        );
        let line = refusal(&server, sent, 404);
        assert!(
            line.contains(&format!("hint=\"a hook is configured at {hook};")),
            "{line}"
        );
    }
    let (status, _) = post_raw(&server.url("/elsewhere"), b"{}").await;
    assert_eq!(status, 404);
    let line = refusal(&server, "/elsewhere", 404);
    assert!(
        !line.contains("hint="),
        "no hint for an unrelated path: {line}"
    );
}

#[tokio::test]
async fn a_netbox_custom_template_body_gets_the_payload_json_hint() {
    let server = Server::start(&netbox_hook("/nb"));
    // What a NetBox webhook with a body template sends: the operator's own JSON.
    let custom = br#"{"text": "dcim.site created by admin", "id": 1}"#;
    let (status, body) = post_raw(&server.url("/nb"), custom).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        !body.contains("payload"),
        "the response gives no config advice: {body}"
    );
    let line = refusal(&server, "/nb", 422);
    assert!(
        line.contains("custom body template")
            && line.contains(r#"set payload = \"json\" on the hook at /nb"#),
        "{line}"
    );
    // A NetBox body with a bad field is a different mistake: no template hint.
    let bad = String::from_utf8(netbox_body("not-a-uuid")).unwrap();
    let (status, _) = post_raw(&server.url("/nb"), bad.as_bytes()).await;
    assert_eq!(status, 422);
    assert!(server.wait_for_stderr("request_id", T));
    let lines: Vec<String> = server
        .stderr()
        .lines()
        .filter(|l| l.contains("status=422"))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(!lines[1].contains("hint="), "{}", lines[1]);
}
