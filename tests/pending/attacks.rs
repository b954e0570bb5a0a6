//! Issue #11: every hole found by attacking the service, reproduced against the real binary.
//!
//! One test (or a few) per numbered hole, then the smaller items. Each test states the behaviour
//! the issue's "What to build" asks for, not how the code does it today, so the fixes are written
//! against these tests. Run with `cargo test --test attacks`.
//!
//! Names these tests fix as contract (config keys, metric names, flags, message words) are listed
//! where they are used; message checks match key words (the path, the line number, "not a regular
//! file"), never whole sentences.

mod common;
#[path = "attacks/support.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{hmac_sha512_hex, netbox_body, netbox_hook, NETBOX_SECRET};
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use support::*;
use tokio::io::AsyncWriteExt;

/// Bound on one request in these tests.
const T: Duration = Duration::from_secs(5);
/// Bound on a process that must exit by itself.
const EXIT: Duration = Duration::from_secs(10);

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { nix::libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A server with `trusted_proxies = ["127.0.0.1/32"]`: every test request comes from the proxy.
fn behind_proxy(top: &str, log: &str, hooks: &str) -> Proc {
    Proc::start(|log_path| {
        config_text(
            "127.0.0.1:0",
            &format!("trusted_proxies = [\"127.0.0.1/32\"]\n{top}"),
            log_path,
            log,
            hooks,
        )
    })
}

fn simple(top: &str, log: &str, hooks: &str) -> Proc {
    Proc::start(|log_path| config_text("127.0.0.1:0", top, log_path, log, hooks))
}

// ---------------------------------------------------------------------------------------------
// 1. The allowlist walked around through forwarding headers.
//    Contract: top-level `client_ip_header = "x-forwarded-for" | "forwarded"` (default
//    x-forwarded-for); no fallback from one header to the other; an unparseable chain from a
//    trusted peer is an unknown client: 403 for hooks with `allow_ips` (the diagnostic names the
//    header), `client=unknown` / `"client":"unknown"` in the event log otherwise.
// ---------------------------------------------------------------------------------------------

const UNSIGNED_ALLOWLISTED: &str = "[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\nallow_unsigned = true\nallow_ips = [\"192.0.2.0/24\"]\n";

/// 100 hops, each of them an allowed address: more than any sane proxy chain.
fn hundred_hops() -> Vec<u8> {
    vec!["192.0.2.10"; 100].join(", ").into_bytes()
}

#[tokio::test]
async fn allowlist_is_not_walked_around_with_a_non_ascii_x_forwarded_for() {
    let p = behind_proxy("", "", UNSIGNED_ALLOWLISTED);
    let body = netbox_body(&uuid());

    // The attack: X-Forwarded-For that is not ASCII, plus a client-written Forwarded header.
    let mark = p.stderr_mark();
    let r = post(
        p.addr,
        "/nb",
        &[
            ("X-Forwarded-For", b"\xff"),
            ("Forwarded", b"for=192.0.2.10"),
        ],
        &body,
        T,
    )
    .await
    .unwrap();
    assert_eq!(
        r.status,
        403,
        "unparseable X-Forwarded-For must not fall back to Forwarded: {:?}; log: {:?}",
        r.json(),
        p.log_lines()
    );
    assert!(
        p.wait_for_line(mark, &["403", "x-forwarded-for"], T),
        "the refusal's diagnostic says X-Forwarded-For could not be parsed: {}",
        p.stderr()
    );

    let r = post(
        p.addr,
        "/nb",
        &[("X-Forwarded-For", b"not-an-ip")],
        &body,
        T,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "garbage X-Forwarded-For: {:?}", r.json());

    let hops = hundred_hops();
    let r = post(p.addr, "/nb", &[("X-Forwarded-For", &hops)], &body, T)
        .await
        .unwrap();
    assert_eq!(
        r.status,
        403,
        "a 100-hop chain is not believed: {:?}",
        r.json()
    );
    assert!(
        p.log_lines().is_empty(),
        "nothing refused is logged: {:?}",
        p.log_lines()
    );

    // The honest case still works and logs the real client.
    let r = post(
        p.addr,
        "/nb",
        &[("X-Forwarded-For", b"192.0.2.10")],
        &body,
        T,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    let lines = p.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(" client=192.0.2.10 "), "{}", lines[0]);
}

#[tokio::test]
async fn client_ip_header_forwarded_reads_forwarded_only() {
    let p = behind_proxy("client_ip_header = \"forwarded\"", "", UNSIGNED_ALLOWLISTED);
    let body = netbox_body(&uuid());

    let r = post(
        p.addr,
        "/nb",
        &[("X-Forwarded-For", b"192.0.2.10")],
        &body,
        T,
    )
    .await
    .unwrap();
    assert_eq!(
        r.status, 403,
        "X-Forwarded-For is ignored in forwarded mode"
    );
    let r = post(
        p.addr,
        "/nb",
        &[
            ("X-Forwarded-For", b"192.0.2.10"),
            ("Forwarded", b"for=203.0.113.5"),
        ],
        &body,
        T,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 403, "Forwarded names a client outside allow_ips");
    let r = post(p.addr, "/nb", &[("Forwarded", b"for=unknown")], &body, T)
        .await
        .unwrap();
    assert_eq!(r.status, 403, "an obfuscated Forwarded client is unknown");
    assert!(p.log_lines().is_empty(), "{:?}", p.log_lines());

    let r = post(p.addr, "/nb", &[("Forwarded", b"for=192.0.2.10")], &body, T)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    let lines = p.log_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(" client=192.0.2.10 "), "{}", lines[0]);

    // Any other value is a config error naming the key.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        config_text(
            "127.0.0.1:0",
            "client_ip_header = \"x-real-ip\"",
            &dir.path().join("e.log"),
            "",
            &netbox_hook("/nb"),
        ),
    )
    .unwrap();
    let out = cli(&["check-config", bad.to_str().unwrap()], EXIT);
    assert!(out.failed(), "{}", out.all());
    assert!(out.all().contains("client_ip_header"), "{}", out.all());
}

