//! Diagnostics on stderr. Issue 11 hole 8: nothing a request holds (a body's bad character quoted
//! in a 422, a header value, a path) reaches stderr as a raw control byte or line separator, and
//! each diagnostic stays one line, in the text format and in JSON. Issue 13: `--log-format json`
//! (or `WEBHOOK_LISTENER_LOG_FORMAT=json`) gives one JSON object per line; client addresses print
//! plainly; every start-up error is printed once.
//!
//! stderr is kept as raw bytes here: a line reader that stops at the first invalid UTF-8 would
//! stop draining the pipe (and hide exactly what is under test).

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

/// Bound on one request, and on waiting for its diagnostic.
const T: Duration = Duration::from_secs(5);

/// A running server whose stderr is kept byte for byte.
struct RawServer {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl RawServer {
    /// Serves `hooks` behind a trusted proxy (127.0.0.1), with `args` and `env` added.
    fn start(hooks: &str, args: &[&str], env: &[(&str, &str)]) -> RawServer {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.1/32\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\nfile = {:?}\n{hooks}",
                dir.path().join("events.log").display().to_string()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(bin());
        cmd.arg("--config")
            .arg(&config)
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("WEBHOOK_LISTENER_LOG_FORMAT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = drain(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = loop {
            if let Some(a) = serving_addr(&stderr.lock().unwrap()) {
                break a;
            }
            assert!(
                Instant::now() < deadline && child.try_wait().unwrap().is_none(),
                "did not start: {}",
                String::from_utf8_lossy(&stderr.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        RawServer {
            child,
            addr,
            _dir: dir,
            stderr,
        }
    }

    fn mark(&self) -> usize {
        self.stderr.lock().unwrap().len()
    }

    fn since(&self, mark: usize) -> Vec<u8> {
        self.stderr.lock().unwrap()[mark..].to_vec()
    }

    /// Waits (bounded) for a complete stderr line after `mark` that contains `needle`.
    fn wait_for(&self, mark: usize, needle: &str) -> bool {
        let deadline = Instant::now() + T;
        while Instant::now() < deadline {
            let text = String::from_utf8_lossy(&self.since(mark)).into_owned();
            if text
                .split_inclusive('\n')
                .any(|l| l.ends_with('\n') && l.contains(needle))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let keep = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            keep.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

/// The address of the "serving" line, in either format.
fn serving_addr(stderr: &[u8]) -> Option<SocketAddr> {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| l.contains("webhook-listener serving"))?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["fields"]["listen"].as_str()?.parse().ok();
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("listen="))?
        .parse()
        .ok()
}

/// A POST as bytes, so header values can be what reqwest refuses to send.
fn post_bytes(path: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    )
    .into_bytes();
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

/// Sends `request` on a new connection; the response's status, within [`T`].
async fn send(addr: SocketAddr, request: &[u8]) -> u16 {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed before the response head");
            head.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        head.split(' ').nth(1).unwrap().parse().unwrap()
    };
    tokio::time::timeout(T, exchange).await.expect("an answer")
}

/// Splits like Python's `str.splitlines()`: at `\n`, `\r`, `\r\n`, VT, FF, FS, GS, RS, NEL,
/// U+2028 and U+2029.
fn splitlines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !matches!(
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
        ) {
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

/// What a terminal, a line reader or a display acts on: C0 (tab included), DEL, C1, U+2028,
/// U+2029, and the bidi controls that reorder how a line is shown.
fn is_forbidden(c: char) -> bool {
    c < ' '
        || c == '\u{7f}'
        || ('\u{80}'..='\u{9f}').contains(&c)
        || c == '\u{2028}'
        || c == '\u{2029}'
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// What is wrong with these stderr bytes: not UTF-8, or a forbidden character on some line.
fn stderr_problems(bytes: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            let near = &bytes[at.saturating_sub(80)..(at + 8).min(bytes.len())];
            return Some(format!(
                "not UTF-8 at byte {at}: {:?}",
                String::from_utf8_lossy(near)
            ));
        }
    };
    let bad: Vec<&str> = text
        .split('\n')
        .filter(|l| l.chars().any(is_forbidden))
        .collect();
    (!bad.is_empty()).then(|| format!("lines with control characters: {bad:?}"))
}

/// A JSON string literal in pure ASCII, every other character as `\u` escapes (as Python's
/// `json.dumps` writes it): a body can carry C1 or U+2028 without a single non-ASCII byte.
fn ascii_json_string(s: &str) -> String {
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

/// The hostile requests of hole 8 with the status each gets: bad characters quoted by a 422, a
/// path, a signature header and a forwarding header of obs-text bytes.
fn hostile_requests() -> Vec<(&'static str, u16, Vec<u8>)> {
    let bad_uuid = format!(
        r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": "dcim.site", "username": "admin", "request_id": {}, "data": {{"id": 1}}}}"#,
        ascii_json_string("\u{1b}[2J\u{9b}X")
    );
    let bad_time = format!(
        r#"{{"event": "created", "timestamp": {}, "object_type": "dcim.site", "username": "admin", "data": {{"id": 1}}}}"#,
        ascii_json_string("\u{1b}]0;pwned\u{7}\u{9b}\u{2028}")
    );
    // The 422 quotes the first bad character: a bidi override that would reorder the line.
    let bidi_uuid = format!(
        r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": "dcim.site", "username": "admin", "request_id": {}, "data": {{"id": 1}}}}"#,
        ascii_json_string("\u{202e}X\u{2066}")
    );
    let unsigned = netbox_body(&uuid::Uuid::new_v4().to_string());
    let signed = |body: &str| {
        let sig = netbox_signature(NETBOX_SECRET.as_bytes(), body.as_bytes());
        post_bytes(
            "/nb",
            &[("X-Hook-Signature", sig.as_bytes())],
            body.as_bytes(),
        )
    };
    vec![
        ("request_id not a UUID", 422, signed(&bad_uuid)),
        ("timestamp not a time", 422, signed(&bad_time)),
        ("request_id with a bidi override", 422, signed(&bidi_uuid)),
        (
            "unknown path with escapes",
            404,
            post_bytes("/x%1b%9b%e2%80%a8y", &[], b"{}"),
        ),
        (
            "obs-text signature header",
            401,
            post_bytes(
                "/nb",
                &[(
                    "X-Hook-Signature",
                    b"\xc2\x9b2J\xe2\x80\xa8\x85\x9b\xe2\x80\xae\xe2\x81\xa6\xd8\x9c",
                )],
                &unsigned,
            ),
        ),
        (
            "obs-text forwarding header",
            403,
            post_bytes(
                "/allow",
                &[("X-Forwarded-For", b"\xc2\x9b2J, \xe2\x80\xa8\x85")],
                &unsigned,
            ),
        ),
    ]
}

fn hooks() -> String {
    format!(
        "{}[[hooks]]\npath = \"/allow\"\nprovider = \"netbox\"\nallow_unsigned = true\nallow_ips = [\"192.0.2.0/24\"]\n",
        netbox_hook("/nb")
    )
}

/// Hole 8's contract (ported from the issue-11 attack suite, in the git history at tests/pending/): stderr is UTF-8 with no C0 but the
/// line end, no DEL, C1, U+2028 or U+2029, whatever a request holds; each diagnostic is one line.
#[tokio::test]
async fn diagnostics_never_carry_control_characters_from_a_request() {
    let p = RawServer::start(&hooks(), &[], &[]);
    for (what, status, request) in hostile_requests() {
        let mark = p.mark();
        assert_eq!(send(p.addr, &request).await, status, "{what}");
        assert!(
            p.wait_for(mark, &format!("status={status}")),
            "{what}: the refusal is in the diagnostics: {}",
            String::from_utf8_lossy(&p.since(mark))
        );
        let since = p.since(mark);
        if let Some(problem) = stderr_problems(&since) {
            panic!("{what}: {problem}");
        }
        let text = String::from_utf8(since).unwrap();
        assert_eq!(
            splitlines(&text).len(),
            text.split_terminator('\n').count(),
            "{what}: a Unicode-aware reader sees more lines than were written: {text:?}"
        );
    }
}

/// `--log-format json` and `WEBHOOK_LISTENER_LOG_FORMAT=json`: every stderr line, start-up and the
/// hostile refusals included, is one JSON object that serde_json parses, with no raw control or
/// line separator (serde_json alone leaves C1 and U+2028 raw).
#[tokio::test]
async fn json_diagnostics_parse_line_by_line() {
    for (args, env) in [
        (&["--log-format", "json"][..], &[][..]),
        (&[][..], &[("WEBHOOK_LISTENER_LOG_FORMAT", "json")][..]),
    ] {
        let p = RawServer::start(&hooks(), args, env);
        for (what, status, request) in hostile_requests() {
            let mark = p.mark();
            assert_eq!(send(p.addr, &request).await, status, "{what}");
            assert!(
                p.wait_for(mark, &format!("\"status\":{status}")),
                "{what}: {}",
                String::from_utf8_lossy(&p.since(mark))
            );
        }
        let all = p.since(0);
        if let Some(problem) = stderr_problems(&all) {
            panic!("{args:?} {env:?}: {problem}");
        }
        let text = String::from_utf8(all).unwrap();
        assert_eq!(splitlines(&text).len(), text.split_terminator('\n').count());
        let mut refusals = 0;
        for line in text.lines() {
            let json: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{args:?} {env:?}: not JSON ({e}): {line}"));
            assert!(
                json["level"].is_string() && json["fields"].is_object(),
                "{line}"
            );
            if json["fields"]["message"] == "request refused" {
                refusals += 1;
                // Plain: the address, or `unknown` for an unparseable forwarding chain.
                let client = json["fields"]["client"].as_str().unwrap_or_default();
                assert!(
                    client == "127.0.0.1" || client == "unknown",
                    "a plain address: {line}"
                );
            }
        }
        assert_eq!(refusals, hostile_requests().len(), "{text}");
    }
}

/// A 422 quotes what the sender sent, and a sender's delivery page shows the answer: a bidi
/// override or a line separator in it comes back as an escape, not raw.
#[tokio::test]
async fn a_422_quotes_the_senders_value_with_its_controls_escaped() {
    let server = Server::start(&netbox_hook("/nb"));
    let body = format!(
        r#"{{"event": "created", "timestamp": {}, "object_type": "dcim.site", "username": "admin", "request_id": "327c526c-42b3-446b-b86d-9a919f1dc429", "data": {{"id": 1}}}}"#,
        ascii_json_string("\u{202e}X\u{2066}\u{2028}")
    );
    let sig = netbox_signature(NETBOX_SECRET.as_bytes(), body.as_bytes());
    let (status, answer) = post(
        &server.url("/nb"),
        &[("x-hook-signature", sig)],
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 422);
    let result = answer["result"].as_str().expect("a result");
    assert!(result.starts_with("timestamp: "), "{result}");
    assert!(
        !result
            .chars()
            .any(|c| matches!(c, '\u{202e}' | '\u{2066}' | '\u{2028}')),
        "{result:?}"
    );
    assert!(result.contains(r"\u{202e}X\u{2066}"), "{result}");
}

/// `client=127.0.0.1`, never `client=Some(127.0.0.1)`, on every refusal.
#[tokio::test]
async fn client_addresses_print_plainly() {
    let server = Server::start(&netbox_hook("/nb"));
    let url = server.url("/nb");
    let (status, _) = post(
        &url,
        &[("x-hook-signature", "00".to_string())],
        netbox_body("x"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &server.url("/nope"),
        &[] as &[(&str, String)],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(server.wait_for_stderr("status=404", T));
    let refused: Vec<String> = server
        .stderr()
        .lines()
        .filter(|l| l.contains("request refused"))
        .map(str::to_string)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    for l in &refused {
        assert!(l.contains(" client=127.0.0.1 "), "{l}");
        assert!(!l.contains("Some("), "{l}");
    }
}

/// A start-up error is printed once (it was printed twice: as a diagnostic and again by main).
#[test]
fn each_startup_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("unknown key", "listen = \"127.0.0.1:0\"\nno_such_key = 1\n", "c.toml"),
        (
            "port in use",
            "listen = \"{taken}\"\n[[hooks]]\npath = \"/a\"\nprovider = \"netbox\"\nsecrets = [\"0123456789abcdef\"]\n",
            "cannot listen on",
        ),
        (
            "missing secret",
            "listen = \"127.0.0.1:0\"\n[[hooks]]\npath = \"/a\"\nprovider = \"netbox\"\nsecrets = [\"env:SURELY_UNSET_FOR_THIS_TEST\"]\n",
            "SURELY_UNSET_FOR_THIS_TEST",
        ),
    ];
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for (what, config, needle) in cases {
        let file = dir.path().join("c.toml");
        let config = config.replace("{taken}", &taken.local_addr().unwrap().to_string());
        std::fs::write(
            &file,
            format!("{config}[log]\nfile = \"{}/e.log\"\n", dir.path().display()),
        )
        .unwrap();
        for format in ["text", "json"] {
            let out = Command::new(bin())
                .args(["--log-format", format, "--config"])
                .arg(&file)
                .env_remove("WEBHOOK_LISTENER_LISTEN")
                .output()
                .unwrap();
            assert!(!out.status.success(), "{what}");
            let err = String::from_utf8_lossy(&out.stderr);
            let naming = err.lines().filter(|l| l.contains(needle)).count();
            assert_eq!(naming, 1, "{what} ({format}): {err}");
            if format == "json" {
                for line in err.lines() {
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {line}"));
                }
            }
        }
    }
}
