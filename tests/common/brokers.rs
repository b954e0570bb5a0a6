//! Real brokers for tests: `nats-server` (JetStream) and `redis-server` on free loopback ports in
//! temp dirs. Readiness is the server's own "ready" log line (and, for Redis, a PING answered
//! PONG), never a fixed sleep. `kill()` is SIGKILL (what a crash looks like); `restart()` starts the
//! same server again on the same port and data dir; Drop kills whatever still runs.
//!
//! Self-contained (std + tempfile) so any test binary can include it with `#[path]`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a server may take to say it is ready: JetStream recovers its store first.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

const INSTALL_HINT: &str = "apt-get install nats-server redis-server";

/// A free port on 127.0.0.1 (the listener is dropped; the server binds it right after).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn require_binary(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/usr/bin"]
            .iter()
            .any(|d| Path::new(d).join(name).is_file());
    assert!(
        found,
        "`{name}` not found: the broker tests need real servers; install them with `{INSTALL_HINT}`"
    );
}

fn binary_path(name: &str) -> PathBuf {
    for d in ["/usr/sbin", "/usr/bin"] {
        let p = Path::new(d).join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
}

/// Reads a child's output on a thread (so the pipe never fills), keeps every line for failure
/// messages, and reports the first line containing `ready` on the returned channel.
fn watch_output(
    out: impl Read + Send + 'static,
    ready: &'static str,
    log: Arc<Mutex<Vec<String>>>,
) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains(ready) {
                let _ = tx.send(());
            }
            log.lock().unwrap().push(line);
        }
    });
    rx
}

fn wait_ready(rx: &mpsc::Receiver<()>, child: &mut Child, what: &str, log: &Mutex<Vec<String>>) {
    if rx.recv_timeout(READY_TIMEOUT).is_err() {
        let status = child.try_wait().ok().flatten();
        panic!(
            "{what} did not become ready within {READY_TIMEOUT:?} (exit: {status:?}); log:\n{}",
            log.lock().unwrap().join("\n")
        );
    }
}

/// A `nats-server -js` on a free port, with its store in a temp dir.
/// The controls both brokers share: SIGKILL (waiting until the process is gone, so the port is free
/// again), a restart on the same port with the same store, the output so far, and kill on drop.
macro_rules! process_controls {
    ($t:ty) => {
        impl $t {
            pub fn kill(&mut self) {
                if let Some(mut c) = self.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }

            pub fn restart(&mut self) {
                self.kill();
                self.spawn();
            }

            pub fn log(&self) -> String {
                self.log.lock().unwrap().join("\n")
            }
        }

        impl Drop for $t {
            fn drop(&mut self) {
                self.kill();
            }
        }
    };
}

pub struct Nats {
    dir: tempfile::TempDir,
    port: u16,
    config: Option<PathBuf>,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Nats {
    pub fn start() -> Nats {
        Self::start_inner(None, free_port())
    }

    /// Starts on a given port (e.g. one a client was pointed at before the server was up).
    pub fn start_on(port: u16) -> Nats {
        Self::start_inner(None, port)
    }

    /// Starts with a config file holding `conf` (e.g. `max_payload: 4096`); flags still set the
    /// port, address and store.
    pub fn start_with_config(conf: &str) -> Nats {
        Self::start_inner(Some(conf), free_port())
    }

    fn start_inner(conf: Option<&str>, port: u16) -> Nats {
        require_binary("nats-server");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = conf.map(|c| {
            let p = dir.path().join("nats.conf");
            std::fs::write(&p, c).expect("write nats.conf");
            p
        });
        let mut n = Nats {
            dir,
            port,
            config,
            child: None,
            log: Arc::default(),
        };
        n.spawn();
        n
    }

    /// Replaces the config file's contents (e.g. a larger `max_payload`); the next
    /// [`restart`](Self::restart) reads it.
    pub fn set_config(&mut self, conf: &str) {
        let p = self.dir.path().join("nats.conf");
        std::fs::write(&p, conf).expect("write nats.conf");
        self.config = Some(p);
    }

    fn spawn(&mut self) {
        let store = self.dir.path().join("js");
        let mut cmd = Command::new(binary_path("nats-server"));
        if let Some(c) = &self.config {
            cmd.arg("-c").arg(c);
        }
        cmd.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-sd",
        ])
        .arg(&store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn nats-server ({INSTALL_HINT}): {e}"));
        let err: ChildStderr = child.stderr.take().expect("stderr piped");
        let rx = watch_output(err, "Server is ready", self.log.clone());
        wait_ready(&rx, &mut child, "nats-server", &self.log);
        self.child = Some(child);
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Every message in `stream`, through a real pull consumer: batches until one comes back empty.
    pub async fn messages(&self, stream: &str) -> Vec<async_nats::jetstream::Message> {
        use futures_util::StreamExt;
        let client = async_nats::connect(self.url()).await.expect("connect");
        let s = async_nats::jetstream::new(client)
            .get_stream(stream)
            .await
            .expect("stream exists");
        let c = s
            // Nothing is acked: without room for every message, fetches stop at the default 1,000.
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                max_ack_pending: 1_000_000,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut out = Vec::new();
        loop {
            let mut batch = c
                .fetch()
                .max_messages(1000)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .expect("fetch");
            let before = out.len();
            while let Some(m) = batch.next().await {
                out.push(m.expect("message"));
            }
            if out.len() == before {
                return out;
            }
        }
    }
}

process_controls!(Nats);

/// A `redis-server` on a free port, AOF with `appendfsync always`, data in a temp dir.
pub struct Redis {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Redis {
    pub fn start() -> Redis {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> Redis {
        require_binary("redis-server");
        let mut r = Redis {
            dir: tempfile::tempdir().expect("tempdir"),
            port,
            child: None,
            log: Arc::default(),
        };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let mut child = Command::new(binary_path("redis-server"))
            .args(["--port", &port, "--bind", "127.0.0.1", "--dir"])
            .arg(self.dir.path())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn redis-server ({INSTALL_HINT}): {e}"));
        let out: ChildStdout = child.stdout.take().expect("stdout piped");
        let rx = watch_output(out, "Ready to accept connections", self.log.clone());
        wait_ready(&rx, &mut child, "redis-server", &self.log);
        self.child = Some(child);
        let pong = self.command(&[b"PING"]);
        assert_eq!(
            pong, b"+PONG\r\n",
            "redis-server answered PING with {pong:?}"
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// One command over a fresh connection, in RESP, returning the raw first reply line (enough
    /// for PING and simple replies; tests read streams with the real client).
    pub fn command(&self, args: &[&[u8]]) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect redis");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        s.write_all(&req).expect("write redis");
        let mut line = Vec::new();
        BufReader::new(s)
            .read_until(b'\n', &mut line)
            .expect("read redis");
        line
    }
}

process_controls!(Redis);
