//! Issue 11, holes 4 and 5: a log path or a secret file that is not a regular file (a FIFO, a
//! device) must never hang the writer, the accept loop or SIGTERM. Every wait here is bounded.
//!
//! A stalled filesystem (a hung NFS mount) cannot be produced portably in a test; the watchdog
//! that bounds a write that never returns is covered by unit tests in `event_log`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;

use crate::common::*;

fn mkfifo(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    nix::unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
}

/// Runs the server on `config` and waits (bounded) for it to exit; its status and stderr.
fn start_expecting_refusal(config: &str) -> (Option<i32>, String, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("config.toml");
    let config = format!(
        "{}\n{}",
        config.replace("{dir}", &dir.path().display().to_string()),
        netbox_hook("/webhook/")
    );
    std::fs::write(&f, &config).unwrap();
    if config.contains("/fifo.log") {
        mkfifo(&dir.path().join("fifo.log"));
    }
    let t0 = Instant::now();
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&f)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = t0.elapsed();
    let mut err = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    (status.and_then(|s| s.code()), err, elapsed)
}

#[test]
fn a_fifo_as_the_event_log_is_refused_at_start() {
    let (code, err, elapsed) =
        start_expecting_refusal("listen = \"127.0.0.1:0\"\n[log]\nfile = \"{dir}/fifo.log\"\n");
    assert!(
        code.is_some_and(|c| c != 0),
        "exit {code:?} after {elapsed:?}: {err}"
    );
    assert!(err.contains("fifo.log") && err.contains("FIFO"), "{err}");
}

#[test]
fn dev_stdout_with_fsync_is_refused_at_start() {
    let (code, err, elapsed) = start_expecting_refusal(
        "listen = \"127.0.0.1:0\"\n[log]\nfile = \"/dev/stdout\"\nfsync = true\n",
    );
    assert!(
        code.is_some_and(|c| c != 0),
        "exit {code:?} after {elapsed:?}: {err}"
    );
    assert!(
        err.contains("/dev/stdout") && err.contains("not a regular file"),
        "{err}"
    );
}

#[tokio::test]
async fn log_replaced_by_a_fifo_answers_503_degrades_health_and_sigterm_still_exits() {
    let mut server = Server::netbox(
        "request_timeout_secs = 4\nshutdown_timeout_secs = 3\n",
        "fsync = true\n",
    );
    let url = server.url("/webhook/");
    assert_eq!(
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a01").await,
        200
    );
    mkfifo(&server.log_path);
    server.signal(Signal::SIGHUP);
    assert!(server.wait_for_stderr("config reloaded", Duration::from_secs(10)));
    let t0 = Instant::now();
    let status = tokio::time::timeout(
        Duration::from_secs(6),
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a02"),
    )
    .await
    .expect("an answer before request_timeout_secs, not silence");
    assert_eq!(status, 503, "after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    let h = tokio::time::timeout(Duration::from_secs(5), health(&server))
        .await
        .expect("/healthz answers");
    assert_eq!(h["result"], "degraded", "{h}");
    // The reason (with the log's path) is in the diagnostics, not on the public port.
    assert_eq!(h["event_log"], "failing", "{h}");
    let why = server.stderr();
    assert!(why.contains("FIFO") && why.contains("events.log"), "{why}");
    let t0 = Instant::now();
    server.signal(Signal::SIGTERM);
    let st = server.wait_exit(Duration::from_secs(3 + 5));
    assert!(
        st.is_some(),
        "SIGTERM did not exit within shutdown_timeout_secs + margin"
    );
    assert!(t0.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn a_secret_file_replaced_by_a_fifo_is_refused_on_reload_and_service_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{NETBOX_SECRET}\n")).unwrap();
    let hooks = format!(
        "[[hooks]]\npath = \"/webhook/\"\nprovider = \"netbox\"\nsecrets = [\"file:{}\"]\n",
        secret_file.display()
    );
    let mut server = Server::start_with(Options {
        top: "shutdown_timeout_secs = 3\n",
        hooks: &hooks,
        ..Default::default()
    });
    let url = server.url("/webhook/");
    assert_eq!(
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a11").await,
        200
    );
    mkfifo(&secret_file);
    server.signal(Signal::SIGHUP);
    let status = tokio::time::timeout(
        Duration::from_secs(5),
        netbox_status(&url, "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a12"),
    )
    .await
    .expect("the accept loop is not held up by the reload");
    assert_eq!(status, 200);
    assert!(
        server.wait_for_stderr("config reload refused", Duration::from_secs(10)),
        "{}",
        server.stderr()
    );
    let err = server.stderr();
    assert!(err.contains("not a regular file"), "{err}");
    let t0 = Instant::now();
    server.signal(Signal::SIGTERM);
    assert!(
        server.wait_exit(Duration::from_secs(8)).is_some(),
        "SIGTERM did not exit"
    );
    assert!(t0.elapsed() < Duration::from_secs(8));
}
