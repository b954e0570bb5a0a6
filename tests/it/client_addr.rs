//! The client address behind a trusted proxy: exactly one forwarding header is read, and a chain
//! that cannot be parsed makes the client unknown, never a guess from the other header.

use std::time::Duration;

use reqwest::header::HeaderValue;

use crate::common::*;

const PROXY: &str = "trusted_proxies = [\"127.0.0.1/32\"]";

fn unsigned_hook(allow_ips: &str) -> String {
    format!(
        "[[hooks]]\npath = \"/webhook/\"\nprovider = \"netbox\"\nallow_unsigned = true\n{allow_ips}\n"
    )
}

fn server(top: &str, log: &str, allow_ips: &str) -> Server {
    Server::start_with(Options {
        top,
        log,
        hooks: &unsigned_hook(allow_ips),
        ..Default::default()
    })
}

/// Posts an unsigned NetBox body with raw forwarding header bytes.
async fn post_with(server: &Server, headers: &[(&str, &[u8])]) -> u16 {
    let mut req = client()
        .post(server.url("/webhook/"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, HeaderValue::from_bytes(value).unwrap());
    }
    let body = netbox_body(&uuid::Uuid::new_v4().to_string());
    req.body(body).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn unparseable_xff_does_not_fall_back_to_a_client_written_forwarded() {
    let server = server(PROXY, "", "allow_ips = [\"192.0.2.0/24\"]");
    let status = post_with(
        &server,
        &[
            ("x-forwarded-for", b"\xff"),
            ("forwarded", b"for=192.0.2.10"),
        ],
    )
    .await;
    assert_eq!(status, 403, "forged Forwarded believed");
    assert!(server.wait_for_stderr(
        "unparseable forwarding header from trusted proxy",
        Duration::from_secs(5)
    ));
    assert!(server.log_lines().is_empty(), "{:?}", server.log_lines());

    let status = post_with(&server, &[("x-forwarded-for", b"192.0.2.10")]).await;
    assert_eq!(status, 200);
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(" client=192.0.2.10 "), "{}", lines[0]);
}

#[tokio::test]
async fn forwarded_setting_ignores_x_forwarded_for() {
    let top = format!("{PROXY}\nclient_ip_header = \"forwarded\"");
    let server = server(&top, "", "allow_ips = [\"192.0.2.0/24\"]");
    // Only XFF: the client is the proxy itself, which is not allowed.
    let status = post_with(&server, &[("x-forwarded-for", b"192.0.2.10")]).await;
    assert_eq!(
        status, 403,
        "X-Forwarded-For read although Forwarded is configured"
    );
    let status = post_with(
        &server,
        &[
            ("x-forwarded-for", b"\xff"),
            ("forwarded", b"for=192.0.2.10"),
        ],
    )
    .await;
    assert_eq!(status, 200, "garbage in the unread header must not matter");
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(" client=192.0.2.10 "), "{}", lines[0]);
}

#[tokio::test]
async fn unknown_client_is_logged_as_unknown() {
    for (log, want) in [
        ("", " client=unknown "),
        ("format = \"json\"", "\"client\":\"unknown\""),
    ] {
        let server = server(PROXY, log, "");
        let status = post_with(
            &server,
            &[
                ("x-forwarded-for", b"192.0.2.1,,192.0.2.2"),
                ("forwarded", b"for=192.0.2.10"),
            ],
        )
        .await;
        assert_eq!(status, 200);
        let lines = server.log_lines();
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains(want), "{}", lines[0]);
        assert!(
            !lines[0].contains("192.0.2."),
            "a guessed address: {}",
            lines[0]
        );
    }
}
