//! Helpers for the attack suite: a server process whose stderr is kept as raw bytes (an attacker
//! may try to put anything there, and a line reader that stops at the first invalid UTF-8 would
//! stop draining the pipe and stall the server), bounded runs of the CLI, a hand-written HTTP/1.1
//! client that can send bytes reqwest refuses, signing with `hmac` directly, a Unicode-aware line
//! splitter, and readings of `/proc/<pid>/status`. Nothing here waits without a bound.
#![allow(dead_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common;

/// How long a server may take to print its "serving" line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The config file text the harness writes, with every part given by the test.
pub fn config_text(listen: &str, top: &str, log_file: &Path, log: &str, hooks: &str) -> String {
    format!(
        "listen = {listen:?}\n{top}\n[log]\nfile = {:?}\n{log}\n{hooks}",
        log_file.display().to_string()
    )
}

/// A running `webhook-listener`, killed when dropped.
pub struct Proc {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// Why [`Proc::try_start`] did not get a serving server.
#[derive(Debug)]
pub struct NotStarted {
    /// The exit status, when the process exited by itself; `None` if it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stderr: Vec<u8>,
}

impl Proc {
    /// Writes `config` (built from the log path in a new temp dir) and starts the server on it.
    pub fn start(build: impl FnOnce(&Path) -> String) -> Proc {
        match Self::try_start(build, START_TIMEOUT) {
            Ok(p) => p,
            Err(e) => panic!(
                "server did not start ({:?}):\n{}",
                e.status,
                String::from_utf8_lossy(&e.stderr)
            ),
        }
    }

    /// Like [`Proc::start`], but a server that exits (or does not serve within `timeout`) is an
    /// answer, not a panic.
    pub fn try_start(
        build: impl FnOnce(&Path) -> String,
        timeout: Duration,
    ) -> Result<Proc, NotStarted> {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("events.log");
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, build(&log_path)).unwrap();
        Self::spawn(dir, config_path, log_path, Stdio::null(), timeout)
    }

