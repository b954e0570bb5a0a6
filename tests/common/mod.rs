//! Test harness: runs the real `webhook-listener` binary on 127.0.0.1:0 in a temp directory, learns
//! its address from its own start-up line (the readiness signal), and signs requests with the
//! independent signer in [`sign`], never with the code under test.
#![allow(dead_code)]

pub mod brokers;

pub mod sign;

pub mod ed25519;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use strum::IntoEnumIterator;
pub use webhook_listener::signature::{Algorithm, Encoding, Provider, Scheme};

pub const NETBOX_SECRET: &str = "my-webhook-secret";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_webhook-listener")
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netbox")
}

/// Every real NetBox body with the signature NetBox sent for it (from SIGNATURES.txt).
pub fn netbox_fixtures() -> Vec<(String, Vec<u8>, String)> {
    let dir = fixtures_dir();
    let sigs = std::fs::read_to_string(dir.join("SIGNATURES.txt")).unwrap();
    sigs.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let body = std::fs::read(dir.join(cols[0])).unwrap();
            assert_eq!(
                body.len().to_string(),
                cols[1],
                "fixture size for {}",
                cols[0]
            );
            (cols[0].to_string(), body, cols[3].to_string())
        })
        .collect()
}

/// NetBox's `X-Hook-Signature` for `body`: hex HMAC-SHA512.
pub fn netbox_signature(secret: &[u8], body: &[u8]) -> String {
    hex::encode(sign::mac(Algorithm::Sha512, secret, &[body]))
}

/// The scheme a provider's test hook uses. The generic `hmac` one is `X-Signature: sha256=<hex>`
/// with `X-Delivery-Id`, as [`hook`] configures it.
pub fn test_scheme(p: Provider) -> Scheme {
    match p {
        Provider::Hmac => Scheme::Hmac {
            header: "x-signature".into(),
            algorithm: Algorithm::Sha256,
            encoding: Encoding::Hex,
            prefix: "sha256=".into(),
            delivery_id_header: Some("x-delivery-id".into()),
            event_header: Some("x-event-type".into()),
        },
        Provider::Twilio => Scheme::Twilio {
            public_url: TWILIO_PUBLIC_URL.into(),
        },
        p => Scheme::from_provider(p),
    }
}

/// The URL Twilio is configured with in the tests: a proxy's, not the listener's own address.
pub const TWILIO_PUBLIC_URL: &str = "https://hooks.example.com/twilio";

/// Secret number `n` in the form the provider hands it out.
pub fn secret(p: Provider, n: u32) -> String {
    match p {
        // Standard Webhooks: "whsec_" + base64 of the key bytes.
        Provider::StandardWebhooks => format!(
            "whsec_{}",
            sign::b64(format!("standard-webhooks key {n} / 0123456789").as_bytes())
        ),
        // Stripe secrets also start with whsec_, but are used as the key whole, as-is.
        Provider::Stripe => format!("whsec_stripe{n}Tx9sQ3kLmN0pR7vW2yZ4bC6dF8gH1jK"),
        // Discord holds no secret: "secret" n is the public key of test signer n (see [`signed`]).
        Provider::Discord => ed25519::Signer::numbered(n as u8).public_hex(),
        p => format!("{}-secret-{n}", p.name()),
    }
}

/// The `[[hooks]]` table of `p` at `path` accepting each of `secrets`, plus `extra` keys.
pub fn hook(p: Provider, path: &str, secrets: &[String], extra: &str) -> String {
    let secrets: Vec<String> = secrets.iter().map(|s| format!("{s:?}")).collect();
    let generic = match test_scheme(p) {
        Scheme::Hmac { prefix, .. } => format!(
            "header = \"X-Signature\"\nalgorithm = \"sha256\"\nencoding = \"hex\"\nprefix = \"{prefix}\"\ndelivery_id_header = \"X-Delivery-Id\"\nevent_header = \"X-Event-Type\"\n"
        ),
        Scheme::Twilio { public_url } if !extra.contains("public_url") => {
            format!("public_url = \"{public_url}\"\n")
        }
        Scheme::Discord { .. } if !extra.contains("discord_endpoint") => {
            "discord_endpoint = \"interactions\"\n".into()
        }
        _ => String::new(),
    };
    let keys = if p == Provider::Discord {
        "public_keys"
    } else {
        "secrets"
    };
    format!(
        "[[hooks]]\npath = \"{path}\"\nprovider = \"{}\"\n{keys} = [{}]\n{generic}{extra}\n",
        p.name(),
        secrets.join(", ")
    )
}

/// What a sender of `p` sends for `body`, signed with `secret` at `ts` with delivery `id`.
pub fn signed(p: Provider, secret: &str, body: &[u8], ts: i64, id: &str) -> Headers {
    if p == Provider::Discord {
        let signer = (0..=u8::MAX)
            .map(ed25519::Signer::numbered)
            .find(|s| s.public_hex() == secret)
            .expect("a test signer's public key");
        return signer.discord_headers(body, ts);
    }
    sign::request_headers(&test_scheme(p), secret.as_bytes(), body, ts, id)
}

pub type Headers = Vec<(String, String)>;

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A NetBox hook config using the test secret.
pub fn netbox_hook(path: &str) -> String {
    format!(
        "[[hooks]]\npath = \"{path}\"\nprovider = \"netbox\"\nsecrets = [\"{NETBOX_SECRET}\"]\n"
    )
}

pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The admin listener's address, when it runs.
    pub admin: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub log_path: PathBuf,
    pub config_path: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
