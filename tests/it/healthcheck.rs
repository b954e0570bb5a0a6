//! Issue 13: `healthcheck` tells the truth. It asks the address the server would listen on (from
//! `--url`, `--listen` or the server's `--config`), and exits non-zero when nothing answers, when
//! the answer is not webhook-listener's, and when `/healthz` says degraded.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

use crate::common::*;

/// Runs `webhook-listener healthcheck ARGS` with `env`; (success, stdout, stderr).
fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(bin());
    cmd.arg("healthcheck")
        .args(args)
        .env_remove("WEBHOOK_LISTENER_CONFIG")
        .env_remove("WEBHOOK_LISTENER_LISTEN");
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

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn nothing_listening_is_unhealthy_whichever_way_the_address_is_given() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("listen = \"0.0.0.0:{port}\"\n")).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("http://127.0.0.1:{port}/healthz");
    let config_arg = config.to_str().unwrap();
    for (args, env) in [
        (vec!["--listen", &listen], vec![]),
        (vec!["--config", config_arg], vec![]),
        (vec!["--url", &url], vec![]),
        (vec![], vec![("WEBHOOK_LISTENER_LISTEN", listen.as_str())]),
    ] {
        let (ok, out, err) = healthcheck(&args, &env);
        assert!(!ok, "{args:?} {env:?}: nothing listens on {port}: {out}");
        assert!(
            err.contains(&port.to_string()) && err.contains("refused"),
            "{args:?}: names the address it asked and why: {err}"
        );
    }
}

#[test]
fn a_healthy_server_is_found_from_its_config_listen_and_url() {
    let server = Server::start(&netbox_hook("/webhook/"));
    let port = server.addr.port();
    // The server's config as an operator would write it: every interface, asked on loopback.
    let config = server.dir.path().join("as-deployed.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"0.0.0.0:{port}\"\n{}",
            netbox_hook("/webhook/").replace(NETBOX_SECRET, "env:UNSET_IN_HEALTHCHECK")
        ),
    )
    .unwrap();
    let listen = server.addr.to_string();
    let url = server.url("/healthz");
    let config_arg = config.to_str().unwrap();
    for (args, env) in [
        (vec!["--config", config_arg], vec![]),
        (vec![], vec![("WEBHOOK_LISTENER_CONFIG", config_arg)]),
        (vec!["--listen", &listen], vec![]),
        // --url wins over the server's own environment variables.
        (
            vec!["--url", &url],
            vec![("WEBHOOK_LISTENER_LISTEN", "127.0.0.1:1")],
        ),
    ] {
        let (ok, out, err) = healthcheck(&args, &env);
        assert!(ok, "{args:?} {env:?}: {err}");
        let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(json["result"], "ok", "{out}");
        assert_eq!(json["service"], "webhook-listener", "{out}");
    }
}

#[tokio::test]
async fn a_degraded_event_log_makes_healthcheck_fail() {
    let server = Server::netbox("", "");
    assert_eq!(
        netbox_status(
            &server.url("/webhook/"),
            "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a11"
        )
        .await,
        200
    );
    let (ok, _, err) = healthcheck(&["--url", &server.url("/healthz")], &[]);
    assert!(ok, "healthy before: {err}");
    // The log path becomes a FIFO and the reopen on SIGHUP refuses it (tests/it/writer_attacks.rs).
    std::fs::remove_file(&server.log_path).unwrap();
    nix::unistd::mkfifo(&server.log_path, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    server.signal(Signal::SIGHUP);
    assert!(server.wait_for_stderr("config reloaded", Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = health(&server).await;
        if h["result"] == "degraded" {
            break;
        }
        assert!(Instant::now() < deadline, "never degraded: {h}");
        // A request makes the writer meet the FIFO if the reopen alone did not.
        let _ = netbox_status(
            &server.url("/webhook/"),
            "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a12",
        )
        .await;
    }
    let (ok, out, err) = healthcheck(&["--url", &server.url("/healthz")], &[]);
    assert!(!ok, "degraded must not be healthy: {out}");
    // What is failing; the error itself (a path) is in the server's diagnostics, not public.
    assert!(
        err.contains("degraded") && err.contains("event_log") && err.contains("failing"),
        "says why: {err}"
    );
    assert!(
        !err.contains("FIFO") && !err.contains("events.log"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
}

/// Something else on the port that answers 200 with a plausible body is not our server.
#[test]
fn an_answer_that_is_not_ours_is_unhealthy() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = [
        r#"{"result":"ok"}"#,
        r#"{"result":"ok","event_log":"ok"}"#,
        "<html>ok</html>",
    ];
    std::thread::spawn(move || {
        for body in bodies {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    for body in bodies {
        let (ok, out, err) = healthcheck(&["--listen", &addr.to_string()], &[]);
        assert!(!ok, "{body} was taken for ours: {out}");
        assert!(err.contains("not webhook-listener's"), "{err}");
    }
}

#[test]
fn an_ipv6_server_is_found_from_a_config_on_every_interface() {
    let server = Server::start_with(Options {
        listen: Some("[::1]:0"),
        hooks: &netbox_hook("/webhook/"),
        ..Default::default()
    });
    let deployed = server.dir.path().join("deployed.toml");
    std::fs::write(
        &deployed,
        format!("listen = \"[::]:{}\"\n", server.addr.port()),
    )
    .unwrap();
    let (ok, out, err) = healthcheck(&["--config", deployed.to_str().unwrap()], &[]);
    assert!(ok, "[::] is asked on [::1]: {err}");
    assert!(out.contains("\"ok\""), "{out}");
    let url = format!("http://[::1]:{}/healthz", server.addr.port());
    let (ok, _, err) = healthcheck(&["--url", &url], &[]);
    assert!(ok, "{url}: {err}");
}

/// Serving flags belong to serving: given to another subcommand they are refused, not ignored.
#[test]
fn serving_flags_before_another_subcommand_are_refused() {
    let (ok, _, err) = {
        let out = Command::new(bin())
            .args(["--listen", "127.0.0.1:8005", "healthcheck"])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::new(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok);
    assert!(err.contains("cannot be used with"), "{err}");
    let out = Command::new(bin())
        .args(["sign", "--listen", "127.0.0.1:1", "--provider", "netbox"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--listen"),
        "sign has no --listen"
    );
}