    /// Starts the server on an existing config file in `dir`, with `stdout` as its standard output.
    pub fn spawn(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        log_path: PathBuf,
        stdout: Stdio,
        timeout: Duration,
    ) -> Result<Proc, NotStarted> {
        let mut child = Command::new(common::bin())
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .env_remove("WEBHOOK_LISTENER_CONFIG")
            .env_remove("WEBHOOK_LISTENER_LISTEN")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn webhook-listener");
        let stderr = drain(child.stderr.take().unwrap());
        // A piped stdout is drained too (and dropped), so the server never blocks writing to it.
        if let Some(out) = child.stdout.take() {
            drain(out);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let addr = serving_addr(&stderr.lock().unwrap());
            if let Some(addr) = addr {
                return Ok(Proc {
                    child: Some(child),
                    addr,
                    dir,
                    config_path,
                    log_path,
                    stderr,
                });
            }
            if let Some(status) = child.try_wait().unwrap() {
                // Let the reader thread take the last bytes out of the pipe.
                std::thread::sleep(Duration::from_millis(50));
                return Err(NotStarted {
                    status: Some(status),
                    stderr: stderr.lock().unwrap().clone(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(NotStarted {
                    status: None,
                    stderr: stderr.lock().unwrap().clone(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("still running").id() as i32
    }

    /// Everything written to stderr so far, as bytes.
    pub fn stderr_bytes(&self) -> Vec<u8> {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything written to stderr so far, lossily decoded (for messages).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// How many stderr bytes there are now: a mark to look only at what comes later.
    pub fn stderr_mark(&self) -> usize {
        self.stderr.lock().unwrap().len()
    }

    /// The stderr bytes written after `mark`.
    pub fn stderr_since(&self, mark: usize) -> Vec<u8> {
        self.stderr.lock().unwrap()[mark..].to_vec()
    }

    /// Waits (bounded) until stderr after `mark` holds a line containing every one of `needles`
    /// (ASCII, compared case-insensitively). This is the server's own readiness signal.
    pub fn wait_for_line(&self, mark: usize, needles: &[&str], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.find_line(mark, needles).is_some() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first stderr line after `mark` that contains every one of `needles` (case-insensitive).
    pub fn find_line(&self, mark: usize, needles: &[&str]) -> Option<String> {
        let text = String::from_utf8_lossy(&self.stderr_since(mark)).into_owned();
        text.split('\n')
            .find(|l| {
                let l = l.to_ascii_lowercase();
                needles.iter().all(|n| l.contains(&n.to_ascii_lowercase()))
            })
            .map(str::to_string)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                std::thread::sleep(Duration::from_millis(50));
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The event log's text ("" when absent). Not split: see [`splitlines`].
    pub fn log_text(&self) -> String {
        let bytes = std::fs::read(&self.log_path).unwrap_or_default();
        String::from_utf8(bytes).expect("the event log is UTF-8")
    }

    /// The event log split on `\n` only (for tests that are not about line splitting).
    pub fn log_lines(&self) -> Vec<String> {
        self.log_text().lines().map(str::to_string).collect()
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn status_kib(&self, field: &str) -> u64 {
        status_kib(self.pid(), field)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let keep = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => keep.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    });
    buf
}

fn serving_addr(stderr: &[u8]) -> Option<SocketAddr> {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .filter(|l| l.contains("webhook-listener serving"))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("listen="))
                .and_then(|a| a.trim_matches('"').parse().ok())
        })
}

/// A field of `/proc/<pid>/status` in KiB.
pub fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// What a bounded CLI run gave.
pub struct CliOut {
    /// `None`: still running at the timeout (then killed).
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CliOut {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
    pub fn failed(&self) -> bool {
        self.status.is_some_and(|s| !s.success())
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    /// stdout and stderr together, for "the message says …" checks that do not care which.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout(), self.stderr())
    }
}

/// Runs the binary with `args` (and `cwd`), killing it after `timeout`.
pub fn run_cli(args: &[&std::ffi::OsStr], cwd: Option<&Path>, timeout: Duration) -> CliOut {
    let mut cmd = Command::new(common::bin());
    cmd.args(args)
        .env_remove("WEBHOOK_LISTENER_CONFIG")
        .env_remove("WEBHOOK_LISTENER_LISTEN")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("spawn webhook-listener");
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
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
    // The pipes close with the process; give the reader threads a moment to take the rest.
    std::thread::sleep(Duration::from_millis(50));
    let stdout = out.lock().unwrap().clone();
    let stderr = err.lock().unwrap().clone();
    CliOut {
        status,
        stdout,
        stderr,
    }
}

/// [`run_cli`] with string arguments.
pub fn cli(args: &[&str], timeout: Duration) -> CliOut {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    run_cli(&args, None, timeout)
}

/// An HTTP response read off a raw socket.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Reads one response (head and a `Content-Length` body) from `s`, bounded by `timeout`.
pub async fn read_response<R: tokio::io::AsyncRead + Unpin>(
    s: &mut R,
    timeout: Duration,
) -> Result<RawResponse, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return Err(format!("no response head within {timeout:?}")),
            Ok(Err(e)) => return Err(format!("read error before the response head: {e}")),
            Ok(Ok(0)) => return Err("connection closed before the response head".into()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 1 << 20 {
            return Err("response head over 1 MiB".into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    body.truncate(len);
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// A POST request as bytes: header values are bytes, so a test can send what reqwest would refuse.
pub fn post_bytes(path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len()).into_bytes();
    for (k, v) in headers {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    req
}

/// Sends `request` on a new connection and reads the response, all within `timeout`.
pub async fn send(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<RawResponse, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut s = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connect not done within {timeout:?}"))?
        .map_err(|e| format!("connect: {e}"))?;
    tokio::time::timeout_at(deadline, s.write_all(request))
        .await
        .map_err(|_| format!("request not written within {timeout:?}"))?
        .map_err(|e| format!("write: {e}"))?;
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    read_response(&mut s, left).await
}

/// POSTs `body` to `path` with `headers`, within `timeout`.
pub async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
    timeout: Duration,
) -> Result<RawResponse, String> {
    send(addr, &post_bytes(path, headers, body), timeout).await
}

/// POSTs a NetBox body signed with `secret`.
pub async fn post_netbox_signed(
    addr: SocketAddr,
    path: &str,
    secret: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<RawResponse, String> {
    let sig = common::hmac_sha512_hex(secret.as_bytes(), body);
    post(
        addr,
        path,
        &[("X-Hook-Signature", sig.as_bytes())],
        body,
        timeout,
    )
    .await
}

/// GET `path`, within `timeout`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<RawResponse, String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    send(addr, req.as_bytes(), timeout).await
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The three Standard Webhooks headers for `body`, signed with a `whsec_` secret.
pub fn standard_webhooks_headers(
    whsec: &str,
    id: &str,
    ts: i64,
    body: &[u8],
) -> Vec<(&'static str, Vec<u8>)> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(whsec.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 key");
    let ts = ts.to_string();
    let tag = common::hmac_sha256(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    vec![
        ("webhook-id", id.as_bytes().to_vec()),
        ("webhook-timestamp", ts.into_bytes()),
        (
            "webhook-signature",
            format!("v1,{}", b64(&tag)).into_bytes(),
        ),
    ]
}

/// Stripe's `Stripe-Signature` header for `body`; the `whsec_` secret is the key as is.
pub fn stripe_header(secret: &str, ts: i64, body: &[u8]) -> Vec<u8> {
    let ts = ts.to_string();
    let tag = common::hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body]);
    format!("t={ts},v1={}", hex::encode(tag)).into_bytes()
}

/// Borrowed view of owned headers, for [`post`].
pub fn as_refs<'a>(headers: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    headers.iter().map(|(k, v)| (*k, v.as_slice())).collect()
}

/// Splits like Python's `str.splitlines()`: every boundary a Unicode-aware reader breaks a line at
/// (`\n`, `\r`, `\r\n`, VT, FF, FS, GS, RS, NEL, U+2028, U+2029); no trailing empty line.
pub fn splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let boundary = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !boundary {
            continue;
        }
        lines.push(&s[start..i]);
        let mut end = i + c.len_utf8();
        if c == '\r' {
            if let Some(&(j, '\n')) = chars.peek() {
                chars.next();
                end = j + 1;
            }
        }
        start = end;
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

/// A character a terminal or a line reader acts on: C0 (tab included), DEL, C1, U+2028, U+2029.
pub fn is_forbidden(c: char) -> bool {
    c < ' '
        || c == '\u{7f}'
        || ('\u{80}'..='\u{9f}').contains(&c)
        || c == '\u{2028}'
        || c == '\u{2029}'
}

/// The forbidden characters in `s`, for messages.
pub fn forbidden_in(s: &str) -> Vec<char> {
    s.chars().filter(|&c| is_forbidden(c)).collect()
}

/// Checks stderr bytes: valid UTF-8 (a lone 0x9b byte is CSI to an 8-bit terminal) and, apart from
/// the `\n` that ends each line, no forbidden character. Returns what is wrong, if anything.
pub fn stderr_problems(bytes: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            return Some(format!(
                "not UTF-8 at byte {at}: {:?}",
                String::from_utf8_lossy(&bytes[at.saturating_sub(80)..(at + 8).min(bytes.len())])
            ));
        }
    };
    let bad: Vec<(usize, &str)> = text
        .split('\n')
        .enumerate()
        .filter(|(_, l)| l.chars().any(is_forbidden))
        .collect();
    (!bad.is_empty()).then(|| format!("lines with control characters: {bad:?}"))
}

/// A JSON string literal in pure ASCII: every non-ASCII or control character as `\u` escapes
/// (the way Python's `json.dumps` writes it), so a body can carry C1 or U+2028 in ASCII only.
pub fn ascii_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (' '..='~').contains(&c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// A NetBox body with the given typed fields, each already a JSON literal (see
/// [`ascii_json_string`], or `serde_json::to_string` for a body that carries them raw).
pub fn netbox_body_with(
    username: &str,
    object_type: &str,
    url: &str,
    name: &str,
    request_id: &str,
) -> Vec<u8> {
    format!(
        r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": {object_type}, "username": {username}, "request_id": "{request_id}", "data": {{"id": 1, "url": {url}, "name": {name}}}, "snapshots": {{"prechange": null, "postchange": {{"name": {name}}}}}}}"#
    )
    .into_bytes()
}

/// A text log line taken apart: the ` key=value` fields after the timestamp (a value is a bare
/// token or a JSON string literal, decoded) and the payload JSON that ends the line. `None` when
/// the line does not have that shape.
pub fn parse_text_line(line: &str) -> Option<(Vec<(String, String)>, serde_json::Value)> {
    let mut rest = line.split_once(' ')?.1;
    let mut fields = Vec::new();
    loop {
        if rest.starts_with('{') {
            return Some((fields, serde_json::from_str(rest).ok()?));
        }
        let (key, after) = rest.split_once('=')?;
        if key.is_empty() || key.contains([' ', '"']) {
            return None;
        }
        let (value, after) = if after.starts_with('"') {
            let mut de = serde_json::Deserializer::from_str(after).into_iter::<String>();
            let value = de.next()?.ok()?;
            (value, &after[de.byte_offset()..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        fields.push((key.to_string(), value));
        rest = after.strip_prefix(' ')?;
    }
}

/// The value of `key` in a text log line (see [`parse_text_line`]).
pub fn text_field(line: &str, key: &str) -> Option<String> {
    parse_text_line(line)?
        .0
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// Serializes heavy tests (floods) so that they do not starve each other of the two cores.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

pub const MIB: u64 = 1 << 20;
