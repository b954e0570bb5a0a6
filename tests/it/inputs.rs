//! Inputs the operator (or a stranger) hands the binary: keys that are the empty key in disguise,
//! values `sign` would print, and the URLs `healthcheck` is pointed at.

use std::process::Command;
use std::time::Duration;

use crate::common::*;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("WEBHOOK_LISTENER_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config_with(dir: &std::path::Path, hooks: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, format!("[log]\nfile = \"events.log\"\n{hooks}")).unwrap();
    path
}

/// `whsec_AAAA` and a one-NUL-byte file verify exactly like the empty key: refused at load, naming
/// the hook and the reference, never the value.
#[test]
fn all_zero_keys_are_refused_like_empty_ones() {
    let dir = tempfile::tempdir().unwrap();
    let nul = dir.path().join("nul-secret");
    std::fs::write(&nul, b"\0").unwrap();
    let cases = [
        (
            "[[hooks]]\npath = \"/sw\"\nprovider = \"standard-webhooks\"\nsecrets = [\"whsec_AAAA\"]\n".to_string(),
            "/sw",
            "(literal)",
        ),
        (
            format!(
                "[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\nsecrets = [\"file:{}\"]\n",
                nul.display()
            ),
            "/nb",
            "file:",
        ),
    ];
    for (hooks, path, reference) in cases {
        let config = config_with(dir.path(), &hooks);
        let (ok, _, err) = run(&["check-config", config.to_str().unwrap()]);
        assert!(!ok, "all-zero key accepted by check-config: {hooks}");
        assert!(err.contains(path) && err.contains(reference), "{err}");
        assert!(err.contains("all zero"), "{err}");
        assert!(!err.contains("AAAA"), "secret value in the message: {err}");
        // And the server refuses to start with it.
        let (ok, _, err) = run(&["--config", config.to_str().unwrap()]);
        assert!(!ok && err.contains("all zero"), "{err}");
    }
}

#[test]
fn short_keys_are_warned_about_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = "[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\nsecrets = [\"env:SHORT_NB_SECRET\", \"0123456789abcdef\"]\n";
    let config = config_with(dir.path(), hooks);
    let out = Command::new(bin())
        .args(["check-config", config.to_str().unwrap()])
        .env("SHORT_NB_SECRET", "hunter2")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "only the 7-byte key: {stdout}");
    assert!(warnings[0].contains("/nb") && warnings[0].contains("env:SHORT_NB_SECRET"));
    assert!(!stdout.contains("hunter2"), "{stdout}");

    let server = Server::start_with(Options {
        hooks,
        env: &[("SHORT_NB_SECRET", "hunter2")],
        ..Default::default()
    });
    assert!(server.wait_for_stderr("shorter than 16 bytes", Duration::from_secs(5)));
    assert!(!server.stderr().contains("hunter2"));
}

/// `sign`'s lines are fed to curl as headers: a CR/LF in any value would inject headers of its own.
#[test]
fn sign_refuses_control_characters_in_what_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, b"{}").unwrap();
    let body = body.to_str().unwrap();
    let sw = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "--provider",
            "standard-webhooks",
            "--secret",
            sw,
            "--id",
            "msg_1\r\nX-Injected: 1",
        ],
        vec![
            "--provider",
            "github",
            "--secret",
            "s3cret-s3cret-s3",
            "--id",
            "a\u{85}b",
        ],
        vec![
            "--provider",
            "standard-webhooks",
            "--secret",
            sw,
            "--id",
            "a\u{2028}b",
        ],
        vec![
            "--provider",
            "standard-webhooks",
            "--secret",
            sw,
            "--id",
            "a\u{7f}b",
        ],
        vec![
            "--provider",
            "hmac",
            "--secret",
            "s3cret-s3cret-s3",
            "--header",
            "X-Sig\nX-Injected",
            "--algorithm",
            "sha256",
            "--encoding",
            "hex",
        ],
        vec![
            "--provider",
            "hmac",
            "--secret",
            "s3cret-s3cret-s3",
            "--header",
            "X-Sig",
            "--algorithm",
            "sha256",
            "--encoding",
            "hex",
            "--prefix",
            "sha256=\u{1b}[2J",
        ],
    ];
    for mut args in cases {
        args.insert(0, "sign");
        args.push(body);
        let (ok, out, err) = run(&args);
        assert!(!ok, "accepted {args:?}: {out}");
        assert!(out.is_empty(), "printed something: {out:?}");
        assert!(err.contains("control character"), "{err}");
    }
    // The same without the control character still works.
    let (ok, out, err) = run(&[
        "sign",
        "--provider",
        "standard-webhooks",
        "--secret",
        sw,
        "--id",
        "msg_1",
        body,
    ]);
    assert!(ok && out.contains("webhook-id: msg_1"), "{out}{err}");
}

#[test]
fn healthcheck_reaches_an_ipv6_listener() {
    let server = Server::start_with(Options {
        listen: Some("[::1]:0"),
        hooks: &netbox_hook("/webhook/"),
        ..Default::default()
    });
    assert!(server.addr.is_ipv6(), "{}", server.addr);
    let url = format!("http://{}/healthz", server.addr);
    assert!(url.starts_with("http://[::1]:"), "{url}");
    let (ok, out, err) = run(&["healthcheck", "--timeout", "5", "--url", &url]);
    assert!(ok, "{url}: {err}");
    assert!(out.contains("ok"), "{out}");
}

/// A server that answers 200 and then streams a body forever: healthcheck must give up in time.
#[test]
fn healthcheck_bounds_an_endless_body() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
        while s.write_all(chunk.as_bytes()).is_ok() {}
    });
    let started = std::time::Instant::now();
    let (ok, out, err) = run(&[
        "healthcheck",
        "--timeout",
        "3",
        "--url",
        &format!("http://{addr}/healthz"),
    ]);
    assert!(!ok, "an endless body was accepted");
    assert!(err.contains("length limit"), "{err}");
    assert!(out.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "did not stop within its timeout"
    );
}