pub struct Options<'a> {
    /// The `listen` address; `127.0.0.1:0` when `None`.
    pub listen: Option<&'a str>,
    /// Top-level keys (before any table).
    pub top: &'a str,
    /// Extra `[log]` keys.
    pub log: &'a str,
    /// `[[hooks]]` tables.
    pub hooks: &'a str,
    pub env: &'a [(&'a str, &'a str)],
    /// Use this log file instead of `events.log` in the temp dir.
    pub log_file: Option<&'a str>,
    /// The `[admin]` table's keys; empty: `listen = "127.0.0.1:0"` (a free port, so servers run in
    /// parallel).
    pub admin: &'a str,
}

impl Server {
    /// A server with `hooks` (TOML) and default everything else.
    pub fn start(hooks: &str) -> Server {
        Self::start_with(Options {
            hooks,
            ..Default::default()
        })
    }

    /// A server with one NetBox hook at `/webhook/`, plus top-level and `[log]` keys.
    pub fn netbox(top: &str, log: &str) -> Server {
        Self::start_with(Options {
            top,
            log,
            hooks: &netbox_hook("/webhook/"),
            ..Default::default()
        })
    }

    pub fn start_with(o: Options) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log_path = o
            .log_file
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.path().join("events.log"));
        let admin = if o.admin.is_empty() {
            "listen = \"127.0.0.1:0\""
        } else {
            o.admin
        };
        let config = format!(
            "listen = {:?}\n{}\n[log]\nfile = {:?}\n{}\n[admin]\n{admin}\n{}",
            o.listen.unwrap_or("127.0.0.1:0"),
            o.top,
            log_path.display().to_string(),
            o.log,
            o.hooks
        );
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("--config")
            .arg(&config_path)
            .current_dir(dir.path());
        for (k, v) in o.env {
            cmd.env(k, v);
        }
        Self::spawn(cmd, dir, log_path, config_path)
    }

    /// Spawns `cmd` (already configured) and waits for its "serving" line.
    pub fn spawn(
        mut cmd: Command,
        dir: tempfile::TempDir,
        log_path: PathBuf,
        config_path: PathBuf,
    ) -> Server {
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn webhook-listener");
        let (addr, stderr) = watch_stderr(&mut child);
        let (addr, admin) = match addr.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not start:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child: Some(child),
            addr,
            admin,
            dir,
            log_path,
            config_path,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `path` on the admin listener (which must run).
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin.expect("admin listener"), path)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// The event log's lines (empty if the file does not exist).
    pub fn log_lines(&self) -> Vec<String> {
        read_lines(&self.log_path)
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until stderr has a line containing `needle` (a readiness signal, not a sleep).
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(needle))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for the process to exit (up to `timeout`), returning its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return Some(st);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The public and the admin address from the start-up line, and every line so far.
type Started = mpsc::Receiver<(SocketAddr, Option<SocketAddr>)>;

fn watch_stderr(child: &mut Child) -> (Started, Arc<Mutex<Vec<String>>>) {
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let keep = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("webhook-listener serving") {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|w| w.strip_prefix(name))
                        .and_then(|a| a.parse().ok())
                };
                if let Some(addr) = field("listen=") {
                    let _ = tx.send((addr, field("admin=")));
                }
            }
            keep.lock().unwrap().push(line);
        }
    });
    (rx, lines)
}

/// The compact JSON payload at the end of a text log line.
pub fn line_payload(line: &str) -> serde_json::Value {
    let start = line.find(" {").expect("payload in line") + 1;
    serde_json::from_str(&line[start..]).expect("payload is JSON")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Posts `body` to `url` with `headers`; returns status and the JSON body.
pub async fn post<K: AsRef<str>>(
    url: &str,
    headers: &[(K, String)],
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let mut req = client()
        .post(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(k.as_ref(), v);
    }
    let resp = req.body(body).send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body {text:?} ({status})"));
    (status, json)
}

/// Posts a NetBox body signed with the test secret.
pub async fn post_netbox(url: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), body);
    post(url, &[("x-hook-signature", sig)], body.to_vec()).await
}

/// Posts a signed NetBox body as if through a proxy that adds `X-Forwarded-For: forwarded_for`.
pub async fn post_netbox_forwarded(
    url: &str,
    body: &[u8],
    forwarded_for: &str,
) -> (u16, serde_json::Value) {
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), body);
    let headers = [
        ("x-hook-signature", sig),
        ("x-forwarded-for", forwarded_for.into()),
    ];
    post(url, &headers, body.to_vec()).await
}

/// A valid NetBox-shaped body with a unique request id.
pub fn netbox_body(request_id: &str) -> Vec<u8> {
    format!(
        r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": "dcim.site", "username": "admin", "request_id": "{request_id}", "data": {{"id": 1, "url": "/api/dcim/sites/1/", "name": "Site 1"}}, "snapshots": {{"prechange": null, "postchange": {{"name": "Site 1"}}}}}}"#
    )
    .into_bytes()
}

/// The status of a signed NetBox post of [`netbox_body`] with `request_id`.
pub async fn netbox_status(url: &str, request_id: &str) -> u16 {
    post_netbox(url, &netbox_body(request_id)).await.0
}

/// The server's `/metrics` text (from the admin listener when it runs, where it lives by default).
pub async fn metrics(server: &Server) -> String {
    let url = match server.admin {
        Some(_) => server.admin_url("/metrics"),
        None => server.url("/metrics"),
    };
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The server's `/healthz` answer as JSON.
pub async fn health(server: &Server) -> serde_json::Value {
    client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The admin listener's `/api/sinks` as `{"sinks": [...]}`, the shape `/healthz` lists them in: the
/// sinks' free-text errors (`last_error`, `paused_reason`) are shown there, not on the public port.
pub async fn admin_sinks(server: &Server) -> serde_json::Value {
    let sinks: serde_json::Value = client()
        .get(server.admin_url("/api/sinks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::json!({ "sinks": sinks })
}
