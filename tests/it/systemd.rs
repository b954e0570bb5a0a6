//! Issue 13, deployment without containers: systemd socket activation (a listening socket passed
//! as fd 3 with `LISTEN_FDS`/`LISTEN_PID`) and the unit files in `contrib/systemd/`.

use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// The server started as systemd starts it: the socket at fd 3, `LISTEN_FDS=1`, and `LISTEN_PID`
/// the server's own pid (set by a shell that then execs the binary, so the pid is the same).
fn socket_activated(listener: &std::net::TcpListener, config: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("events.log");
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "{config}\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nfile = {:?}\n{}",
            log_path.display().to_string(),
            netbox_hook("/webhook/")
        ),
    )
    .unwrap();
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", bin(), "--config"])
        .arg(&config_path)
        .env("LISTEN_FDS", "1")
        .env_remove("WEBHOOK_LISTENER_LISTEN")
        .current_dir(dir.path());
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                // Already in place: just let it survive exec (std opens sockets close-on-exec).
                if nix::libc::fcntl(3, nix::libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if nix::libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Server::spawn(cmd, dir, log_path, config_path)
}

#[tokio::test]
async fn a_socket_passed_by_systemd_is_served_instead_of_listen() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // `listen` names a port that is taken: binding it would fail, so a 200 proves the passed
    // socket is the one served.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = socket_activated(
        &listener,
        &format!("listen = \"{}\"", taken.local_addr().unwrap()),
    );
    assert_eq!(
        server.addr,
        listener.local_addr().unwrap(),
        "{}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("LISTEN_FDS"),
        "says where its socket came from: {}",
        server.stderr()
    );
    let request_id = "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a21";
    let (status, body) = post_netbox(&server.url("/webhook/"), &netbox_body(request_id)).await;
    assert_eq!(status, 200, "{body}");
    let lines = server.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(request_id), "{}", lines[0]);
}

/// `systemd-analyze verify` on the unit files as shipped, with only `ExecStart`'s binary pointed
/// at the one built here (verify insists that it exists).
#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("skipped: systemd-analyze is not installed");
        return;
    }
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for name in ["webhook-listener.service", "webhook-listener.socket"] {
        let text = std::fs::read_to_string(contrib.join(name)).unwrap();
        let text = text.replace("/usr/local/bin/webhook-listener", bin());
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.trim().is_empty(), "warnings: {err}");
}

/// The config shipped for the unit is valid once its credential exists.
#[test]
fn the_shipped_systemd_config_checks() {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let text = std::fs::read_to_string(contrib.join("webhook-listener.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("webhook-secret");
    std::fs::write(&secret, "a-long-enough-netbox-secret\n").unwrap();
    let credential = "/run/credentials/webhook-listener.service/webhook-secret";
    assert!(text.contains(credential));
    // The unit's paths, as the unit creates them.
    let unit = std::fs::read_to_string(contrib.join("webhook-listener.service")).unwrap();
    for (key, dir) in [
        (
            "RuntimeDirectory=webhook-listener",
            "/run/webhook-listener/",
        ),
        (
            "LogsDirectory=webhook-listener",
            "/var/log/webhook-listener/",
        ),
    ] {
        assert!(unit.contains(key) && text.contains(dir), "{key} / {dir}");
    }
    let file = dir.path().join("c.toml");
    // The directories systemd would make, made here (check-config may check they are writable).
    let here = format!("{}/", dir.path().display());
    let text = text
        .replace(credential, secret.to_str().unwrap())
        .replace("/var/log/webhook-listener/", &here)
        .replace("/run/webhook-listener/", &here);
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