#[tokio::test]
async fn unparseable_chain_is_logged_as_client_unknown_in_both_formats() {
    for format in ["text", "json"] {
        let p = behind_proxy("", &format!("format = \"{format}\""), &netbox_hook("/nb"));
        let hops = hundred_hops();
        let chains: [&[u8]; 3] = [b"\xff", b"not-an-ip", &hops];
        for chain in chains {
            let body = netbox_body(&uuid());
            let sig = hmac_sha512_hex(NETBOX_SECRET.as_bytes(), &body);
            let r = post(
                p.addr,
                "/nb",
                &[
                    ("X-Hook-Signature", sig.as_bytes()),
                    ("X-Forwarded-For", chain),
                    ("Forwarded", b"for=192.0.2.10"),
                ],
                &body,
                T,
            )
            .await
            .unwrap();
            assert_eq!(r.status, 200, "{format}: no allowlist, so accepted");
            let line = p.log_lines().pop().unwrap();
            let client = match format {
                "text" => text_field(&line, "client"),
                _ => serde_json::from_str::<serde_json::Value>(&line).unwrap()["client"]
                    .as_str()
                    .map(str::to_string),
            };
            assert_eq!(
                client.as_deref(),
                Some("unknown"),
                "{format}, chain {:?}: the log never guesses an address: {line}",
                String::from_utf8_lossy(chain)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Secrets printed by config errors. Contract: check-config, start-up and a refused reload name
//    the file, the line (and a column) and the key where there is one, and never quote the source.
// ---------------------------------------------------------------------------------------------

const LEAKED: &str = "hunter2";

/// The config with `line7` as line 7 (the hook's third line).
fn seven_lines(log: &Path, line7: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\n[log]\nfile = {:?}\n[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\n{line7}\n",
        log.display().to_string()
    )
}

struct Broken {
    what: &'static str,
    line7: &'static str,
    /// The key the message must name, if the error has one.
    key: Option<&'static str>,
    /// Lines the message may name (a syntax error at the end of the file may point past it).
    lines: &'static [usize],
}

const BROKEN: [Broken; 3] = [
    Broken {
        what: "unknown key (typo)",
        line7: "secret = [\"hunter2-secret-value\"]",
        key: Some("secret"),
        lines: &[7],
    },
    Broken {
        what: "wrong type",
        line7: "secrets = \"hunter2-secret-value\"",
        key: Some("secrets"),
        lines: &[7],
    },
    Broken {
        what: "unclosed array",
        line7: "secrets = [\"hunter2-secret-value\"",
        key: None,
        lines: &[7, 8],
    },
];

/// Whether `msg` names `word` as a whole word (so `secrets` does not count as `secret`).
fn names_word(msg: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    msg.match_indices(word).any(|(i, _)| {
        let before = msg[..i].chars().next_back();
        let after = msg[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Whether `msg` names one of `lines`: `line 7` (prose) or `FILE:7` (compiler style).
fn names_line(msg: &str, file: &str, lines: &[usize]) -> bool {
    lines.iter().any(|n| {
        ["line ", "line: ", "line="]
            .iter()
            .any(|p| names_word(msg, &format!("{p}{n}")))
            || msg
                .match_indices(&format!("{file}:{n}"))
                .any(|(i, m)| !msg[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Whether `msg` gives a column: `column 3` (prose) or `FILE:7:3` (compiler style).
fn names_column(msg: &str, file: &str, lines: &[usize]) -> bool {
    let prose = msg.to_ascii_lowercase().split("column").skip(1).any(|r| {
        r.trim_start_matches([' ', ':', '='])
            .starts_with(|c: char| c.is_ascii_digit())
    });
    prose
        || lines.iter().any(|n| {
            msg.match_indices(&format!("{file}:{n}:"))
                .any(|(i, m)| msg[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
        })
}

#[test]
fn message_matchers_accept_the_usual_shapes() {
    let file = "/etc/wl/config.toml";
    let compiler = "/etc/wl/config.toml:7:1: unknown key `secret` in [[hooks]]";
    let prose =
        "invalid config /etc/wl/config.toml, line 7, column 11: key `secrets`: expected an array";
    for msg in [compiler, prose] {
        assert!(names_line(msg, file, &[7]), "{msg}");
        assert!(names_column(msg, file, &[7]), "{msg}");
        assert!(!names_line(msg, file, &[1, 17]), "{msg}");
    }
    assert!(names_word(compiler, "secret") && !names_word(compiler, "secrets"));
    assert!(names_word(prose, "secrets") && !names_word(prose, "secret"));
    assert!(!names_column("/etc/wl/config.toml: line 7", file, &[7]));
}

fn check_config_message(b: &Broken, via: &str, file: &Path, msg: &str) {
    let ctx = format!("{} via {via}:\n{msg}", b.what);
    assert!(!msg.contains(LEAKED), "secret printed: {ctx}");
    let file = file.display().to_string();
    assert!(msg.contains(&file), "names the file: {ctx}");
    assert!(names_line(msg, &file, b.lines), "names the line: {ctx}");
    assert!(names_column(msg, &file, b.lines), "names a column: {ctx}");
    if let Some(key) = b.key {
        assert!(names_word(msg, key), "names the key {key:?}: {ctx}");
    }
}

#[test]
fn config_errors_in_check_config_and_start_up_never_print_the_secret() {
    for b in &BROKEN {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, seven_lines(&dir.path().join("e.log"), b.line7)).unwrap();

        let out = cli(&["check-config", file.to_str().unwrap()], EXIT);
        assert!(
            out.failed(),
            "{}: check-config must fail: {}",
            b.what,
            out.all()
        );
        check_config_message(b, "check-config", &file, &out.all());

        let out = cli(&["--config", file.to_str().unwrap()], EXIT);
        assert!(
            out.failed(),
            "{}: start-up must fail: {}",
            b.what,
            out.all()
        );
        check_config_message(b, "start-up", &file, &out.all());
    }
}

#[test]
fn refused_reload_never_prints_the_secret() {
    let p = Proc::start(|log| seven_lines(log, "secrets = [\"good-secret-1\"]"));
    for b in &BROKEN {
        let mark = p.stderr_mark();
        std::fs::write(&p.config_path, seven_lines(&p.log_path, b.line7)).unwrap();
        p.signal(Signal::SIGHUP);
        assert!(
            p.wait_for_line(mark, &["reload refused"], EXIT),
            "{}: no refusal line: {}",
            b.what,
            p.stderr()
        );
        let msg = String::from_utf8_lossy(&p.stderr_since(mark)).into_owned();
        check_config_message(b, "SIGHUP reload", &p.config_path, &msg);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Memory. Contract: top-level `max_buffered_bytes`, body bytes held across all requests,
//    reserved against the declared Content-Length before reading (chunked: as bytes arrive); a
//    request that does not fit gets 503 + Retry-After at once. Memory comes back after a flood.
// ---------------------------------------------------------------------------------------------

/// What one flooding connection saw.
struct Flooded {
    response: Result<RawResponse, String>,
    /// Kept open (not half-closed) until the test drops it: the attacker waits.
    _conn: Option<(
        tokio::net::tcp::OwnedReadHalf,
        tokio::net::tcp::OwnedWriteHalf,
    )>,
}

/// Sends `head`, then `body` in 64 KiB pieces while reading the answer; neither side waits longer
/// than `timeout`. The connection is never half-closed: it stays open in the result.
async fn stream_request(
    addr: std::net::SocketAddr,
    head: Vec<u8>,
    body: Vec<u8>,
    timeout: Duration,
) -> Flooded {
    let conn = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(c)) => c,
        other => {
            return Flooded {
                response: Err(format!("connect: {other:?}")),
                _conn: None,
            }
        }
    };
    let (mut rd, mut wr) = conn.into_split();
    let write = async {
        let deadline = tokio::time::Instant::now() + timeout;
        if tokio::time::timeout_at(deadline, wr.write_all(&head))
            .await
            .is_ok()
        {
            for piece in body.chunks(64 * 1024) {
                match tokio::time::timeout_at(deadline, wr.write_all(piece)).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
            }
        }
    };
    let (_, response) = tokio::join!(write, read_response(&mut rd, timeout));
    Flooded {
        response,
        _conn: Some((rd, wr)),
    }
}

fn declared_head(path: &str, len: usize) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nX-Hook-Signature: 00\r\nContent-Length: {len}\r\n\r\n").into_bytes()
}

/// A chunked request whose body is `total` bytes in 64 KiB chunks, with a bogus signature.
fn chunked_request(path: &str, total: usize) -> (Vec<u8>, Vec<u8>) {
    let head = format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nX-Hook-Signature: 00\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    let mut body = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(64 * 1024);
        body.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        body.extend_from_slice(&vec![b' '; n]);
        body.extend_from_slice(b"\r\n");
        left -= n;
    }
    body.extend_from_slice(b"0\r\n\r\n");
    (head, body)
}

/// Polls VmRSS until it is at most `bound` bytes; the last reading either way.
fn rss_settles_below(p: &Proc, bound: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let rss = p.status_kib("VmRSS") * 1024;
        if rss <= bound || Instant::now() > deadline {
            return rss;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_budget_refuses_what_does_not_fit_at_once_and_small_requests_pass() {
    let _heavy = heavy().await;
    let budget: u64 = 4 * MIB;
    let p = simple(
        &format!(
            "max_buffered_bytes = {budget}\nmax_body_bytes = 1000000\nrequest_timeout_secs = 30"
        ),
        "",
        &netbox_hook("/nb"),
    );
    let warm = post_netbox_signed(p.addr, "/nb", NETBOX_SECRET, &netbox_body(&uuid()), T)
        .await
        .unwrap();
    assert_eq!(warm.status, 200);
    let baseline = p.status_kib("VmRSS") * 1024;

    // 64 clients declare 1,000,000 bytes, send all but one byte with a bogus signature, and wait.
    let flood: Vec<_> = (0..64)
        .map(|_| {
            tokio::spawn(stream_request(
                p.addr,
                declared_head("/nb", 1_000_000),
                vec![b' '; 999_999],
                Duration::from_secs(8),
            ))
        })
        .collect();
    let mut conns = Vec::new();
    for f in flood {
        conns.push(f.await.unwrap());
    }
    let refused = conns
        .iter()
        .filter(|c| {
            c.response
                .as_ref()
                .is_ok_and(|r| r.status == 503 && r.header("retry-after").is_some())
        })
        .count();
    let seen: Vec<String> = conns
        .iter()
        .map(|c| match &c.response {
            Ok(r) => r.status.to_string(),
            Err(e) => e.clone(),
        })
        .collect();

    // Meanwhile (the budget is held by the clients that fit): a small signed request gets through,
    // and a chunked body that grows past what is left is refused.
    let small = post_netbox_signed(p.addr, "/nb", NETBOX_SECRET, &netbox_body(&uuid()), T).await;
    let (head, body) = chunked_request("/nb", 600_000);
    let chunked = stream_request(p.addr, head, body, Duration::from_secs(8)).await;
    let peak = p.status_kib("VmHWM") * 1024;

    assert!(
        refused >= 48,
        "at most ~4 of 64 fit a 4 MiB budget; the rest must get 503 + Retry-After within 8 s, \
         got {refused} such answers: {seen:?}"
    );
    assert_eq!(small.map(|r| r.status), Ok(200), "small requests pass");
    match &chunked.response {
        Ok(r) => {
            assert_eq!(
                r.status,
                503,
                "chunked body past the budget: {:?}",
                r.json()
            );
            assert!(r.header("retry-after").is_some());
        }
        Err(e) => panic!("chunked body past the budget got no answer: {e}"),
    }
    let bound = baseline + 4 * budget + 32 * MIB;
    assert!(
        peak <= bound,
        "peak RSS {} MiB over the bound {} MiB (baseline {} MiB)",
        peak / MIB,
        bound / MIB,
        baseline / MIB
    );

    drop(conns);
    drop(chunked);
    let after = rss_settles_below(&p, baseline + 32 * MIB, Duration::from_secs(10));
    assert!(
        after <= baseline + 32 * MIB,
        "RSS {} MiB 10 s after the clients left (baseline {} MiB)",
        after / MIB,
        baseline / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_comes_back_after_a_flood_of_stalled_bodies() {
    let _heavy = heavy().await;
    // Default budget (the issue suggests 64 MiB): these 48 MB fit in it and are really buffered.
    let p = simple("request_timeout_secs = 30", "", &netbox_hook("/nb"));
    let warm = post_netbox_signed(p.addr, "/nb", NETBOX_SECRET, &netbox_body(&uuid()), T)
        .await
        .unwrap();
    assert_eq!(warm.status, 200);
    let baseline = p.status_kib("VmRSS") * 1024;

    let flood: Vec<_> = (0..48)
        .map(|_| {
            tokio::spawn(stream_request(
                p.addr,
                declared_head("/nb", 1_000_000),
                vec![b' '; 999_999],
                Duration::from_secs(6),
            ))
        })
        .collect();
    let mut conns = Vec::new();
    for f in flood {
        conns.push(f.await.unwrap());
    }
    let peak = p.status_kib("VmHWM") * 1024;
    drop(conns);
    let bound = baseline + 16 * MIB;
    let after = rss_settles_below(&p, bound, Duration::from_secs(10));
    assert!(
        after <= bound,
        "RSS {} MiB 10 s after 48 stalled 1 MB bodies were dropped (baseline {} MiB, peak {} MiB)",
        after / MIB,
        baseline / MIB,
        peak / MIB
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The writer never blocks without bound. Contract: the log is opened without blocking and
//    anything but a regular file is refused ("not a regular file", the path); requests get 503
//    before request_timeout_secs, /healthz says degraded, SIGTERM exits within
//    shutdown_timeout_secs with a non-zero status and a line counting unsynced and refused events.
// ---------------------------------------------------------------------------------------------

#[test]
fn event_log_that_is_a_fifo_is_refused_at_start_up() {
    let started = Proc::try_start(
        |log| {
            mkfifo(log);
            config_text("127.0.0.1:0", "", log, "", &netbox_hook("/nb"))
        },
        EXIT,
    );
    let e = match started {
        Ok(p) => panic!("served with a FIFO as the event log: {}", p.stderr()),
        Err(e) => e,
    };
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        e.status.is_some_and(|s| !s.success()),
        "start-up must exit non-zero at once, not hang (status {:?}): {err}",
        e.status
    );
    assert!(err.contains("events.log"), "names the path: {err}");
    assert!(
        err.to_ascii_lowercase().contains("not a regular file"),
        "says what is wrong: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_log_replaced_by_a_fifo_answers_503_degrades_and_sigterm_still_exits() {
    let mut p = simple(
        "request_timeout_secs = 5\nshutdown_timeout_secs = 3",
        "",
        &netbox_hook("/nb"),
    );
    let r = post_netbox_signed(p.addr, "/nb", NETBOX_SECRET, &netbox_body(&uuid()), T)
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    std::fs::remove_file(&p.log_path).unwrap();
    mkfifo(&p.log_path);
    let mark = p.stderr_mark();
    p.signal(Signal::SIGHUP);
    assert!(p.wait_for_line(mark, &["reloaded"], EXIT), "{}", p.stderr());

    // Within request_timeout_secs (5): an answer, and it is 503.
    let r = post_netbox_signed(
        p.addr,
        "/nb",
        NETBOX_SECRET,
        &netbox_body(&uuid()),
        Duration::from_secs(5),
    )
    .await;
    match r {
        Ok(r) => {
            assert_eq!(r.status, 503, "{:?}", r.json());
            assert!(r.header("retry-after").is_some());
        }
        Err(e) => panic!("a request with the log on a FIFO got no answer within 5 s: {e}"),
    }
    let health = get(p.addr, "/healthz", T).await.unwrap();
    assert_eq!(health.json()["result"], "degraded", "{:?}", health.json());
    assert!(
        p.find_line(mark, &["not a regular file"])
            .is_some_and(|l| l.contains(&p.log_path.display().to_string())),
        "a diagnostic names the path and what is wrong: {}",
        p.stderr()
    );

    let mark = p.stderr_mark();
    p.signal(Signal::SIGTERM);
    let status = p.wait_exit(Duration::from_secs(3 + 5));
    assert!(
        status.is_some(),
        "SIGTERM must exit within shutdown_timeout_secs: {}",
        p.stderr()
    );
    assert!(
        !status.unwrap().success(),
        "exit status says events were refused"
    );
    let summary = p.find_line(mark, &["unsynced", "refused"]);
    assert!(
        summary.as_ref().is_some_and(|l| l.contains('0')),
        "a line counts acknowledged-but-unsynced (0) and refused events: {}",
        String::from_utf8_lossy(&p.stderr_since(mark))
    );
}

#[test]
fn dev_stdout_with_fsync_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        config_text(
            "127.0.0.1:0",
            "",
            Path::new("/dev/stdout"),
            "fsync = true",
            &netbox_hook("/nb"),
        ),
    )
    .unwrap();
    // stdout is a pipe here, as under a container runtime: it cannot be synced.
    let started = Proc::spawn(
        dir,
        config_path,
        "/dev/stdout".into(),
        std::process::Stdio::piped(),
        EXIT,
    );
    let e = match started {
        Ok(p) => panic!(
            "served with fsync = true on /dev/stdout (a pipe): {}",
            p.stderr()
        ),
        Err(e) => e,
    };
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(e.status.is_some_and(|s| !s.success()), "{err}");
    assert!(err.contains("/dev/stdout"), "names the path: {err}");
}

// ---------------------------------------------------------------------------------------------
// 5. Reload off the accept loop. Contract: SIGHUP reads config and secrets on a blocking worker
//    with a timeout; a secret file that is not a regular file is refused ("not a regular file");
//    a read that does not finish in time is refused; the old config stays; serving and SIGTERM
//    are never held up.
// ---------------------------------------------------------------------------------------------

fn secret_file_hook(path: &Path) -> String {
    format!(
        "[[hooks]]\npath = \"/nb\"\nprovider = \"netbox\"\nsecrets = [\"file:{}\"]\n",
        path.display()
    )
}

async fn status_with(p: &Proc, secret: &str) -> Result<u16, String> {
    post_netbox_signed(p.addr, "/nb", secret, &netbox_body(&uuid()), T)
        .await
        .map(|r| r.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_meeting_a_fifo_secret_file_is_refused_and_never_stops_serving() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("netbox-secret");
    std::fs::write(&secret, "old-secret\n").unwrap();
    let mut p = simple("shutdown_timeout_secs = 3", "", &secret_file_hook(&secret));
    assert_eq!(status_with(&p, "old-secret").await, Ok(200));

    std::fs::remove_file(&secret).unwrap();
    mkfifo(&secret);
    let mark = p.stderr_mark();
    p.signal(Signal::SIGHUP);
    assert!(
        p.wait_for_line(mark, &["reload refused"], EXIT),
        "the reload is refused at once: {}",
        p.stderr()
    );
    let since = String::from_utf8_lossy(&p.stderr_since(mark)).into_owned();
    assert!(
        since.to_ascii_lowercase().contains("not a regular file")
            && since.contains(&secret.display().to_string()),
        "the diagnostic names the secret file and what is wrong: {since}"
    );
    assert_eq!(status_with(&p, "old-secret").await, Ok(200), "old config");
    assert_eq!(get(p.addr, "/healthz", T).await.map(|r| r.status), Ok(200));
    p.signal(Signal::SIGTERM);
    let status = p.wait_exit(Duration::from_secs(3 + 5));
    assert!(status.is_some_and(|s| s.success()), "{}", p.stderr());
}

/// Holds a write lease on a file: anyone who opens it blocks until the lease is dropped (or
/// the kernel's lease-break-time, 45 s by default, passes). A regular file whose read blocks, like
/// one on a hung network mount, without needing root.
struct Lease {
    fd: std::os::fd::OwnedFd,
    ino: u64,
}

impl Lease {
    fn take(path: &Path) -> Lease {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        // The lease-break notice is SIGIO to this process; by default it would kill the tests.
        unsafe {
            nix::sys::signal::signal(Signal::SIGIO, nix::sys::signal::SigHandler::SigIgn).unwrap();
        }
        let file = std::fs::File::open(path).unwrap();
        let ino = file.metadata().unwrap().ino();
        let fd: std::os::fd::OwnedFd = file.into();
        let rc =
            unsafe { nix::libc::fcntl(fd.as_raw_fd(), nix::libc::F_SETLEASE, nix::libc::F_WRLCK) };
        assert_eq!(
            rc,
            0,
            "F_SETLEASE on {} failed: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        Lease { fd, ino }
    }

    /// Whether someone has tried to open the file (the kernel is breaking the lease).
    fn breaking(&self) -> bool {
        let _ = &self.fd;
        std::fs::read_to_string("/proc/locks")
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains(&format!(":{} ", self.ino)) && l.contains("BREAKING"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_whose_secret_read_blocks_times_out_and_keeps_the_old_config() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("netbox-secret");
    std::fs::write(&secret, "old-secret\n").unwrap();
    let mut p = simple("shutdown_timeout_secs = 3", "", &secret_file_hook(&secret));
    assert_eq!(status_with(&p, "old-secret").await, Ok(200));

    std::fs::write(&secret, "new-secret\n").unwrap();
    let lease = Lease::take(&secret);
    let mark = p.stderr_mark();
    p.signal(Signal::SIGHUP);
    // Readiness: the server has tried to open the secret file.
    let deadline = Instant::now() + EXIT;
    while !lease.breaking() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(lease.breaking(), "the reload never opened the secret file");

    // While the read hangs, everything is served as before.
    assert_eq!(
        status_with(&p, "old-secret").await,
        Ok(200),
        "requests are served while a reload's secret read hangs"
    );
    assert_eq!(get(p.addr, "/healthz", T).await.map(|r| r.status), Ok(200));
    assert!(
        p.wait_for_line(mark, &["reload refused"], Duration::from_secs(20)),
        "a reload whose read hangs is refused after a timeout (well before the kernel's 45 s): {}",
        p.stderr()
    );
    assert_eq!(
        status_with(&p, "old-secret").await,
        Ok(200),
        "old config stays"
    );
    assert_eq!(status_with(&p, "new-secret").await, Ok(401));

    // Once the file can be read again, the next SIGHUP takes it.
    drop(lease);
    let mark = p.stderr_mark();
    p.signal(Signal::SIGHUP);
    assert!(
        p.wait_for_line(mark, &["config reloaded"], EXIT),
        "{}",
        p.stderr()
    );
    assert_eq!(status_with(&p, "new-secret").await, Ok(200));
    p.signal(Signal::SIGTERM);
    assert!(
        p.wait_exit(Duration::from_secs(3 + 5)).is_some(),
        "{}",
        p.stderr()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Replay protection flushed. Contract: one bounded table per hook; an eviction inside the
//    window is counted in `webhook_listener_dedupe_evictions_total{hook="…"}` and logged; ids over
//    the cap (256) are hashed for the table, never a reason to skip de-duplication; body-derived
//    ids get the same cap.
// ---------------------------------------------------------------------------------------------

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_HOOK: &str = "[[hooks]]\npath = \"/sw\"\nprovider = \"standard-webhooks\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n";
const GITLAB_HOOK: &str =
    "[[hooks]]\npath = \"/gl\"\nprovider = \"gitlab\"\nsecrets = [\"gitlab-token\"]\n";
const STRIPE_SECRET: &str = "whsec_stripe_test";
const STRIPE_HOOK: &str =
    "[[hooks]]\npath = \"/stripe\"\nprovider = \"stripe\"\nsecrets = [\"whsec_stripe_test\"]\n";

async fn post_sw(p: &Proc, id: &str, ts: i64, body: &[u8]) -> RawResponse {
    let headers = standard_webhooks_headers(WHSEC, id, ts, body);
    post(p.addr, "/sw", &as_refs(&headers), body, T)
        .await
        .unwrap()
}

fn lines_for(p: &Proc, hook: &str) -> usize {
    p.log_lines()
        .iter()
        .filter(|l| l.contains(&format!(" hook={hook} ")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hooks_traffic_cannot_flush_another_hooks_delivery_ids() {
    let p = simple(
        "dedupe_max_entries = 50",
        "",
        &format!("{SW_HOOK}{GITLAB_HOOK}"),
    );
    let ts = now();
    let body = br#"{"type":"invoice.paid","data":{"id":1}}"#;
    let first = post_sw(&p, "msg_captured_delivery", ts, body).await;
    assert_eq!(first.status, 200);
    assert_ne!(first.json()["duplicate"], true);

    // A stranger who knows GitLab's static token picks 200 fresh Idempotency-Keys.
    let addr = p.addr;
    let statuses: Vec<u16> = futures_util::stream::iter(0..200)
        .map(|i| async move {
            let body = format!("{{\"flood\":{i}}}");
            let key = format!("flood-{i}");
            post(
                addr,
                "/gl",
                &[
                    ("X-Gitlab-Token", b"gitlab-token"),
                    ("Idempotency-Key", key.as_bytes()),
                ],
                body.as_bytes(),
                Duration::from_secs(20),
            )
            .await
            .map(|r| r.status)
            .unwrap_or(0)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");

    let replay = post_sw(&p, "msg_captured_delivery", ts, body).await;
    assert_eq!(replay.status, 200);
    assert_eq!(
        replay.json()["duplicate"],
        true,
        "the captured delivery is replayed after another hook's flood: {:?}",
        replay.json()
    );
    assert_eq!(lines_for(&p, "/sw"), 1, "logged once");

    let metrics = get(p.addr, "/metrics", T).await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    let evicted = text
        .lines()
        .find(|l| {
            l.starts_with("webhook_listener_dedupe_evictions_total{") && l.contains("hook=\"/gl\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(
        evicted.is_some_and(|n| n > 0.0),
        "ids evicted inside their window are counted per hook: {text}"
    );
    assert!(
        p.stderr().to_ascii_lowercase().contains("evict"),
        "and logged: {}",
        p.stderr()
    );
}

#[tokio::test]
async fn a_standard_webhooks_id_over_256_chars_is_still_deduplicated() {
    let p = simple("", "", SW_HOOK);
    let id = format!("msg_{}", "a".repeat(296));
    assert_eq!(id.len(), 300);
    let body = br#"{"type":"invoice.paid"}"#;
    let ts = now();
    let first = post_sw(&p, &id, ts, body).await;
    assert_eq!(first.status, 200, "{:?}", first.json());
    let again = post_sw(&p, &id, ts, body).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicate"], true, "{:?}", again.json());
    assert_eq!(lines_for(&p, "/sw"), 1);
}

fn stripe_event(id: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","object":"event","type":"charge.succeeded","data":{{"object":{{}}}}}}"#
    )
    .into_bytes()
}

async fn post_stripe(p: &Proc, body: &[u8]) -> RawResponse {
    let sig = stripe_header(STRIPE_SECRET, now(), body);
    post(p.addr, "/stripe", &[("Stripe-Signature", &sig)], body, T)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_delivery_ids_are_capped_in_memory_and_still_deduplicated() {
    let _heavy = heavy().await;
    let p = simple("", "", STRIPE_HOOK);
    let long = format!("evt_{}", "x".repeat(10_000));
    let first = post_stripe(&p, &stripe_event(&long)).await;
    assert_eq!(first.status, 200, "{:?}", first.json());
    let again = post_stripe(&p, &stripe_event(&long)).await;
    assert_eq!(again.json()["duplicate"], true, "{:?}", again.json());
    assert_eq!(lines_for(&p, "/stripe"), 1);

    // 48 events whose ids are ~900 kB each: the table must not keep them.
    let baseline = p.status_kib("VmRSS") * 1024;
    for i in 0..48 {
        let id = format!("evt_{i}_{}", "y".repeat(900_000));
        let r = post_stripe(&p, &stripe_event(&id)).await;
        assert_eq!(r.status, 200, "{:?}", r.json());
    }
    let bound = baseline + 32 * MIB;
    let after = rss_settles_below(&p, bound, Duration::from_secs(10));
    assert!(
        after <= bound,
        "RSS {} MiB after 48 events with 900 kB ids (baseline {} MiB): ids are held whole",
        after / MIB,
        baseline / MIB
    );
}

// ---------------------------------------------------------------------------------------------
// 7. The event log forged for its readers. Contract: one event is one line for a Unicode-aware
//    reader; no C0 (tab included), DEL, C1, U+2028 or U+2029 anywhere in a line; values escaped,
//    not dropped (they decode back to what was sent).
// ---------------------------------------------------------------------------------------------

/// The typed fields of one NetBox event, as strings.
struct Fields {
    username: String,
    object_type: String,
    url: String,
    name: String,
}

impl Fields {
    fn new(username: &str, object_type: &str, url: &str, name: &str) -> Fields {
        Fields {
            username: username.into(),
            object_type: object_type.into(),
            url: url.into(),
            name: name.into(),
        }
    }

    /// The body, in pure ASCII (`\u` escapes) or with the characters raw.
    fn body(&self, ascii: bool, request_id: &str) -> Vec<u8> {
        let lit = |s: &str| {
            if ascii {
                ascii_json_string(s)
            } else {
                serde_json::to_string(s).unwrap()
            }
        };
        netbox_body_with(
            &lit(&self.username),
            &lit(&self.object_type),
            &lit(&self.url),
            &lit(&self.name),
            request_id,
        )
    }
}

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Checks one event's line: nothing a terminal or line reader acts on, and its typed fields and
/// payload decode to what was sent (escaped, not dropped or replaced).
fn check_line(format: &str, line: &str, f: &Fields, body: &[u8]) -> Result<(), String> {
    let bad = forbidden_in(line);
    ensure!(bad.is_empty(), "{format}: {bad:?} in {line:?}");
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    let (username, model, url, payload) = if format == "json" {
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| format!("json: line is not JSON ({e}): {line:?}"))?;
        let s = |k: &str| v[k].as_str().map(str::to_string);
        (
            s("username"),
            s("model"),
            s("object_url"),
            v["payload"].clone(),
        )
    } else {
        let (fields, payload) = parse_text_line(line)
            .ok_or_else(|| format!("text: not `time key=value… {{payload}}`: {line:?}"))?;
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        (get("username"), get("model"), get("url"), payload)
    };
    for (what, got, sent) in [
        ("username", username, &f.username),
        ("model", model, &f.object_type),
        ("url", url, &f.url),
    ] {
        ensure!(
            got.as_deref() == Some(sent.as_str()),
            "{format}: {what} reads back as {got:?}, sent {sent:?}: {line:?}"
        );
    }
    ensure!(
        payload == body,
        "{format}: the payload decodes to {payload}, sent {body}"
    );
    Ok(())
}

/// Checks the whole log: one line per event for a Unicode-aware reader, each as [`check_line`].
fn check_log(p: &Proc, format: &str, sent: &[(Fields, Vec<u8>)]) {
    let text = p.log_text();
    let lines = splitlines(&text);
    assert_eq!(
        lines.len(),
        sent.len(),
        "{format}: a Unicode-aware reader sees {} lines for {} events: {text:?}",
        lines.len(),
        sent.len()
    );
    for (line, (f, body)) in lines.iter().zip(sent) {
        if let Err(e) = check_line(format, line, f, body) {
            panic!("{e}");
        }
    }
}

async fn log_forging(format: &str) {
    let p = simple("", &format!("format = \"{format}\""), &netbox_hook("/nb"));
    let cases = [
        (
            Fields::new("\u{9b}2J", "\u{85}", "\u{2028}x", "\u{1b}[31mred"),
            true,
        ),
        (
            Fields::new(
                "\u{1b}[31m\u{7f}",
                "dcim.site\u{2029}",
                "/a\u{0}b\tc\u{1c}d",
                "ok",
            ),
            true,
        ),
        // Not ASCII: é and a raw U+2028 / NEL inside strings, as a sender may well send them.
        (
            Fields::new("José", "dcim.site", "/x\u{2028}y", "a\u{2028}b\u{85}c"),
            false,
        ),
    ];
    let mut sent = Vec::new();
    for (f, ascii) in cases {
        let body = f.body(ascii, &uuid());
        let r = post_netbox_signed(p.addr, "/nb", NETBOX_SECRET, &body, T)
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{:?}", r.json());
        sent.push((f, body));
    }
    check_log(&p, format, &sent);
}

#[tokio::test]
async fn text_log_cannot_be_forged_with_controls_or_line_separators() {
    log_forging("text").await;
}

#[tokio::test]
async fn json_log_cannot_be_forged_with_controls_or_line_separators() {
    log_forging("json").await;
}

/// Strings rich in what breaks logs: C0, DEL, C1, U+2028/2029, quotes, `=`, spaces, and anything.
fn hostile_string() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let c = prop_oneof![
        proptest::char::range('\u{0}', '\u{1f}'),
        proptest::char::range('\u{7f}', '\u{9f}'),
        Just('\u{2028}'),
        Just('\u{2029}'),
        prop::sample::select(vec!['"', '\\', '=', ' ', '{', '}']),
        proptest::char::range(' ', '~'),
        any::<char>(),
    ];
    proptest::collection::vec(c, 0..24).prop_map(|v| v.into_iter().collect())
}

#[test]
fn any_signed_username_or_url_stays_one_clean_line_in_both_formats() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let servers: Vec<(&str, Proc)> = ["text", "json"]
        .into_iter()
        .map(|f| {
            (
                f,
                simple("", &format!("format = \"{f}\""), &netbox_hook("/nb")),
            )
        })
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: 32,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (hostile_string(), hostile_string(), any::<bool>());
    let result = runner.run(&strategy, |(username, url, ascii)| {
        let f = Fields::new(&username, "dcim.site", &url, "n");
        let body = f.body(ascii, &uuid());
        for (format, p) in &servers {
            // Only this event's line is checked, so a shrunk case is the real culprit.
            let before = splitlines(&p.log_text()).len();
            let r = rt
                .block_on(post_netbox_signed(p.addr, "/nb", NETBOX_SECRET, &body, T))
                .map_err(|e| TestCaseError::fail(format!("{format}: {e}")))?;
            prop_assert_eq!(r.status, 200, "{}: {:?}", format, r.json());
            let text = p.log_text();
            let lines = splitlines(&text);
            prop_assert_eq!(
                lines.len(),
                before + 1,
                "{}: one event, {} lines: {:?}",
                format,
                lines.len().saturating_sub(before),
                lines.get(before..)
            );
            check_line(format, lines[before], &f, &body).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Diagnostics carrying raw control bytes. Contract: stderr is UTF-8 with no C0 (but the line
//    end), DEL, C1, U+2028, U+2029, whatever a request holds; each diagnostic is one line.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn diagnostics_never_carry_control_characters_from_a_request() {
    let hooks = format!(
        "{}[[hooks]]\npath = \"/allow\"\nprovider = \"netbox\"\nallow_unsigned = true\nallow_ips = [\"192.0.2.0/24\"]\n",
        netbox_hook("/nb")
    );
    let p = behind_proxy("", "", &hooks);

    let bad_uuid = format!(
        r#"{{"event": "created", "timestamp": "2026-11-23T15:20:42.036573+00:00", "object_type": "dcim.site", "username": "admin", "request_id": {}, "data": {{"id": 1}}}}"#,
        ascii_json_string("\u{1b}[2J\u{9b}X")
    );
    let bad_time = format!(
        r#"{{"event": "created", "timestamp": {}, "object_type": "dcim.site", "username": "admin", "data": {{"id": 1}}}}"#,
        ascii_json_string("\u{1b}]0;pwned\u{7}\u{9b}\u{2028}")
    );
    let unsigned = netbox_body(&uuid());
    let cases: Vec<(&str, u16, Vec<u8>)> = vec![
        ("request_id not a UUID", 422, {
            let sig = hmac_sha512_hex(NETBOX_SECRET.as_bytes(), bad_uuid.as_bytes());
            post_bytes(
                "/nb",
                &[("X-Hook-Signature", sig.as_bytes())],
                bad_uuid.as_bytes(),
            )
        }),
        ("timestamp not a time", 422, {
            let sig = hmac_sha512_hex(NETBOX_SECRET.as_bytes(), bad_time.as_bytes());
            post_bytes(
                "/nb",
                &[("X-Hook-Signature", sig.as_bytes())],
                bad_time.as_bytes(),
            )
        }),
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
                &[("X-Hook-Signature", b"\xc2\x9b2J\xe2\x80\xa8\x85\x9b")],
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
    ];
    for (what, status, request) in cases {
        let mark = p.stderr_mark();
        let r = send(p.addr, &request, T).await.unwrap();
        assert_eq!(r.status, status, "{what}: {:?}", r.json());
        assert!(
            p.wait_for_line(mark, &[&status.to_string()], T),
            "{what}: the refusal is in the diagnostics: {}",
            p.stderr()
        );
        let since = p.stderr_since(mark);
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

// ---------------------------------------------------------------------------------------------
// 9. Keys that are the empty key. Contract: a secret whose key bytes are all zero is refused at
//    load and by check-config, naming the hook and never the key; one under 16 bytes only warns.
// ---------------------------------------------------------------------------------------------

#[test]
fn all_zero_keys_are_refused_and_short_keys_only_warn() {
    let dir = tempfile::tempdir().unwrap();
    let nul = dir.path().join("nul-secret");
    std::fs::write(&nul, [0u8]).unwrap();
    let zero32 = format!("whsec_{}", b64(&[0u8; 32]));
    let refused = [
        ("/sw-zero", "standard-webhooks", "whsec_AAAA".to_string()),
        ("/sw-zero32", "standard-webhooks", zero32),
        ("/nb-nul", "netbox", format!("file:{}", nul.display())),
    ];
    for (path, provider, secret) in &refused {
        let file = dir.path().join(format!("{}.toml", &path[1..]));
        std::fs::write(
            &file,
            config_text(
                "127.0.0.1:0",
                "",
                &dir.path().join("e.log"),
                "",
                &format!("[[hooks]]\npath = \"{path}\"\nprovider = \"{provider}\"\nsecrets = [\"{secret}\"]\n"),
            ),
        )
        .unwrap();
        let key_text = secret.strip_prefix("whsec_").unwrap_or("\u{0}");
        for args in [
            vec!["check-config", file.to_str().unwrap()],
            vec!["--config", file.to_str().unwrap()],
        ] {
            let out = cli(&args, EXIT);
            let all = out.all();
            assert!(out.failed(), "{path} via {args:?}: refused: {all}");
            assert!(
                all.contains(path),
                "{path} via {args:?}: names the hook: {all}"
            );
            assert!(
                !all.contains(key_text),
                "{path}: never prints the key: {all}"
            );
        }
    }

    let file = dir.path().join("short.toml");
    std::fs::write(
        &file,
        config_text(
            "127.0.0.1:0",
            "",
            &dir.path().join("e.log"),
            "",
            "[[hooks]]\npath = \"/nb10\"\nprovider = \"netbox\"\nsecrets = [\"tenbytes!!\"]\n",
        ),
    )
    .unwrap();
    let out = cli(&["check-config", file.to_str().unwrap()], EXIT);
    let all = out.all();
    assert!(out.ok(), "a short key is allowed: {all}");
    assert!(
        all.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("/nb10") && (l.contains("warn") || l.contains("short"))
        }),
        "but warned about, naming the hook: {all}"
    );
    assert!(!all.contains("tenbytes!!"), "{all}");
}

// ---------------------------------------------------------------------------------------------
// 10. `sign` injecting headers. Contract: control characters in any printed value are refused
//     (non-zero exit, nothing injected on stdout).
// ---------------------------------------------------------------------------------------------

#[test]
fn sign_refuses_control_characters_in_every_printed_value() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, br#"{"event":"created"}"#).unwrap();
    let body = body.to_str().unwrap();

    let ok = cli(
        &[
            "sign",
            "--provider",
            "standard-webhooks",
            "--secret",
            WHSEC,
            "--id",
            "msg_1",
            body,
        ],
        EXIT,
    );
    assert!(ok.ok(), "a clean id is signed: {}", ok.all());

    let cases: [&[&str]; 5] = [
        &[
            "--provider",
            "standard-webhooks",
            "--secret",
            WHSEC,
            "--id",
            "abc\r\nX-Evil: 1",
        ],
        &[
            "--provider",
            "github",
            "--secret",
            "s",
            "--id",
            "abc\nX-Evil: 1",
        ],
        &[
            "--provider",
            "standard-webhooks",
            "--secret",
            WHSEC,
            "--id",
            "abc\u{1b}[2J",
        ],
        &[
            "--provider",
            "hmac",
            "--secret",
            "s",
            "--header",
            "X-Sig\r\nX-Evil: 1",
        ],
        &[
            "--provider",
            "hmac",
            "--secret",
            "s",
            "--prefix",
            "sha256=\r\nX-Evil: 1",
        ],
    ];
    for case in cases {
        let mut args = vec!["sign"];
        args.extend_from_slice(case);
        args.push(body);
        let out = cli(&args, EXIT);
        let stdout = out.stdout();
        assert!(out.failed(), "{case:?} must be refused: {stdout:?}");
        assert!(
            !stdout.contains("X-Evil") && !stdout.contains(['\r', '\u{1b}']),
            "{case:?} injected: {stdout:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Smaller items.
// ---------------------------------------------------------------------------------------------

#[test]
fn healthcheck_reaches_a_server_on_ipv6() {
    let p = Proc::start(|log| config_text("[::1]:0", "", log, "", &netbox_hook("/nb")));
    let url = format!("http://[::1]:{}/healthz", p.addr.port());
    let out = cli(&["healthcheck", "--url", &url], EXIT);
    assert!(out.ok(), "{url}: {}", out.all());
    assert!(out.stdout().contains("ok"), "{}", out.stdout());
}

#[test]
fn healthcheck_gives_up_on_an_endless_body() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    // Answers 200 and then streams 64 MiB of body and holds the connection open: an answer that
    // never ends. Bounded: it gives up after 20 s or when the test is done.
    let server = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut head = [0u8; 4096];
        let _ = s.read(&mut head);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
        for _ in 0..1024 {
            if s.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let url = format!("http://{addr}/healthz");
    let out = cli(&["healthcheck", "--url", &url, "--timeout", "30"], EXIT);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = server.join();
    assert!(
        out.status.is_some(),
        "healthcheck still reading an endless body after {EXIT:?} (its --timeout is 30 s; the body \
         must be capped)"
    );
    assert!(out.failed(), "an endless body is unhealthy: {}", out.all());
}

#[test]
fn a_dedupe_window_shorter_than_twice_the_replay_window_is_warned_about() {
    let hooks = format!(
        "{SW_HOOK}[[hooks]]\npath = \"/stripe\"\nprovider = \"stripe\"\nsecrets = [\"{STRIPE_SECRET}\"]\ntolerance_secs = 100\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    let text = config_text(
        "127.0.0.1:0",
        "dedupe_window_secs = 300",
        &dir.path().join("e.log"),
        "",
        &hooks,
    );
    std::fs::write(&file, &text).unwrap();
    let out = cli(&["check-config", file.to_str().unwrap()], EXIT);
    let all = out.all();
    assert!(out.ok(), "a warning, not an error: {all}");
    let warns = |hook: &str, text: &str| {
        text.lines()
            .any(|l| l.contains(hook) && l.contains("dedupe_window_secs"))
    };
    assert!(
        warns("/sw", &all),
        "/sw: tolerance 300 s, window 300 s < 600 s: {all}"
    );
    assert!(
        !warns("/stripe", &all),
        "/stripe: tolerance 100 s, window 300 s >= 200 s: {all}"
    );

    let p =
        Proc::start(|log| config_text("127.0.0.1:0", "dedupe_window_secs = 300", log, "", &hooks));
    assert!(
        p.wait_for_line(0, &["/sw", "dedupe_window_secs"], T),
        "start-up warns too: {}",
        p.stderr()
    );
}
